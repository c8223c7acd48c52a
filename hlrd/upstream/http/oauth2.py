"""OAuth2 client credentials (RFC 6749 4.4): a Bearer token shared by every lookup.

A token lives minutes to hours, so asking one per lookup would double the vendor's
load, and a burst of lookups at start or at expiry would stampede its token
endpoint. So one token is kept until `expires_in` less a margin (read on an injected
clock, so tests move time instead of waiting), lookups that need a token while it is
being fetched wait for that same fetch, and a token an API refuses (401: revoked or
expired early) is dropped only while it is still the current one — two calls refused
together cause one new fetch, not two.

The client authenticates with HTTP Basic over the form-encoded id and secret
(RFC 6749 2.3.1, `client_secret_basic`), or, when a private key is configured, with
`private_key_jwt` (RFC 7523 2.2), which the CAMARA Security and Interoperability
Profile makes a MUST: a JWT signed with the key, aud = the token endpoint, valid for
at most 300 s.

The secret, the assertion and the token travel only in headers and bodies, which
the HTTP client never logs, and no error message here quotes the endpoint's words:
only an RFC 6749 5.2 error code from a fixed list.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import Callable
from contextlib import suppress
from typing import Any
from urllib.parse import quote_plus, urlencode

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from ..base import ProviderError
from .provider import Exchange, Request

ASSERTION_LIFETIME_S = 300  # the CAMARA profile's maximum
MARGIN_S = 30.0  # a token is renewed this long before the endpoint says it expires
DEFAULT_LIFETIME_S = 60.0  # RFC 6749 5.1 only RECOMMENDS expires_in; assume it short
_BEARER_CHARS = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/="
)  # RFC 6750 2.1 b64token: anything else cannot go into a header as it is
_RFC6749_ERRORS = frozenset(
    {
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
        "invalid_dpop_proof",
    }
)


class ClientCredentials:
    """The token cache of one provider; `fetches` counts tokens asked for."""

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        scope: str = "",
        private_key: str = "",
        vendor: str = "oauth2",
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.token_url = token_url
        self._client_id = client_id
        self._secret = client_secret
        self._scope = scope
        self._vendor = vendor
        self._clock = clock
        self._wall_clock = wall_clock
        self._key: Any = None
        self._algorithm = ""
        if private_key:
            self._key, self._algorithm = _signing_key(private_key, vendor)
        self._token: str | None = None
        self._renew_at = 0.0
        self._fetch: asyncio.Task[str] | None = None
        self.fetches = 0

    async def token(self, exchange: Exchange) -> str:
        """The current token, fetched first when there is none or it is due."""
        if self._token is not None and self._clock() < self._renew_at:
            return self._token
        if self._fetch is None:
            self._fetch = asyncio.create_task(self._get(exchange))
            self._fetch.add_done_callback(self._fetched)
        # Shielded: a lookup that gives up (cancelled) must not end the fetch that
        # the other waiting lookups share.
        return await asyncio.shield(self._fetch)

    def refused(self, token: str) -> None:
        """An API said 401 to `token`: the next `token()` fetches a new one, unless
        another call has already replaced it."""
        if self._token == token:
            self._token = None

    async def close(self) -> None:
        self._token = None
        fetch, self._fetch = self._fetch, None
        if fetch is not None:
            fetch.cancel()
            with suppress(asyncio.CancelledError, ProviderError):
                await fetch

    def _fetched(self, task: asyncio.Task[str]) -> None:
        if self._fetch is task:
            self._fetch = None
        if not task.cancelled():
            task.exception()  # read here: a fetch nobody waits for any more is no warning

    async def _get(self, exchange: Exchange) -> str:
        self.fetches += 1
        form = {"grant_type": "client_credentials"}
        if self._scope:
            form["scope"] = self._scope
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
        if self._key is not None:
            form["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
            form["client_assertion"] = self._assertion()
        else:
            pair = f"{quote_plus(self._client_id)}:{quote_plus(self._secret)}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        body = urlencode(form).encode()
        started = self._clock()
        answer = await exchange(Request("POST", self.token_url, body, lambda: headers))
        token, lifetime = self._read(answer.status, answer.body)
        self._token = token
        self._renew_at = started + lifetime - min(MARGIN_S, lifetime / 4)
        return token

    def _assertion(self) -> str:
        now = int(self._wall_clock())
        claims = {
            "iss": self._client_id,
            "sub": self._client_id,
            "aud": self.token_url,
            "jti": str(uuid.uuid4()),
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_S,
        }
        return jwt.encode(claims, self._key, algorithm=self._algorithm)

    def _read(self, status: int, body: bytes) -> tuple[str, float]:
        v = self._vendor
        try:
            d: Any = json.loads(body)
        except ValueError:
            d = None
        if status != 200:
            error = d.get("error") if isinstance(d, dict) else None
            error = error if isinstance(error, str) else None
            said = f" ({error})" if error in _RFC6749_ERRORS else ""
            if error in ("invalid_client", "unauthorized_client") or (
                status == 401 and error not in _RFC6749_ERRORS
            ):
                raise ProviderError(
                    f"{v}: the token endpoint refused the client credentials{said} "
                    f"(HTTP {status}): check api_key and api_secret (or private_key)"
                )
            hint = ": check scope" if error == "invalid_scope" else ""
            raise ProviderError(f"{v}: the token endpoint answered HTTP {status}{said}{hint}")
        if not isinstance(d, dict):
            raise ProviderError(f"{v}: the token endpoint answered something that is not a token")
        token = d.get("access_token")
        kind = d.get("token_type")
        if not (isinstance(token, str) and token and set(token) <= _BEARER_CHARS):
            raise ProviderError(f"{v}: the token endpoint answered without a usable access_token")
        if not (isinstance(kind, str) and kind.lower() == "bearer"):
            raise ProviderError(f"{v}: the token endpoint answered a token that is not Bearer")
        return token, _lifetime(d.get("expires_in"))


def _lifetime(value: Any) -> float:
    """expires_in in seconds; some endpoints send it as a string of digits."""
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return DEFAULT_LIFETIME_S


def _signing_key(pem: str, vendor: str) -> tuple[Any, str]:
    """The key and the JWS algorithm its type calls for (RS256, or ES256/384/512 by
    curve): the CAMARA profile names no single algorithm."""
    try:
        key = load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        raise ValueError(f"{vendor}: private_key is not a PEM private key") from None
    if isinstance(key, rsa.RSAPrivateKey):
        return key, "RS256"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        bits = {256: "ES256", 384: "ES384", 521: "ES512"}.get(key.curve.key_size)
        if bits is not None:
            return key, bits
    raise ValueError(f"{vendor}: private_key must be an RSA or EC (P-256/384/521) key")
