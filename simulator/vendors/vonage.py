"""Vonage Identity Insights `POST /identity-insights/v1/requests`, as
docs/vendors/vonage-identity-insights.md records it: an RS256 application JWT checked
against the application's public key, per-insight answers each with its own
`status.code`, RFC 7807 problem details for HTTP errors.

Like Vonage's Playground, roaming and reachability are answered only for the purpose
"FraudPreventionAndDetection" (INVALID_PURPOSE otherwise). What the public sources do
not say (the 401 and 422 problem `type`s, Retry-After on 429) is the imitation's
guess and marked so. Tests queue `faults`: "throttle" (429, Retry-After),
"server_error" (503), "malformed" (a cut-off body), "partial" (no `insights`),
"hang", "insight_error" (`failing_insight` answers `failing_code` but keeps its data,
as Vonage's own example does) and "lowercase" (every code in lower case, as Vonage's
Node SDK spells them).
"""

from __future__ import annotations

import functools
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

from hlrd.domain.countries import country_of_mcc, country_of_number

from ..scenario import Answer, Scenario, msisdn_of
from .base import Imitation

PATH = "/identity-insights/v1/requests"
PLAYGROUND_PURPOSE = "FraudPreventionAndDetection"
ERRORS = "https://developer.vonage.com/api-errors"
DEMO_APPLICATION_ID = "00000000-0000-4000-8000-00000000de40"
# DEMO ONLY: a key made for the simulator and its tests, published with the source.
# It signs nothing real; never register its public half with a Vonage application.
DEMO_PRIVATE_KEY = """\
-----BEGIN PRIVATE KEY-----
MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQC4HNd8NMTKZ0J+
iKQ//XwFHrumHkI/pydymzPe7Rpnp7ze3UgdnvHFwGAsjxVqF9X1t3/l0QxupCKP
vJsj6yyrR6iF7ztE2/kJpL5mWIyrC1us071fqmxcu305mJ7/Ce3zoGWcRhlzQ54T
2k7Mm1+vkera6SuwkTVlUzCUEnXq9lW89dlFNg0JqsGFs7wcmzvTDpa7cb7TCxHi
VqhWbs1b1lyMpKAL4tY0k/zb6zJZ/rPJlzOVQkOYNMWX7OcgYafV3Ft2hnDSKipo
N40HBAUF9g07cV94tmYzHC0s5tH5opEs6x3wC7sYs7cm5zlImtYpZbWfMqp4n9JX
zfJucvYlAgMBAAECggEAB9zqvk6BK/apXRA99nN5rqWRumeSmo7InTwKLZ8ggHkm
K9FeDaLjxwMDjNf8nWo8RzhiTCJXoCCWCUhhhOVer7wjuOj6qkuk5sfOZviR45H/
hQjzDpv4Tjwa5tPm5+V+e7mB7uDT5ic4Zc55u2tIxiT01394uL51CbILeXApH5uz
vt2DZhlimLBttHXy74n6jEddU9XycV1YSfCv8nlvsJ4RlNnEjP+f/pUclL6tepmG
ZbWr0H+LRe1cJHU2ogxf5shCg6n6TFWVpjsSYXJwy1VaDHivtCcZFk31pq0Jbxdu
2jo9d8evvvBls+z+k76QJ6BBThCjC9XrKsYPovavkQKBgQDsgj+krwqW/FtmQCeP
70PXiiFt4LKgj/zYjbzvxG1QqyX3cw+oriQYeIO9fS5ZqGVJlYGim5TTQyPW1yZs
ze54nuI5kSbykgy9Pv35vLYSYFEtodf3BN+dKrr6lJRAiz5BJpjwCTqOe7YShV1E
z9lyIyUft8zwxo8hjRkxmoAirwKBgQDHSSoTISgr3AIssXlFDWUaeYKdZzPATLhl
THZcDU5aFBuW44cilWfgMHiX3uN9i4qfdKsYefxRiELupz2p+/c2pGuHemXmLNXF
FVYOZ0xhEsW9m61hjrkBFIHDUQAseeuRfoV+XyUZP68ocWXwR6jascS1MEqVZjYZ
ZZWAYGy5awKBgDJh2L7zTvU1Ex9oIUVnOfOLiG2IxWSw57MWFp6ZIJRjsTXSfA55
8lSIL8BJD3uoBNO1FqWWMREEJ3lX4eahw+BMMHME+eAIvs/9wErYKY0mmYR4CrKj
hiNL/ALvbdmGEB/+4euYe7HoprOxV1oWUQMge4MTO4Q7ODh0f15yxEMfAoGADVGa
ekTRBn1ht9L0o+TNSQOt8w8eqk92U27UyjopbmPBpEf4lBsgIh+bL6s50P4ueZG2
jaA5eMl+j6yltmKclw5OEXPgs41zjARtB/FnbWVvychJwidjveq88WzMciyDzemC
yntZY2KaNj297l0br+IJn4Jmua1nGDNt1nKbUZkCgYBTNqmLIDoIEIMVvC0QJ31R
3gIa+PCycwW+TJddMVgxWJjvEUV1SdJ1QCWJTj54GZWsMCQH/ys5yS/fDx9FY+PM
vsQYQ4tBrv69UARoMUPYcDJ9Vx+DANajjbXSuIWYhwU8z/HvXMHa+C6Af6y96Yqo
V1cBcq/MbRMKERt+itGSyQ==
-----END PRIVATE KEY-----
"""


