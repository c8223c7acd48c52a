"""Infobip Number Lookup (`POST /number/1/query`): many numbers in one request.

Infobip answers up to 1,000 numbers per request, so asking them one by one only
spends round trips and the request rate the account is throttled by: concurrent
lookups join a pending batch, asked for when it holds `batch_size` numbers or
`batch_wait_s` after its first number joined, whichever comes first. It goes out
through the exchange of its first lookup, whose deadline is the earliest, and keeps
taking numbers until the provider's rate gives it a slot: at 1,000 lookups/s and
`tps = 10` a request carries about a hundred numbers, however short the wait.

    POST /number/1/query   Authorization: App <api_key>
    {"to": ["48600000001", ...]}          E.164 digits without "+", as every
                                          vendor example writes them
    {"results": [{"to", "mccMnc", "imsi", "originalNetwork", "ported",
                  "portedNetwork", "roaming", "roamingNetwork", "servingMSC",
                  "status", "error"}], "bulkId"}

Results are matched to lookups by their `to`, never by position: Infobip does not
promise an order, and a result about a number nobody asked for must not answer
someone else's lookup. docs/vendors/infobip-number-lookup.md has the field list.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from phonenumbers import COUNTRY_CODE_TO_REGION_CODE
from phonenumbers.geodata.locale import LOCALE_DATA

from ...domain.map_errors import MapError
from ...domain.numbers import region_of_digits
from ...domain.result import HlrAnswer
from ..base import ProviderError
from .provider import Exchange, Request

PATH = "/number/1/query"
MAX_NUMBERS = 1000  # per request (NcQueryRequest.to maxItems); beyond it HTTP 400
STOPPED = "infobip: the provider stopped"
LEFT_OUT = "infobip left the number out of its answer"

# Infobip's error ids are GSM MAP error codes (27 EC_ABSENT_SUBSCRIBER, 1
# EC_UNKNOWN_SUBSCRIBER, ...); an id hlrd does not know as one is not passed on as
# a MAP error, so that no other code is read as, say, "unknown subscriber".
_MAP_CODES = frozenset(int(e) for e in MapError if e)
# status.groupId: 3 DELIVERED reachable, 2 UNDELIVERABLE not; PENDING (1),
# EXPIRED (4), REJECTED (5) say nothing of the subscriber.
_DELIVERED_BY_GROUP: dict[int, bool] = {3: True, 2: False}


@dataclass(eq=False, slots=True)
class _Batch:
    exchange: Exchange  # the first lookup's: its deadline is the batch's
    # number (digits) -> the lookups waiting for it; one number is asked once
    waiters: dict[str, list[asyncio.Future[HlrAnswer]]] = field(default_factory=dict)
    timer: asyncio.TimerHandle | None = None
    task: asyncio.Task[None] | None = None  # set once asked for
    numbers: list[str] | None = None  # set once its request is written: closed

    def outstanding(self) -> int:
        return sum(not f.done() for futures in self.waiters.values() for f in futures)

    def fail(self, exc: ProviderError) -> None:
        for futures in self.waiters.values():
            for f in futures:
                if not f.done():
                    f.set_exception(ProviderError(str(exc), exc.outcome))


class Infobip:
    """The vendor half of the adapter, as a batcher of lookups (see the module doc).

    Reading a result: error.id 0 with status group DELIVERED -> reachable; a
    non-zero error.id is the MAP error (absent, unknown, barred, ...); other status
    groups leave reachability unknown. Roaming is hlrd's own country compare: the
    serving MSC when the answer has one; else, when Infobip says roaming, the
    country of `roamingNetwork` (Infobip gives its calling code and English name,
    no MCC); when it says not roaming, the number's own country and `mccMnc`.
    """

    def __init__(
        self, api_key: str, batch_size: int = MAX_NUMBERS, batch_wait_s: float = 0.005
    ) -> None:
        self._key = api_key
        self._size = max(1, min(batch_size, MAX_NUMBERS))
        self._wait_s = max(0.0, batch_wait_s)
        self._pending: _Batch | None = None
        self._in_flight: set[_Batch] = set()

    @property
    def waiting(self) -> int:
        """Lookups not yet answered, sent or not (for tests and leak checks)."""
        pending = self._pending.outstanding() if self._pending else 0
        return pending + sum(b.outstanding() for b in self._in_flight)

    @property
    def batches_in_flight(self) -> int:
        return len(self._in_flight)

    def request(self, numbers: list[str] | Callable[[], list[str]]) -> Request:
        """The query for these numbers; for a callable, the numbers it gives when
        the request may go (the batch closes then)."""
        auth = {
            "Authorization": "App " + self._key,
            "Content-Type": "application/json",
            "Accept": "application/json",
        }

        def body() -> bytes:
            asked = numbers() if callable(numbers) else numbers
            return json.dumps({"to": asked}, separators=(",", ":")).encode()

        return Request("POST", PATH, body if callable(numbers) else body(), lambda: dict(auth))

    async def look_up(self, exchange: Exchange, msisdn: str, lookup_id: str) -> HlrAnswer:
        loop = asyncio.get_running_loop()
        digits = msisdn.removeprefix("+")
        batch = self._pending
        if batch is None:
            batch = self._pending = _Batch(exchange)
            batch.timer = loop.call_later(self._wait_s, self._send, batch)
        future: asyncio.Future[HlrAnswer] = loop.create_future()
        batch.waiters.setdefault(digits, []).append(future)
        if len(batch.waiters) >= self._size:
            self._close(batch)
            self._send(batch)
        try:
            return await future
        except asyncio.CancelledError:
            self._forget(batch, digits, future)
            raise

    async def close(self) -> None:
        batch, self._pending = self._pending, None
        if batch is not None:
            if batch.timer is not None:
                batch.timer.cancel()
            batch.fail(ProviderError(STOPPED))
        tasks = [b.task for b in self._in_flight if b.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _send(self, batch: _Batch) -> None:
        """Ask for the batch (its timer, or full), once; it keeps taking numbers
        until its request is written."""
        if batch.task is not None or not batch.waiters:
            return
        if batch.timer is not None:
            batch.timer.cancel()
        self._in_flight.add(batch)
        batch.task = asyncio.get_running_loop().create_task(self._ask(batch))

    def _close(self, batch: _Batch) -> list[str]:
        """No more numbers join: its request is being written (or it is full)."""
        if self._pending is batch:
            self._pending = None
        if batch.timer is not None:
            batch.timer.cancel()
        if batch.numbers is None:
            batch.numbers = list(batch.waiters)
        return batch.numbers

    async def _ask(self, batch: _Batch) -> None:
        try:
            answer = await batch.exchange(self.request(lambda: self._close(batch)))
            outcomes = read(answer.status, answer.body, self._close(batch))
        except ProviderError as exc:
            batch.fail(exc)
            return
        except asyncio.CancelledError:
            batch.fail(ProviderError(STOPPED))
            raise
        except Exception:  # a fault of ours must not leave a thousand lookups waiting
            batch.fail(ProviderError("infobip: the answer could not be read"))
            return
        finally:
            self._close(batch)  # also when it failed before its request was written
            self._in_flight.discard(batch)
        for digits, futures in batch.waiters.items():
            outcome = outcomes[digits]
            for f in futures:
                if f.done():
                    continue
                if isinstance(outcome, ProviderError):
                    f.set_exception(ProviderError(str(outcome), outcome.outcome))
                else:
                    f.set_result(outcome)

    def _forget(self, batch: _Batch, digits: str, future: asyncio.Future[HlrAnswer]) -> None:
        """A lookup given up by its caller: not asked for if its batch is not sent
        yet, and a sent batch nobody waits for any more is not waited for either."""
        futures = batch.waiters.get(digits, [])
        if future in futures:
            futures.remove(future)
        if batch.numbers is None:  # its request is not written: the number is not asked
            if not futures:
                batch.waiters.pop(digits, None)
            if not batch.waiters:
                self._close(batch)
                if batch.task is not None:
                    batch.task.cancel()
        elif batch.task is not None and batch.outstanding() == 0:
            batch.task.cancel()


def read(
    status: int, body: bytes, numbers: Collection[str]
) -> dict[str, HlrAnswer | ProviderError]:
    """Each asked number's answer, or the reason it has none. ProviderError for an
    answer that is no batch answer at all (it fails every lookup of the batch)."""
    if status != 200:
        raise ProviderError(_http_error(status, body))
    try:
        d = json.loads(body)
    except ValueError:
        raise ProviderError("infobip answered something that is not JSON") from None
    results = d.get("results") if isinstance(d, dict) else None
    if not isinstance(results, list):
        raise ProviderError("infobip answered JSON that is not a lookup result")
    bulk_id = d.get("bulkId") if isinstance(d.get("bulkId"), str) else None
    asked = set(numbers)
    by_number: dict[str, dict[str, Any]] = {}
    for r in results:
        to = _digits(r.get("to").removeprefix("+")) if _has_str(r, "to") else None
        if to in asked and to not in by_number:  # another number's is not taken
            by_number[to] = r
    out: dict[str, HlrAnswer | ProviderError] = {}
    for number in numbers:
        r = by_number.get(number)
        if r is None:
            out[number] = ProviderError(LEFT_OUT)
            continue
        try:
            out[number] = read_result(r, number, bulk_id)
        except ProviderError as exc:
            out[number] = exc
    return out


def read_result(d: dict[str, Any], number: str, bulk_id: str | None = None) -> HlrAnswer:
    """One `results` entry (NcResponseDetails) as hlrd's answer."""
    status = d.get("status")
    group = status.get("groupId") if isinstance(status, dict) else None
    if not isinstance(group, int) or isinstance(group, bool):
        raise ProviderError("infobip answered without a status for the number")
    error = d.get("error")
    error_id = error.get("id") if isinstance(error, dict) else None
    map_error: int | None = None
    if _is_int(error_id) and error_id != 0:
        delivered: bool | None = False
        map_error = error_id if error_id in _MAP_CODES else None
    else:
        delivered = _DELIVERED_BY_GROUP.get(group)
    connected = delivered is True
    roaming = d.get("roaming")
    mccmnc = _digits(d.get("mccMnc"))
    mccmnc = mccmnc if mccmnc and len(mccmnc) in (5, 6) else None
    serving_country: str | None = None
    serving_mccmnc: str | None = None
    if connected and roaming is True:
        serving_country = network_country(d.get("roamingNetwork"))
    elif connected and roaming is False:
        serving_country = region_of_digits(number)
        serving_mccmnc = mccmnc
    ported = d.get("ported")
    return HlrAnswer(
        delivered=delivered,
        map_error=map_error,
        imsi=_digits(d.get("imsi")),
        mccmnc=mccmnc,
        serving_mccmnc=serving_mccmnc,
        msc=_digits(d.get("servingMSC")) if connected else None,
        ported=ported if isinstance(ported, bool) else None,
        message_id=bulk_id,
        serving_country=serving_country,
    )


