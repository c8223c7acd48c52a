"""CAMARA Device Roaming Status v1.1 and Device Reachability Status v1.1 (GSMA Open
Gateway r1.2): the operator's own network says where a number is served and whether
it is reachable (docs/vendors/camara.md).

One lookup asks both APIs at once — the two answers come from separate systems and
neither waits for the other, so a lookup takes the slower of the two, not their sum:

    POST {base_url}/device-roaming-status/v1/retrieve       {"device": {"phoneNumber": "+E164"}}
    POST {base_url}/device-reachability-status/v1/retrieve  (the same body)

with a 2-legged Bearer token (oauth2.ClientCredentials: one token for all lookups,
fetched anew once when an API says 401) and a fresh UUID as `x-correlator`. The
lookup id is not sent: a caller may choose it, and may well put the number in it.
An answer whose echoed x-correlator differs from ours answers someone else's request
and is refused; one without the header is taken (the spec says MUST echo, but a
gateway in between may drop it, and the number check below still holds).

What the answers mean for hlrd:
  * reachable true -> delivered; false -> MAP absent subscriber. `connectivity`
    (DATA, SMS) is not read: DATA means "regardless of SMS", so its absence proves
    nothing about SMS, and barring or a missing SMS teleservice is never told.
  * roaming true -> the visited country: `countryName` when it names exactly one,
    else the MCC in `countryCode`; roaming false -> the number's own country, so
    hlrd says NOT_ROAMING. A device that is not reachable gets neither: where it was
    last attached is not where it is (as an HLR's absent subscriber has no MSC).
  * 404 IDENTIFIER_NOT_FOUND: the number is not a customer of this operator. That
    is not "no such number" (MAP unknown subscriber would tell a dialer to drop it):
    the number may well live at another operator, so the lookup fails and the
    router asks the next provider. It fails the lookup even when the other API
    answered, since the operator disowns the number itself. NOT_FOUND is a missing
    resource (a wrong base_url as much as a stranger's number), failing one call.
  * One call failing (timeout, 503, a scope the token lacks, a malformed body) while
    the other answers gives a partial answer — roaming known and reachability
    unknown, or the reverse — logged within a budget; both failing fail the lookup.
  * No IMSI, MSC, network code or porting: CAMARA tells none of them.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog

from ...config import HttpProviderConfig
from ...domain.countries import country_of_mcc
from ...domain.map_errors import MapError
from ...domain.numbers import region_of_digits
from ...domain.result import HlrAnswer
from ...log_budget import LogBudget
from ..base import ProviderError
from .client import HttpAnswer
from .oauth2 import ClientCredentials
from .provider import Exchange, Request

ROAMING = "device-roaming-status"
REACHABILITY = "device-reachability-status"
VERSION = "v1"  # the major version is the path's; v1.1 is what the fields follow
TOKEN_PATH = "/oauth2/token"  # below base_url when token_url is not configured

log = structlog.get_logger("hlrd.upstream.camara")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Roaming:
    roaming: bool
    country: str | None  # ISO alpha-2 of the visited country, when roaming and told


@dataclass(frozen=True, slots=True)
class Reachability:
    reachable: bool


class NotACustomer(ProviderError):
    """404 IDENTIFIER_NOT_FOUND: decides the lookup whatever the other call says."""


class Camara:
    def __init__(
        self,
        cfg: HttpProviderConfig,
        clock: Callable[[], float] = time.monotonic,
        correlator: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self._name = cfg.name
        self.tokens = ClientCredentials(
            cfg.token_url or cfg.base_url.rstrip("/") + TOKEN_PATH,
            cfg.api_key,
            cfg.api_secret,
            scope=cfg.scope,
            private_key=cfg.private_key,
            vendor="camara",
            clock=clock,
        )
        self._correlator = correlator
        self._log_budget = LogBudget(burst=5, interval_s=60.0, clock=clock)

    async def look_up(self, exchange: Exchange, msisdn: str, lookup_id: str) -> HlrAnswer:
        roaming, reach = await asyncio.gather(
            self._ask(exchange, ROAMING, msisdn, read_roaming),
            self._ask(exchange, REACHABILITY, msisdn, read_reachability),
            return_exceptions=True,
        )
        failed: list[tuple[str, ProviderError]] = []
        for api, got in ((REACHABILITY, reach), (ROAMING, roaming)):
            if isinstance(got, ProviderError):
                failed.append((api, got))
            elif isinstance(got, BaseException):
                raise got  # a bug or a cancellation, not the vendor's answer
        for _, error in failed:
            if isinstance(error, NotACustomer):
                raise error
        if len(failed) == 2:
            raise failed[0][1]  # the reachability call's: it matters more to a dialer
        if failed:
            self._log_partial(*failed[0])
        return answer_of(
            msisdn,
            roaming if isinstance(roaming, Roaming) else None,
            reach if isinstance(reach, Reachability) else None,
        )

    async def close(self) -> None:
        await self.tokens.close()

    async def _ask(
        self, exchange: Exchange, api: str, msisdn: str, read: Callable[[dict[str, Any]], T]
    ) -> T:
        body = json.dumps({"device": {"phoneNumber": "+" + msisdn}}, separators=(",", ":"))
        request = _Call(api, body.encode(), self._correlator())
        token = await self.tokens.token(exchange)
        answer = await request.send(exchange, token)
        if answer.status == 401:  # revoked or expired before its time: once more, anew
            self.tokens.refused(token)
            answer = await request.send(exchange, await self.tokens.token(exchange))
        return read_answer(api, answer.status, answer.body, msisdn, read)

    def _log_partial(self, api: str, error: ProviderError) -> None:
        suppressed = self._log_budget.take()
        if suppressed is not None:
            log.warning(
                "upstream.camara_partial",
                provider=self._name,
                failed_api=api,
                outcome=error.outcome,
                error=str(error),
                suppressed=suppressed,
            )


@dataclass(frozen=True, slots=True)
class _Call:
    api: str
    body: bytes
    correlator: str

    async def send(self, exchange: Exchange, token: str) -> HttpAnswer:
        headers = {
            "Authorization": "Bearer " + token,
            "Content-Type": "application/json",
            "Accept": "application/json",
            "x-correlator": self.correlator,
        }
        path = f"/{self.api}/{VERSION}/retrieve"
        try:
            answer = await exchange(
                Request("POST", path, self.body, lambda: headers, final=_quota_used_up)
            )
        except ProviderError as exc:
            raise ProviderError(f"{exc} ({self.api})", exc.outcome) from None
        echoed = _header(answer.headers, "x-correlator")
        if echoed is not None and echoed != self.correlator:
            raise ProviderError(f"camara {self.api}: an answer to another request (x-correlator)")
        return answer


def read_answer(
    api: str, status: int, body: bytes, msisdn: str, read: Callable[[dict[str, Any]], T]
) -> T:
    """A 200 body read by `read`, or ProviderError for any other answer."""
    if status != 200:
        raise _error(api, status, body)
    try:
        d = json.loads(body)
    except ValueError:
        raise ProviderError(f"camara {api} answered something that is not JSON") from None
    if not isinstance(d, dict):
        raise ProviderError(f"camara {api} answered JSON that is not a status")
    device = d.get("device")
    if device is not None and device != {"phoneNumber": "+" + msisdn}:
        raise ProviderError(f"camara {api} answered about another number")
    time_ = d.get("lastStatusTime")
    if time_ is not None and not isinstance(time_, str):
        raise ProviderError(f"camara {api} answered a lastStatusTime that is not a time")
    return read(d)


def read_roaming(d: dict[str, Any]) -> Roaming:
    roaming = d.get("roaming")
    if not isinstance(roaming, bool):
        raise ProviderError(f"camara {ROAMING} answered without roaming (not v1.1)")
    names = d.get("countryName")
    code = d.get("countryCode")
    names_ok = names is None or (isinstance(names, list) and all(isinstance(n, str) for n in names))
    code_ok = code is None or (isinstance(code, int) and not isinstance(code, bool))
    if not (names_ok and code_ok):
        raise ProviderError(f"camara {ROAMING} answered a country that is not the v1.1 shape")
    if not roaming:
        return Roaming(False, None)
    return Roaming(True, _visited(names or [], code))


def read_reachability(d: dict[str, Any]) -> Reachability:
    reachable = d.get("reachable")
    if not isinstance(reachable, bool):
        raise ProviderError(f"camara {REACHABILITY} answered without reachable (not v1.1)")
    connectivity = d.get("connectivity")
    if connectivity is not None and not (
        isinstance(connectivity, list) and all(isinstance(c, str) for c in connectivity)
    ):
        raise ProviderError(f"camara {REACHABILITY} answered a connectivity that is not a list")
    return Reachability(reachable)


def answer_of(msisdn: str, roaming: Roaming | None, reach: Reachability | None) -> HlrAnswer:
    """What hlrd makes of the two answers (either may be missing)."""
    delivered = reach.reachable if reach is not None else None
    serving: str | None = None
    if roaming is not None and delivered is not False:
        serving = roaming.country if roaming.roaming else region_of_digits(msisdn)
    return HlrAnswer(
        delivered=delivered,
        map_error=int(MapError.ABSENT_SUBSCRIBER) if delivered is False else None,
        serving_country=serving,
    )


def _visited(names: list[str], code: int | None) -> str | None:
    """countryName when it is one country; else the MCC's country if it is among the
    names (an MCC shared by several territories names them all); else unknown."""
    countries = [n.upper() for n in names if len(n) == 2 and n.isascii() and n.isalpha()]
    if len(names) == 1 and len(countries) == 1:
        return countries[0]
    if code is not None and 200 <= code <= 799:
        c = country_of_mcc(str(code))
        if c is not None and (not countries or c.iso in countries):
            return c.iso
    return None


# The v1.1 error codes (ErrorInfo.code), and what each means for whoever runs hlrd.
_CODES = {
    "INVALID_ARGUMENT": "refused the request as invalid",
    "UNAUTHENTICATED": "refused the access token, also a fresh one",
    "PERMISSION_DENIED": "the token lacks this API's scope: check scope",
    "IDENTIFIER_NOT_FOUND": "the number is not a customer of this operator",
    "NOT_FOUND": "not found: check base_url",
    "SERVICE_NOT_APPLICABLE": "the service is not available for this line",
    "MISSING_IDENTIFIER": "the device cannot be identified",
    "UNSUPPORTED_IDENTIFIER": "the operator does not identify devices by phone number",
    "UNNECESSARY_IDENTIFIER": "the operator wants a 3-legged token that names the device",
    "QUOTA_EXCEEDED": "the account's quota is used up",
    "TOO_MANY_REQUESTS": "rate limit reached",
    "UNAVAILABLE": "the service is unavailable",
}


def _error(api: str, status: int, body: bytes) -> ProviderError:
    """ProviderError for an ErrorInfo answer. Only a code from _CODES is quoted: the
    free-text message might repeat what was sent, the number included."""
    try:
        d = json.loads(body)
    except ValueError:
        d = None
    code = d.get("code") if isinstance(d, dict) else None
    if code not in _CODES:
        return ProviderError(f"camara {api} answered HTTP {status}")
    message = f"camara {api}: {_CODES[code]} (HTTP {status} {code})"
    if code == "IDENTIFIER_NOT_FOUND":
        return NotACustomer(message)
    if status == 429:  # try later, or elsewhere: the provider is not failing
        return ProviderError(message, "throttled")
    return ProviderError(message)


def _quota_used_up(status: int, body: bytes) -> bool:
    """A 429 for the account's quota, not its rate: retrying within the lookup's
    seconds only spends requests (the lookup ends throttled, and fails over)."""
    return status == 429 and b"QUOTA_EXCEEDED" in body


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by its case-insensitive name (aiohttp's are; a plain dict is not)."""
    found = headers.get(name)
    if found is not None:
        return found
    lower = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lower), None)