@functools.cache
def public_key_of(private_key_pem: str) -> RSAPublicKey:
    """Cached: loading an RSA key checks it, which takes a while (once per key)."""
    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    if not isinstance(key, RSAPrivateKey):
        raise ValueError("not an RSA private key")
    return key.public_key()


class VonageImitation(Imitation):
    def __init__(
        self,
        scenario: Scenario,
        application_id: str = DEMO_APPLICATION_ID,
        public_key: RSAPublicKey | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(scenario)
        self._application_id = application_id
        self._public_key = public_key or public_key_of(DEMO_PRIVATE_KEY)
        self._clock = clock
        self.failing_insight = "roaming"  # what "insight_error" spoils, and how
        self.failing_code = "NO_COVERAGE"
        self.token_ids: list[str] = []  # `jti` of every accepted request, in order

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post(PATH, self.lookup)

    async def lookup(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        jti = self._authentic(request.headers.get("Authorization", ""))
        if jti is None:
            self.refused += 1
            return _problem(401, "unauthorized", "Unauthorized", "Invalid or expired JWT.")
        self.token_ids.append(jti)
        fault = self.next_fault()
        if fault == "throttle":
            return _problem(
                429,
                "throttled",
                "Too Many Requests",
                "Rate limit exceeded.",
                {"Retry-After": self.retry_after},
            )
        if fault == "server_error":
            return _problem(
                503, "service-unavailable", "Service Unavailable", "Failed to invoke upstream."
            )
        if fault == "hang":
            await self.hang()
        if request.content_type != "application/json":
            return _problem(415, "unsupported-media-type", "Unsupported Media Type", "")
        try:
            asked = json.loads(await request.read())
        except ValueError:
            return _problem(400, "invalid-json", "Malformed JSON", "Malformed JSON payload")
        number = asked.get("phone_number") if isinstance(asked, dict) else None
        insights = asked.get("insights") if isinstance(asked, dict) else None
        if not isinstance(number, str) or not isinstance(insights, dict) or not insights:
            return _problem(
                422, "invalid-params", "Invalid parameters", "phone_number and insights required"
            )
        # Vonage "extracts the phone number even if the input string contains
        # alphanumeric characters, spaces, or symbols like brackets".
        digits = msisdn_of("".join(ch for ch in number if ch.isascii() and ch.isdigit()))
        if digits is None:
            return web.json_response(_invalid_number(insights))
        answer = await self.answer(digits)
        purpose_ok = asked.get("purpose") == PLAYGROUND_PURPOSE
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self._clock()))
        every = _insights(answer, purpose_ok, stamp)
        result: dict[str, Any] = {
            "request_id": str(uuid.uuid4()),
            "insights": {name: every.get(name, _status("NO_COVERAGE")) for name in insights},
        }
        if fault == "insight_error" and self.failing_insight in result["insights"]:
            spoiled = result["insights"][self.failing_insight]
            spoiled["status"] = {"code": self.failing_code, "message": "Success"}
        if fault == "lowercase":
            _lower_codes(result["insights"])
        if fault == "malformed":
            return web.Response(
                body=json.dumps(result).encode()[:40], content_type="application/json"
            )
        if fault == "partial":
            del result["insights"]
        return web.json_response(result)

    def _authentic(self, authorization: str) -> str | None:
        """The token's `jti` when it is the application's, signed RS256 by its key and
        not expired; None for anything else (alg none or HS256 included)."""
        scheme, _, token = authorization.partition(" ")
        if scheme != "Bearer" or not token:
            return None
        try:
            if jwt.get_unverified_header(token).get("alg") != "RS256":
                return None
            claims = jwt.decode(
                token,
                self._public_key,
                algorithms=["RS256"],
                options={
                    "verify_exp": False,  # against self._clock below: tests move time
                    "verify_iat": False,
                    "verify_nbf": False,
                    "require": ["application_id", "iat", "jti", "exp"],
                },
            )
        except jwt.PyJWTError:
            return None
        exp, jti = claims["exp"], claims["jti"]
        if claims["application_id"] != self._application_id or not isinstance(jti, str):
            return None
        if not isinstance(exp, int | float) or self._clock() >= exp:
            return None
        return jti