def network_country(network: Any) -> str | None:
    """ISO alpha-2 of an Infobip `Network`, which names its country by calling code
    and English name only. A code of one country is that country; a code countries
    share (+1, +7, +44, ...) only when `countryName` names one of them — guessing
    the largest would turn a US subscriber in Canada into one at home."""
    if not isinstance(network, dict):
        return None
    prefix = _digits(network.get("countryPrefix"))
    if prefix is None or len(prefix) > 3:
        return None
    regions = [r for r in COUNTRY_CODE_TO_REGION_CODE.get(int(prefix), ()) if r != "001"]
    if len(regions) == 1:
        return regions[0]
    name = network.get("countryName")
    if not isinstance(name, str):
        return None
    wanted = name.strip().casefold()
    named = [r for r in regions if english_name(r).casefold() == wanted]
    return named[0] if len(named) == 1 else None


def english_name(region: str) -> str:
    """The country's English name as libphonenumber's locale data writes it."""
    names = LOCALE_DATA.get(region, {})
    name = names.get("en", "")
    return names.get(name[1:], "") if name.startswith("*") else name


def _http_error(status: int, body: bytes) -> str:
    """Infobip's `requestError.serviceException.messageId` (an upper-case code) is
    named; its `text` is not, since it may quote the request back."""
    message_id = _message_id(body)
    what = f"HTTP {status} {message_id}" if message_id else f"HTTP {status}"
    if status in (401, 403):
        return f"infobip refused the credentials ({what}): check api_key"
    if status == 400:
        return f"infobip refused the request ({what})"
    return f"infobip answered {what}"


def _message_id(body: bytes) -> str | None:
    try:
        d = json.loads(body)
        value = d["requestError"]["serviceException"]["messageId"]
    except (ValueError, KeyError, TypeError):
        return None
    ok = isinstance(value, str) and 0 < len(value) <= 40
    return value if ok and value.isascii() and value.replace("_", "").isalpha() else None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _has_str(d: Any, key: str) -> bool:
    return isinstance(d, dict) and isinstance(d.get(key), str)


def _digits(value: Any) -> str | None:
    return value if isinstance(value, str) and value.isascii() and value.isdigit() else None
