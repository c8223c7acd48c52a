"""CAMARA Device Roaming Status v1.1 and Device Reachability Status v1.1 with an
OAuth2 token endpoint, as docs/vendors/camara.md records them, under one prefix
(base_url = http://127.0.0.1:PORT/camara):

    POST /camara/oauth2/token                            client credentials
    POST /camara/device-roaming-status/v1/retrieve
    POST /camara/device-reachability-status/v1/retrieve

The token endpoint takes the client by HTTP Basic (RFC 6749 2.3.1) or, when the
imitation is given the client's public key, by a private_key_jwt assertion (the
CAMARA profile's MUST); it issues opaque tokens that expire on the imitation's clock
(`expire_tokens` and `revoke_tokens` let a test end them early). The APIs check the
Bearer token (401 UNAUTHENTICATED), the x-correlator pattern (400) and echo it on
every answer, and the device rules (400 INVALID_ARGUMENT, 422 MISSING_IDENTIFIER /
UNSUPPORTED_IDENTIFIER), with the spec's ErrorInfo bodies.

From the scenario: live -> reachable, connectivity DATA+SMS (a data-only SIM, status
not_provisioned, DATA alone; barring is invisible to CAMARA, so barred is reachable
too); absent -> not reachable; unknown -> 404 IDENTIFIER_NOT_FOUND; system failure
-> 503 UNAVAILABLE; roaming from the scenario's serving network. Tests queue faults
per API in `faults["roaming"]` / `faults["reachability"]` (`add_faults` for both):
"throttle" (429 TOO_MANY_REQUESTS, Retry-After), "server_error" (503 UNAVAILABLE),
"malformed" (a cut-off body), "partial" (no roaming / reachable), "hang",
"wrong_correlator" (another x-correlator echoed), "other_number" (a `device` of
another number), "quota" (429 QUOTA_EXCEEDED), "not_applicable" (422). Token
endpoint faults go in `token_faults`: "throttle", "server_error", "hang".
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
import re
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, unquote_plus

import jwt
from aiohttp import web

from ..scenario import Answer, Scenario, msisdn_of
from .base import Releasable

DEMO_CLIENT_ID = "demo-camara-client"
DEMO_CLIENT_SECRET = "demo-camara-secret"
PREFIX = "/camara"
TOKEN_PATH = "/oauth2/token"
APIS = {"roaming": "device-roaming-status", "reachability": "device-reachability-status"}
CORRELATOR = re.compile(r"^[a-zA-Z0-9-_:;.\/<>{}]{0,256}$")
PHONE = re.compile(r"^\+[1-9][0-9]{4,14}$")
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

# The spec's example messages (S1 Generic4xx/503), by code.
MESSAGES = {
    "INVALID_ARGUMENT": "Client specified an invalid argument, request body or query param.",
    "UNAUTHENTICATED": "Request not authenticated due to missing, invalid, or expired "
    "credentials. A new authentication is required.",
    "IDENTIFIER_NOT_FOUND": "The phone number provided is not associated with a customer account",
    "SERVICE_NOT_APPLICABLE": "The service is not available for the provided identifier.",
    "MISSING_IDENTIFIER": "The device cannot be identified.",
    "UNSUPPORTED_IDENTIFIER": "The identifier provided is not supported.",
    "QUOTA_EXCEEDED": "Out of resource quota.",
    "TOO_MANY_REQUESTS": "Rate limit reached.",
    "UNAVAILABLE": "Network issue",
}


class CamaraImitation(Releasable):
    def __init__(
        self,
        scenario: Scenario,
        client_id: str = DEMO_CLIENT_ID,
        client_secret: str = DEMO_CLIENT_SECRET,
        *,
        client_public_key: str | None = None,
        token_ttl_s: int = 3600,
        clock: Callable[[], float] = time.monotonic,
        prefix: str = PREFIX,
    ) -> None:
        super().__init__(scenario)
        self._client_id = client_id
        self._secret = client_secret
        self._public_key = client_public_key
        self.token_ttl_s = token_ttl_s
        self._clock = clock
        self.prefix = prefix
        self._tokens: dict[str, float] = {}  # token -> when it expires (clock)
        self.faults: dict[str, deque[str]] = {k: deque(maxlen=1000) for k in APIS}
        self.token_faults: deque[str] = deque(maxlen=1000)
        self.retry_after = "1"  # what a "throttle" answer asks for, seconds
        self.requests = {k: 0 for k in APIS}  # retrieve requests, per API
        self.refused = 0  # retrieve requests refused for their token
        self.token_requests = 0
        self.tokens_issued = 0
        self.issued: list[str] = []  # every token issued (tests look for them in logs)
        self.tokens_refused = 0  # token requests refused for their client credentials
        self.scopes: list[str] = []  # the scope each token request asked for
        self.correlators: list[str] = []  # the x-correlator of each retrieve request
        # When set, each retrieve request waits until the other API has been asked
        # too: a client asking one after the other never gets its first answer.
        self.hold_until_both = False
        self._arrived = {k: asyncio.Event() for k in APIS}

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post(self.prefix + TOKEN_PATH, self.token)
        for key, api in APIS.items():
            app.router.add_post(f"{self.prefix}/{api}/v1/retrieve", self._handler(key))

    def add_faults(self, *faults: str) -> None:
        """Queue each fault for both APIs."""
        for queue in self.faults.values():
            queue.extend(faults)

    def expire_tokens(self) -> None:
        """Every token issued so far is past its time (as if the clock had run on)."""
        for token in self._tokens:
            self._tokens[token] = float("-inf")

    def revoke_tokens(self) -> None:
        """Forget every token: the client's still look valid to it, not to us."""
        self._tokens.clear()

    # -- token endpoint ---------------------------------------------------------------

    async def token(self, request: web.Request) -> web.StreamResponse:
        self.token_requests += 1
        fault = self.token_faults.popleft() if self.token_faults else None
        if fault == "throttle":
            return web.json_response(
                {"error": "slow_down"}, status=429, headers={"Retry-After": self.retry_after}
            )
        if fault == "server_error":
            return web.json_response({"error": "temporarily_unavailable"}, status=503)
        if fault == "hang":
            await self.hang()
        if request.content_type != "application/x-www-form-urlencoded":
            return web.json_response({"error": "invalid_request"}, status=400)
        form = {k: v[0] for k, v in parse_qs((await request.read()).decode("latin-1")).items()}
        if not self._client_authentic(request, form):
            self.tokens_refused += 1
            return web.json_response(
                {"error": "invalid_client"},
                status=401,
                headers={"WWW-Authenticate": 'Basic realm="camara"'},
            )
        if form.get("grant_type") != "client_credentials":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        self.scopes.append(form.get("scope", ""))
        token = secrets.token_urlsafe(24)
        self._tokens[token] = self._clock() + self.token_ttl_s
        self.tokens_issued += 1
        self.issued.append(token)
        return web.json_response(
            {"access_token": token, "token_type": "Bearer", "expires_in": self.token_ttl_s},
            headers={"Cache-Control": "no-store"},
        )

    def _client_authentic(self, request: web.Request, form: dict[str, str]) -> bool:
        if self._public_key is not None:
            return self._assertion_valid(request, form)
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            pair = base64.b64decode(encoded, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        client_id, sep, secret = pair.partition(":")
        return bool(sep) and (
            hmac.compare_digest(unquote_plus(client_id).encode(), self._client_id.encode())
            & hmac.compare_digest(unquote_plus(secret).encode(), self._secret.encode())
        )

    def _assertion_valid(self, request: web.Request, form: dict[str, str]) -> bool:
        if self._public_key is None or form.get("client_assertion_type") != ASSERTION_TYPE:
            return False
        try:
            claims = jwt.decode(
                form.get("client_assertion", ""),
                self._public_key,
                algorithms=["RS256", "ES256", "ES384", "ES512"],
                audience=str(request.url),
                options={"require": ["iss", "sub", "aud", "exp", "iat", "jti"]},
            )
        except jwt.InvalidTokenError:
            return False
        lifetime = claims["exp"] - claims["iat"]
        return bool(claims["iss"] == claims["sub"] == self._client_id and 0 < lifetime <= 300)

    # -- the two APIs -----------------------------------------------------------------

    def _handler(self, key: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self._retrieve(key, request)

        return handle

    async def _retrieve(self, key: str, request: web.Request) -> web.StreamResponse:
        self.requests[key] += 1
        correlator = request.headers.get("x-correlator", "")
        self.correlators.append(correlator)
        echo = {"x-correlator": correlator} if correlator else {}
        if not CORRELATOR.match(correlator):
            return _error(400, "INVALID_ARGUMENT", {})
        if not self._bearer_valid(request):
            self.refused += 1
            return _error(401, "UNAUTHENTICATED", echo)
        if self.hold_until_both:
            self._arrived[key].set()
            other = next(k for k in APIS if k != key)
            await _first(self._arrived[other].wait(), self._released.wait())
        fault = self.faults[key].popleft() if self.faults[key] else None
        if fault == "throttle":
            return _error(429, "TOO_MANY_REQUESTS", {**echo, "Retry-After": self.retry_after})
        if fault == "quota":
            return _error(429, "QUOTA_EXCEEDED", echo)
        if fault == "server_error":
            return _error(503, "UNAVAILABLE", echo)
        if fault == "not_applicable":
            return _error(422, "SERVICE_NOT_APPLICABLE", echo)
        if fault == "wrong_correlator":
            echo = {"x-correlator": "not-" + correlator}
        if fault == "hang":
            await self.hang()
        try:
            device = json.loads(await request.read()).get("device")
        except (ValueError, AttributeError):
            return _error(400, "INVALID_ARGUMENT", echo)
        if device is None:
            return _error(422, "MISSING_IDENTIFIER", echo)
        if not isinstance(device, dict) or not device:
            return _error(400, "INVALID_ARGUMENT", echo)
        phone = device.get("phoneNumber")
        if phone is None:
            return _error(422, "UNSUPPORTED_IDENTIFIER", echo)
        if not (isinstance(phone, str) and PHONE.match(phone)):
            return _error(400, "INVALID_ARGUMENT", echo)
        digits = msisdn_of(phone)
        assert digits is not None  # PHONE is stricter
        answer = await self.answer(digits)
        if answer.status == "unknown":
            return _error(404, "IDENTIFIER_NOT_FOUND", echo)
        if answer.status == "system_failure":
            return _error(503, "UNAVAILABLE", echo)
        result = _roaming(answer) if key == "roaming" else _reachability(answer)
        if fault == "other_number":
            result["device"] = {"phoneNumber": "+" + _other(digits)}
        if fault == "malformed":
            cut = json.dumps(result).encode()[:25]
            return web.Response(body=cut, content_type="application/json", headers=echo)
        if fault == "partial":
            result.pop("roaming" if key == "roaming" else "reachable")
        return web.json_response(result, headers=echo)

    def _bearer_valid(self, request: web.Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        expires = self._tokens.get(token) if scheme.lower() == "bearer" else None
        return expires is not None and self._clock() < expires


def _roaming(a: Answer) -> dict[str, object]:
    result: dict[str, object] = {"lastStatusTime": _now()}
    roaming = a.status == "live" and bool(a.roaming) and a.serving_mccmnc is not None
    result["roaming"] = roaming
    if roaming and a.serving_mccmnc is not None:  # countryCode/Name absent when not (S4)
        result["countryCode"] = int(a.serving_mccmnc[:3])
        result["countryName"] = [a.roaming_country] if a.roaming_country else []
    return result


def _reachability(a: Answer) -> dict[str, object]:
    result: dict[str, object] = {"lastStatusTime": _now()}
    reachable = a.status in ("live", "barred", "not_provisioned")
    result["reachable"] = reachable
    if reachable:  # connectivity absent when not reachable (S4)
        result["connectivity"] = ["DATA"] if a.status == "not_provisioned" else ["DATA", "SMS"]
    return result


def _error(status: int, code: str, headers: dict[str, str]) -> web.Response:
    body = {"status": status, "code": code, "message": MESSAGES[code]}
    return web.json_response(body, status=status, headers=headers)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _other(digits: str) -> str:
    return digits[:-1] + ("0" if digits[-1] != "0" else "1")


async def _first(*waits: Coroutine[Any, Any, object]) -> None:
    """Return when the first of the coroutines is done; cancel the rest."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