def _insights(a: Answer, purpose_ok: bool, stamp: str) -> dict[str, dict[str, Any]]:
    """Every insight the imitation knows, answered from the scenario."""
    country = country_of_number(a.msisdn)
    out: dict[str, dict[str, Any]] = {
        "format": {
            "country_code": country.iso if country else None,
            "country_prefix": country.calling_code if country else None,
            "number_international": "+" + a.msisdn,
            "is_format_valid": True,
            **_status("OK"),
        },
        "original_carrier": _carrier(a.home_mccmnc),
        "current_carrier": _carrier(a.subscription_mccmnc),
    }
    if not purpose_ok:
        out["roaming"] = _status("INVALID_PURPOSE")
        out["reachability"] = _status("INVALID_PURPOSE")
        return out
    if a.status in ("unknown", "system_failure"):
        code = "NOT_FOUND" if a.status == "unknown" else "SUPPLIER_ERROR"
        out["roaming"], out["reachability"] = _status(code), _status(code)
    else:
        # barred and not provisioned: Vonage has no word for them; the device is on
        # the network, a data-only SIM without SMS.
        live = a.status == "live"
        roaming_country = a.roaming_country if live else None
        out["roaming"] = {
            "latest_status_at": stamp,
            "is_roaming": bool(a.roaming) if live else False,
            **({"country_codes": [roaming_country]} if roaming_country else {}),
            **_status("OK"),
        }
        reachable = a.status != "absent"
        out["reachability"] = {
            "latest_status_at": stamp,
            "is_reachable": reachable,
            **({"connectivity": ["DATA", "SMS"] if live else ["DATA"]} if reachable else {}),
            **_status("OK"),
        }
    return out


def _carrier(mccmnc: str | None) -> dict[str, Any]:
    if not mccmnc:
        return _status("NOT_FOUND")
    country = country_of_mcc(mccmnc)
    return {
        "name": f"Network {mccmnc}",
        "network_type": "MOBILE",
        "country_code": country.iso if country else None,
        "network_code": mccmnc,
        **_status("OK"),
    }


def _invalid_number(asked: dict[str, Any]) -> dict[str, Any]:
    insights = {name: _status("INVALID_NUMBER_FORMAT") for name in asked}
    if "format" in insights:
        insights["format"] = {"is_format_valid": False, **_status("OK")}
    return {"request_id": str(uuid.uuid4()), "insights": insights}


_MESSAGES = {
    "OK": "Success",
    "NOT_FOUND": "The phone number could not be found for this Insight.",
    "NO_COVERAGE": "The country or mobile network is not supported by available suppliers.",
    "INVALID_PURPOSE": "The purpose is not valid or not allowed for this Insight.",
    "SUPPLIER_ERROR": "The supplier returned an error.",
    "INVALID_NUMBER_FORMAT": "The number format is not valid.",
}


def _status(code: str) -> dict[str, Any]:
    return {"status": {"code": code, "message": _MESSAGES.get(code, "")}}


def _lower_codes(insights: dict[str, Any]) -> None:
    for value in insights.values():
        value["status"]["code"] = value["status"]["code"].lower()
        if "connectivity" in value:
            value["connectivity"] = [c.lower() for c in value["connectivity"]]


def _problem(
    status: int, kind: str, title: str, detail: str, headers: dict[str, str] | None = None
) -> web.Response:
    body = {"type": f"{ERRORS}#{kind}", "title": title, "instance": str(uuid.uuid4())}
    if detail:
        body["detail"] = detail
    return web.json_response(
        body, status=status, headers=headers, content_type="application/problem+json"
    )
