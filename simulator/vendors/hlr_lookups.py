"""hlr-lookups.com API v2 `POST /api/v2/hlr-lookup`, as docs/vendors/hlr-lookups.md
records it: digest headers checked over the exact body, the v2 answer fields.

What the vendor's public sources do not say (its error bodies, its clock-skew
window), the imitation keeps minimal — a status and `{"error": ...}` — so the
adapter is held to the status alone. Tests queue `faults` to get the failures a
real provider has: "throttle" (429, Retry-After 1), "server_error" (503),
"malformed" (a cut-off body), "partial" (no connectivity_status), "hang".
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable

from aiohttp import web

from ..scenario import Answer, Scenario, msisdn_of
from .base import Imitation

DEMO_KEY = "demo-hlr-lookups-key"
DEMO_SECRET = "demo-hlr-lookups-secret"
MAX_SKEW_S = 300  # the vendor's window is not published; a few minutes is usual
PATH = "/api/v2/hlr-lookup"
SIGNED_PATH = "/hlr-lookup"  # relative to /api/v2, as the vendor signs it

_CONNECTIVITY = {
    "live": "CONNECTED",
    "absent": "ABSENT",
    "unknown": "INVALID_MSISDN",
}  # barred, not provisioned, system failure: the vendor has no word; UNDETERMINED


class HlrLookupsImitation(Imitation):
    def __init__(
        self,
        scenario: Scenario,
        key: str = DEMO_KEY,
        secret: str = DEMO_SECRET,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(scenario)
        self._key = key
        self._secret = secret.encode()
        self._clock = clock

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post(PATH, self.lookup)

    async def lookup(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        body = await request.read()
        if not self._authentic(request, body):
            self.refused += 1
            return web.json_response({"error": "authentication failed"}, status=401)
        fault = self.next_fault()
        if fault == "throttle":
            return web.json_response(
                {"error": "too many requests"},
                status=429,
                headers={"Retry-After": self.retry_after},
            )
        if fault == "server_error":
            return web.json_response({"error": "service unavailable"}, status=503)
        if fault == "hang":
            await self.hang()
        try:
            asked = json.loads(body)["msisdn"]
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": "msisdn required"}, status=400)
        digits = msisdn_of(asked) if isinstance(asked, str) and asked.startswith("+") else None
        if digits is None:
            return web.json_response({"error": "invalid msisdn"}, status=400)
        answer = await self.answer(digits)
        result = _result(answer)
        if fault == "malformed":
            return web.Response(
                body=json.dumps(result).encode()[:40], content_type="application/json"
            )
        if fault == "partial":
            del result["connectivity_status"]
        return web.json_response(result)

    def _authentic(self, request: web.Request, body: bytes) -> bool:
        key = request.headers.get("X-Digest-Key", "")
        stamp = request.headers.get("X-Digest-Timestamp", "")
        sent = request.headers.get("X-Digest-Signature", "")
        if not hmac.compare_digest(key.encode(), self._key.encode()):
            return False
        if not (stamp.isascii() and stamp.isdigit()):
            return False
        if abs(self._clock() - int(stamp)) > MAX_SKEW_S:
            return False
        signed = SIGNED_PATH.encode() + stamp.encode() + request.method.encode() + body
        expected = hmac.new(self._secret, signed, hashlib.sha256).hexdigest()
        return hmac.compare_digest(sent.encode(), expected.encode())


def _result(a: Answer) -> dict[str, object]:
    connected = a.status == "live"
    roaming_country = a.roaming_country
    mccmnc = a.subscription_mccmnc
    return {
        "id": secrets.token_hex(6),
        "msisdn": "+" + a.msisdn,
        "connectivity_status": _CONNECTIVITY.get(a.status, "UNDETERMINED"),
        "mccmnc": mccmnc,
        "mcc": mccmnc[:3] if mccmnc else None,
        "mnc": mccmnc[3:] if mccmnc else None,
        "imsi": a.imsi,
        "msin": a.imsi[len(mccmnc) :] if a.imsi and mccmnc else None,
        "msc": a.msc if connected else None,
        "original_network_name": None,
        "original_country_name": None,
        "original_country_code": None,
        "original_country_prefix": None,
        "is_ported": bool(a.ported),
        "ported_network_name": None,
        "ported_country_name": None,
        "ported_country_code": None,
        "ported_country_prefix": None,
        "is_roaming": bool(a.roaming) if connected else False,
        "roaming_network_name": None,
        "roaming_country_name": None,
        "roaming_country_code": roaming_country if connected else None,
        "roaming_country_prefix": None,
        "cost": "0.0100",
        "timestamp": time.strftime("%Y-%m-%d %H:%M:%S.000+0000", time.gmtime()),
        "storage": "SYNC-API-" + time.strftime("%Y-%m", time.gmtime()),
        "route": "IP1",
        "processing_status": "COMPLETED",
        "error_code": None,
        "data_source": "LIVE_HLR",
    }
