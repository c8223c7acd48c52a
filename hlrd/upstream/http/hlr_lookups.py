"""hlr-lookups.com, API v2: HLR lookups over HTTPS with a signed request.

Every request carries the API key and a signature over what it says, so a captured
request cannot be replayed with another body or later than the vendor allows
(docs/vendors/hlr-lookups.md; the vendor's SDKs sign the same way):

    X-Digest-Key:       the API key
    X-Digest-Timestamp: Unix seconds
    X-Digest-Signature: hex HMAC-SHA256(secret, path + timestamp + METHOD + body)

`path` is relative to /api/v2 (`/hlr-lookup`), and `body` is the exact bytes sent: the
body is serialized once and those bytes are both signed and sent.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

from ...domain.map_errors import MapError
from ...domain.result import HlrAnswer
from ..base import ProviderError
from .provider import OneRequestVendor, Request

PATH = "/hlr-lookup"  # below base_url, which ends in /api/v2; also what is signed


def signature(secret: str, path: str, timestamp: int, method: str, body: bytes) -> str:
    message = path.encode() + str(timestamp).encode() + method.upper().encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def auth_headers(
    key: str, secret: str, path: str, timestamp: int, method: str, body: bytes
) -> dict[str, str]:
    return {
        "X-Digest-Key": key,
        "X-Digest-Timestamp": str(timestamp),
        "X-Digest-Signature": signature(secret, path, timestamp, method, body),
    }


class HlrLookups(OneRequestVendor):
    """The vendor half of the adapter: the signed request and what its answer means.

    connectivity_status CONNECTED -> reachable; ABSENT -> MAP absent subscriber;
    INVALID_MSISDN -> MAP unknown subscriber; UNDETERMINED -> reachability unknown
    (a partial result). Roaming is hlrd's own country compare: the serving MSC when
    the answer has one, else the vendor's roaming country, else its network when it
    says the subscriber is not roaming. IMSI and MSC masked by the vendor (`*`) are
    dropped. Anything else — HTTP errors, bodies that are not the v2 shape, an
    answer about another number — fails the lookup, never raises further.
    """

    def __init__(self, key: str, secret: str, clock: Callable[[], float] = time.time) -> None:
        self._key = key
        self._secret = secret
        self._clock = clock

    def request(self, msisdn: str, lookup_id: str) -> Request:
        body = json.dumps({"msisdn": "+" + msisdn}, separators=(",", ":")).encode()

        def headers() -> dict[str, str]:
            signed = auth_headers(self._key, self._secret, PATH, int(self._clock()), "POST", body)
            return {"Content-Type": "application/json", "Accept": "application/json", **signed}

        return Request("POST", PATH, body, headers)

    def read(self, status: int, body: bytes, msisdn: str) -> HlrAnswer:
        if status != 200:
            raise ProviderError(_HTTP_ERRORS.get(status, f"hlr-lookups answered HTTP {status}"))
        try:
            d = json.loads(body)
        except ValueError:
            raise ProviderError("hlr-lookups answered something that is not JSON") from None
        if not isinstance(d, dict):
            raise ProviderError("hlr-lookups answered JSON that is not a lookup result")
        if d.get("msisdn") not in (None, "+" + msisdn):
            raise ProviderError("hlr-lookups answered about another number")
        connectivity = d.get("connectivity_status")
        if connectivity not in _CONNECTIVITY:
            raise ProviderError("hlr-lookups answered without a known connectivity_status")
        delivered, map_error = _CONNECTIVITY[connectivity]
        mccmnc = _digits(d.get("mccmnc"))
        roaming = d.get("is_roaming")
        serving_country = _country(d.get("roaming_country_code")) if roaming is True else None
        connected = connectivity == "CONNECTED"
        return HlrAnswer(
            delivered=delivered,
            map_error=map_error,
            imsi=_digits(d.get("imsi")),
            mccmnc=mccmnc,
            serving_mccmnc=mccmnc if connected and roaming is False else None,
            msc=_digits(d.get("msc")) if connected else None,
            ported=d.get("is_ported") if isinstance(d.get("is_ported"), bool) else None,
            message_id=d.get("id") if isinstance(d.get("id"), str) else None,
            serving_country=serving_country if connected else None,
        )


_CONNECTIVITY: dict[str, tuple[bool | None, int | None]] = {
    "CONNECTED": (True, None),
    "ABSENT": (False, int(MapError.ABSENT_SUBSCRIBER)),
    "INVALID_MSISDN": (False, int(MapError.UNKNOWN_SUBSCRIBER)),
    "UNDETERMINED": (None, None),
}
_HTTP_ERRORS = {
    400: "hlr-lookups refused the request (HTTP 400)",
    401: "hlr-lookups refused the credentials (HTTP 401): check api_key and api_secret",
    402: "hlr-lookups: the account is out of credit (HTTP 402)",
    403: "hlr-lookups refused the credentials (HTTP 403): check api_key and api_secret",
}


def _digits(value: Any) -> str | None:
    """A digit string as given; masked (`*`) or anything else is no value."""
    return value if isinstance(value, str) and value.isascii() and value.isdigit() else None


def _country(value: Any) -> str | None:
    ok = isinstance(value, str) and len(value) == 2 and value.isascii() and value.isalpha()
    return value.upper() if ok else None
