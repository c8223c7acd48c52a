"""tyntec HLR Lookup (GNV) `GET /nis/v1/gnv?msisdn=+<E.164>`, as
docs/vendors/tyntec-gnv.md records it: the `apiKey` header, the `GnvResponse`
fields with their string flags ("true"/"false"/"unknown"), RFC 7807 problems for
errors.

Where tyntec's public sources are silent the imitation picks the plainest reading
and the docs page says so: `errorCode` is the MAP error in hex as tyntec's NIS
error table writes it ("1b" absentSubscriber), a 429 carries Retry-After, problems
are served as application/problem+json. Country codes are written here from an
alpha-2 -> alpha-3 table of its own, so the adapter's table is checked, not
shared. Tests queue `faults`: "throttle" (429, Retry-After), "server_error" (500,
tyntec's documented failure), "no_credit" (402), "malformed" (a cut-off body),
"partial" (no presence), "hang".
"""

from __future__ import annotations

import hmac
import json
import uuid

from aiohttp import web

from hlrd.domain.countries import country_of_mcc

from ..scenario import Answer, Scenario, msisdn_of
from .base import Imitation

DEMO_KEY = "demo-tyntec-api-key"
PATH = "/nis/v1/gnv"
PROBLEM = "application/problem+json"
PROBLEMS = "https://docs.tyntec.com/problems/"

# Presence per scenario status: the handset state the HLR keeps. A subscriber the
# network refuses for another reason (barred, no SMS service, failure) has none known.
_PRESENCE = {"live": "true", "absent": "false", "unknown": "false"}

# ISO 3166-1 alpha-3 of the countries hlrd's country table knows (the scenario's).
_ALPHA3 = {
    "AT": "AUT", "BE": "BEL", "BG": "BGR", "HR": "HRV", "CY": "CYP", "CZ": "CZE",
    "DK": "DNK", "EE": "EST", "FI": "FIN", "FR": "FRA", "DE": "DEU", "GR": "GRC",
    "HU": "HUN", "IE": "IRL", "IT": "ITA", "LV": "LVA", "LT": "LTU", "LU": "LUX",
    "MT": "MLT", "NL": "NLD", "PL": "POL", "PT": "PRT", "RO": "ROU", "SK": "SVK",
    "SI": "SVN", "ES": "ESP", "SE": "SWE", "IS": "ISL", "LI": "LIE", "NO": "NOR",
    "CH": "CHE", "GB": "GBR", "UA": "UKR", "TR": "TUR", "RU": "RUS", "US": "USA",
    "EG": "EGY", "MA": "MAR", "TN": "TUN", "AE": "ARE", "IN": "IND", "CN": "CHN",
    "TH": "THA", "BR": "BRA", "AU": "AUS", "ZA": "ZAF",
}  # fmt: skip


class TyntecImitation(Imitation):
    def __init__(self, scenario: Scenario, key: str = DEMO_KEY) -> None:
        super().__init__(scenario)
        self._key = key
        self.asked: list[str] = []  # the msisdn parameters as received (tests read them)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get(PATH, self.lookup)

    async def lookup(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        key = request.headers.get("apiKey")
        if key is None:
            self.refused += 1
            return _problem(403, "Forbidden", "Authorization information is missing.")
        if not hmac.compare_digest(key.encode(), self._key.encode()):
            self.refused += 1
            return _problem(401, "Unauthorized", "Invalid account credentials")
        fault = self.next_fault()
        if fault == "throttle":
            return _problem(
                429, "TooManyRequests", "Too many requests", {"Retry-After": self.retry_after}
            )
        if fault == "server_error":
            return _problem(500, "InternalError", "Something went wrong. :-(")
        if fault == "no_credit":
            return _problem(
                402,
                "PaymentRequired",
                "The current credit balance is not sufficient for this request.",
            )
        if fault == "hang":
            await self.hang()
        asked = request.query.get("msisdn", "")  # form-decoded: a bare "+" is a space
        self.asked.append(asked)
        digits = msisdn_of(asked) if asked.startswith("+") else None
        if digits is None:
            # Its detail names what was sent, as a vendor's may: the adapter must not
            # pass it on.
            return _problem(
                400,
                "DataNotParseable",
                "An error in MSISDN or in the callback URL",
                detail=f"msisdn {asked!r} is not in the international format",
            )
        answer = await self.answer(digits)
        result = gnv_response(answer)
        if fault == "malformed":
            return web.Response(
                body=json.dumps(result).encode()[:40], content_type="application/json"
            )
        if fault == "partial":
            del result["presence"]
        return web.json_response(result)


def gnv_response(a: Answer) -> dict[str, object]:
    """A GnvResponse for the scenario's answer, in the field order of tyntec's
    definition; fields tyntec would not know for this subscriber left out."""
    live = a.status == "live"
    r: dict[str, object] = {
        "requestId": "12-" + str(uuid.uuid4()),
        "msisdn": "+" + a.msisdn,
        "ported": _flag(a.ported),
        "roaming": _flag(a.roaming) if live else "unknown",
        "presence": _PRESENCE.get(a.status, "unknown"),
        "price": 0.001,
        "currency": "EUR",
        "priceEffective": "2010-11-01T00:00:00+0000",
        "errorCode": format(a.map_error, "x"),
    }
    r.update(_network("nrh", a.home_mccmnc))
    r.update(_network("imsi", a.subscription_mccmnc))
    if a.imsi:
        r["imsi"] = a.imsi
    r.update(_network("hlr", a.subscription_mccmnc))
    if live and a.serving_mccmnc:
        r.update(_network("msc", a.serving_mccmnc))
        if a.msc:
            cc = _calling_code(a.serving_mccmnc)
            if cc and a.msc.startswith(cc):
                r["mscCC"], r["mscNDC"] = cc, a.msc[len(cc) : len(cc) + 3]
            r["msc"] = a.msc
    r["synchronous"] = True
    return r


def _flag(value: bool | None) -> str:
    return "unknown" if value is None else "true" if value else "false"


def _calling_code(mccmnc: str) -> str | None:
    c = country_of_mcc(mccmnc)
    return c.calling_code if c else None


def _network(prefix: str, mccmnc: str | None) -> dict[str, str]:
    """`<prefix>MCC`, `MNC`, `Country` (alpha-3), `Technology` of one network."""
    if not mccmnc:
        return {}
    fields = {f"{prefix}MCC": mccmnc[:3], f"{prefix}MNC": mccmnc[3:]}
    c = country_of_mcc(mccmnc)
    if c is not None and c.iso in _ALPHA3:
        fields[f"{prefix}Country"] = _ALPHA3[c.iso]
    fields[f"{prefix}Technology"] = "GSM"
    return fields


def _problem(
    status: int,
    name: str,
    title: str,
    headers: dict[str, str] | None = None,
    detail: str | None = None,
) -> web.Response:
    """An RFC 7807 problem, with the status as a JSON number as tyntec's HLR Lookup
    definition types it."""
    return web.json_response(
        {"type": PROBLEMS + name, "title": title, "status": status, "detail": detail or title},
        status=status,
        content_type=PROBLEM,
        headers=headers,
    )
