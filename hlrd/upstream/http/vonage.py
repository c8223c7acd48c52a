"""Vonage Identity Insights: reachability, roaming and carriers of a number in one
request, signed by the application's own key.

    POST {base_url}/identity-insights/v1/requests     base_url https://api-eu.vonage.com
    Authorization: Bearer <JWT>

Vonage has no token endpoint: the client mints the JWT itself, RS256 over
`application_id`, `iat`, `jti` and `exp` with the application's private key, as
Vonage's SDKs do (docs/vendors/vonage-identity-insights.md). One token serves many
lookups until shortly before it expires, so a lookup does not pay for an RSA
signature. Each insight in the answer carries its own `status.code`: one that is not
OK leaves its part of the answer unknown instead of failing the whole lookup.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from ...domain.map_errors import MapError
from ...domain.numbers import region_of_digits
from ...domain.result import HlrAnswer
from ..base import ProviderError
from .problem import problem_type
from .provider import OneRequestVendor, Request

PATH = "/identity-insights/v1/requests"  # below base_url, https://api-eu.vonage.com
# The only purpose Vonage's Playground accepts; production needs one of the purposes
# of the application's network profile (roaming and reachability ask the operator).
DEFAULT_PURPOSE = "FraudPreventionAndDetection"
# Asked in every lookup. `format` is numbering-plan data, not an operator query; it
# gives back the number Vonage read, so an answer about another number is caught.
INSIGHTS = ("format", "original_carrier", "current_carrier", "roaming", "reachability")
TOKEN_TTL_S = 300  # Vonage's SDKs use 900; shorter is less to lose if a token leaks
TOKEN_RENEW_S = 60  # renewed this long before exp: retries and clock skew still fit

# Codes under which an insight's fields mean something. PARTIAL_SUCCESS: "some
# attributes were omitted", so those present are read. Compared upper-cased: Vonage's
# Node SDK spells every code in lower case.
_USABLE = frozenset({"OK", "PARTIAL_SUCCESS"})
_SAFE_CODE = re.compile(r"[A-Z0-9_.]{1,48}")


class AppToken:
    """The application's JWT, kept until TOKEN_RENEW_S before it expires.

    The key is read once; a key that is not an RSA private key in PEM fails every
    lookup with a message naming the setting, and never repeats the key itself.
    """

    def __init__(
        self,
        application_id: str,
        private_key_pem: str,
        clock: Callable[[], float] = time.time,
        ttl_s: int = TOKEN_TTL_S,
        renew_s: int = TOKEN_RENEW_S,
    ) -> None:
        self._application_id = application_id
        self._key = _rsa_key(private_key_pem)
        self._clock = clock
        self._ttl_s = ttl_s
        self._renew_s = renew_s
        self._token = ""
        self._expires = 0.0

    def bearer(self) -> str:
        if self._key is None:
            raise ProviderError("vonage: private_key is not an RSA private key in PEM")
        now = int(self._clock())
        if not self._token or now >= self._expires - self._renew_s:
            claims = {
                "application_id": self._application_id,
                "iat": now,
                "jti": str(uuid.uuid4()),
                "exp": now + self._ttl_s,
            }
            self._token = jwt.encode(claims, self._key, algorithm="RS256")
            self._expires = float(now + self._ttl_s)
        return self._token

    def forget(self) -> None:
        self._token = ""


def _rsa_key(pem: str) -> RSAPrivateKey | None:
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return None
    return key if isinstance(key, RSAPrivateKey) else None


@dataclass(frozen=True, slots=True)
class _Insight:
    code: str  # upper-cased; "" when the insight has no readable status
    data: dict[str, Any]

    @property
    def usable(self) -> bool:
        return self.code in _USABLE


class Vonage(OneRequestVendor):
    """The vendor half of the adapter: the signed request and what its answer means.

    reachability is_reachable true -> reachable; false -> MAP absent subscriber.
    A number Vonage finds of invalid format -> MAP unknown subscriber. roaming
    is_roaming true -> served in the country Vonage names (of several, the first that
    is not the number's own); false -> served at home, so hlrd's country compare says
    not roaming. current_carrier / original_carrier network codes -> subscription and
    range-holder networks, from which hlrd decides porting. Whatever an insight says
    under a code other than OK/PARTIAL_SUCCESS is not taken (Vonage's own example
    pairs NO_COVERAGE with data). An answer that says neither reachability nor
    roaming, HTTP errors, bodies that are not the documented shape, and an answer
    about another number fail the lookup, never raise further.
    """

    def __init__(
        self,
        application_id: str,
        private_key: str,
        purpose: str = DEFAULT_PURPOSE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._token = AppToken(application_id, private_key, clock)
        self._purpose = purpose

    def request(self, msisdn: str, lookup_id: str) -> Request:
        body = json.dumps(
            {
                "phone_number": "+" + msisdn,
                "purpose": self._purpose,
                "insights": {name: {} for name in INSIGHTS},
            },
            separators=(",", ":"),
        ).encode()
        self._token.bearer()  # an unusable key fails here, before anything is sent

        def headers() -> dict[str, str]:
            return {
                "Authorization": "Bearer " + self._token.bearer(),
                "Content-Type": "application/json",
                "Accept": "application/json",
            }

        return Request("POST", PATH, body, headers)

    def read(self, status: int, body: bytes, msisdn: str) -> HlrAnswer:
        if status != 200:
            raise ProviderError(_http_error(status, body))
        try:
            d = json.loads(body)
        except (ValueError, RecursionError):  # RecursionError: JSON nested past the stack
            raise ProviderError("vonage answered something that is not JSON") from None
        if not isinstance(d, dict) or not isinstance(d.get("insights"), dict):
            raise ProviderError("vonage answered JSON without insights")
        found = {name: _insight(d["insights"].get(name)) for name in INSIGHTS}
        ins = {name: i for name, i in found.items() if i is not None}
        fmt = ins.get("format")
        if fmt is not None and fmt.usable and _another_number(fmt.data, msisdn):
            raise ProviderError("vonage answered about another number")
        answer = _answer(ins, msisdn)
        if answer.delivered is None and answer.serving_country is None:
            # Carriers alone answer none of hlrd's questions (reachable? where?): failed,
            # so the next provider is asked, and the codes say why (NOT_FOUND,
            # INVALID_PURPOSE, SUPPLIER_ERROR...).
            raise ProviderError("vonage answered neither reachability nor roaming: " + _codes(ins))
        request_id = d.get("request_id")
        answer.message_id = request_id if isinstance(request_id, str) else None
        return answer

    async def close(self) -> None:
        self._token.forget()


def _answer(ins: dict[str, _Insight], msisdn: str) -> HlrAnswer:
    delivered: bool | None = None
    map_error: int | None = None
    reach = ins.get("reachability")
    if reach is not None and reach.usable:
        reachable = reach.data.get("is_reachable")
        if reachable is True:
            delivered = True
        elif reachable is False:
            delivered, map_error = False, int(MapError.ABSENT_SUBSCRIBER)
    fmt = ins.get("format")
    invalid = any(i.code == "INVALID_NUMBER_FORMAT" for i in ins.values()) or (
        fmt is not None and fmt.usable and fmt.data.get("is_format_valid") is False
    )
    if delivered is None and invalid:
        delivered, map_error = False, int(MapError.UNKNOWN_SUBSCRIBER)
    mccmnc = _network(ins.get("current_carrier"))
    home_mccmnc = _network(ins.get("original_carrier"))
    serving_country = None
    roam = ins.get("roaming")
    if roam is not None and roam.usable and delivered is not False:
        home = region_of_digits(msisdn)
        roaming = roam.data.get("is_roaming")
        if roaming is True:
            serving_country = _visited(roam.data.get("country_codes"), home)
        elif roaming is False:
            serving_country = home
    return HlrAnswer(
        delivered=delivered,
        map_error=map_error,
        mccmnc=mccmnc,
        home_mccmnc=home_mccmnc,
        ported=mccmnc != home_mccmnc if mccmnc and home_mccmnc else None,
        serving_country=serving_country,
    )


def _insight(value: Any) -> _Insight | None:
    if not isinstance(value, dict):
        return None
    status = value.get("status")
    code = status.get("code") if isinstance(status, dict) else None
    return _Insight(code.strip().upper() if isinstance(code, str) else "", value)


def _another_number(data: dict[str, Any], msisdn: str) -> bool:
    read = data.get("number_international")
    if not isinstance(read, str):
        return False
    digits = "".join(ch for ch in read if ch.isascii() and ch.isdigit())
    return bool(digits) and digits != msisdn


def _network(i: _Insight | None) -> str | None:
    """MCC+MNC of a carrier insight, 5 or 6 digits."""
    if i is None or not i.usable:
        return None
    code = i.data.get("network_code")
    ok = isinstance(code, str) and code.isascii() and code.isdigit() and len(code) in (5, 6)
    return code if ok else None


def _visited(codes: Any, home: str | None) -> str | None:
    """The roaming country. Several: one MCC can stand for several countries (GB and
    the Channel Islands), and the subscriber is abroad in any case, so the first that
    is not the number's own country."""
    if not isinstance(codes, list):
        return None
    valid = [
        c.upper()
        for c in codes
        if isinstance(c, str) and len(c) == 2 and c.isascii() and c.isalpha()
    ]
    if not valid:
        return None
    return next((c for c in valid if c != home), valid[0])


def _codes(ins: dict[str, _Insight]) -> str:
    """The insights' codes for the error text: Vonage's tokens only, nothing of the
    answer's free text (its `message`)."""
    if not ins:
        return "none in the answer"
    return ", ".join(
        f"{name}={i.code if _SAFE_CODE.fullmatch(i.code) else '?'}" for name, i in ins.items()
    )


_HTTP_ERRORS = {
    400: "vonage refused the request (HTTP 400)",
    401: "vonage refused the credentials (HTTP 401): check api_key (the application id) "
    "and private_key",
    403: "vonage refused the application (HTTP 403): Network Registry access or balance",
    404: "vonage does not know the endpoint (HTTP 404): check base_url",
    415: "vonage refused the request's content type (HTTP 415)",
    422: "vonage refused the request as invalid (HTTP 422)",
}


def _http_error(status: int, body: bytes) -> str:
    """The status's meaning and the problem `type` Vonage names (`#invalid-json`), which
    says what went wrong without the number a `detail` could repeat."""
    text = _HTTP_ERRORS.get(status, f"vonage answered HTTP {status}")
    problem = problem_type(body)
    return f"{text} [{problem}]" if problem else text
