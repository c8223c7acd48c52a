"""LookupService: normalize -> cache -> single-flight -> provider (failover) -> derive -> decide.

The one way into lookups for every front end (HTTP API, SMPP server, CLI, CSV jobs).
Nothing here knows about HTTP requests or SMPP sessions of clients.
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import structlog

from .cache.answers import AnswerCache
from .compliance.gate import ListGate
from .compliance.policy import DEFAULT, CallPolicy
from .config import Config
from .domain.decision import Decision, Policy, decide, decision_inputs
from .domain.derive import derive
from .domain.masking import mask_msisdn
from .domain.numbers import InvalidNumber, Msisdn, normalize
from .domain.result import LookupResult, Outcome, Timings
from .logging_setup import log_info
from .metrics import Metrics
from .upstream.base import NOT_BOUND, Provider, ProviderError
from .upstream.breaker import CircuitBreaker
from .upstream.router import Router

log = structlog.get_logger("hlrd.service")

# What a provider attempt that sent nothing, for want of a bind, is counted as.
NOT_BOUND_OUTCOME = "not_bound"
ATTEMPT_OUTCOMES = (*(o.value for o in Outcome), NOT_BOUND_OUTCOME)
# A caller's own ids for a lookup's log lines ({"message_id": ...}, {"request_id": ...}),
# so a platform's or a client's id leads to the lookup. Front ends choose the keys.
Trace = Mapping[str, str]
_NO_TRACE: Trace = {}


NUMBERS_REMEMBERED = 50_000  # normalized numbers kept, as written by callers
DECISIONS_REMEMBERED = 4_096  # distinct (outcome, reachability, roaming, country, zone)


class ShuttingDown(Exception):
    """The service no longer takes lookups."""


@dataclass(frozen=True, slots=True)
class Check:
    result: LookupResult
    decision: Decision


_ANSWERED = frozenset({Outcome.OK, Outcome.PARTIAL})


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 3)


def new_lookup_id() -> str:
    """A correlation id for logs and answers; unique enough, not a secret.

    random, not uuid4: uuid4 reads os.urandom (a system call) on every lookup.
    """
    return f"{random.getrandbits(64):016x}"


def _deliver(
    mine: asyncio.Future[LookupResult],
    lookup_id: str | None,
    shared: asyncio.Future[LookupResult],
) -> None:
    """A caller's outcome of a (possibly shared) lookup; a joined caller's under its
    own lookup id."""
    if shared.cancelled():
        if not mine.done():
            mine.cancel()
        return
    exc = shared.exception()  # read even when nobody waits: no "never retrieved" noise
    if mine.done():
        return
    if exc is not None:
        mine.set_exception(exc)
    elif lookup_id is None:
        mine.set_result(shared.result())
    else:
        mine.set_result(replace(shared.result(), lookup_id=lookup_id))


def strictest(*limits: float | None) -> float | None:
    """The smallest of the max ages given (None where a party sets none)."""
    given = [x for x in limits if x is not None]
    return min(given) if given else None


def _too_old(result: LookupResult, max_age: float | None) -> bool:
    return max_age is not None and result.cache.hit and result.cache.age_s > max_age


def _unready(p: Provider) -> bool:
    return not p.ready


def _state_of(breaker: CircuitBreaker) -> Callable[[], float]:
    return lambda: float(breaker.state)


def _failed(
    lookup_id: str,
    msisdn: Msisdn,
    provider: Provider,
    outcome: Outcome,
    error: str,
    upstream_ms: float | None,
) -> LookupResult:
    return LookupResult(
        lookup_id=lookup_id,
        msisdn=msisdn.e164,
        provider=provider.name,
        transport=provider.transport,
        outcome=outcome,
        error=error,
        timings=Timings(upstream_ms=upstream_ms),
    )


class LookupService:
    def __init__(
        self,
        config: Config,
        providers: Sequence[Provider],
        metrics: Metrics,
        cache: AnswerCache | None = None,
    ) -> None:
        self.config = config
        self.providers = list(providers)
        self.router = Router(self.providers, config.routes)
        self.gate: ListGate | None = None  # the do-not-call lists, when the daemon has them
        # Keys the IMSIs answers tell (result.imsi_key), when the daemon has a key.
        self.imsi_keyer: Callable[[str], bytes] | None = None
        self.metrics = metrics
        self.cache = cache
        self.breakers: dict[str, CircuitBreaker] = {}
        if config.breaker.enabled:
            b = config.breaker
            for p in self.providers:
                breaker = self.breakers[p.name] = CircuitBreaker(
                    b.failures, b.error_ratio, b.window, b.min_calls, b.cooldown_s
                )
                metrics.watch(metrics.circuit_state, (p.name,), _state_of(breaker))
                metrics.touch(metrics.circuit_opened, p.name)
        self._numbers: dict[str, Msisdn] = {}  # as written -> normalized, bounded
        # What decide() depends on -> the decision and its counters; bounded.
        self._decisions: dict[object, tuple[Decision, list[Any]]] = {}
        self._inflight: dict[str, asyncio.Task[LookupResult]] = {}  # named by lookup id
        self._tasks: set[asyncio.Task[LookupResult]] = set()
        self.accepting = True
        self._create_series()

    def _create_series(self) -> None:
        """Every series a lookup can count, at 0 from the start."""
        m = self.metrics
        for p in self.providers:
            m.touch_each(m.lookups, (p.name,), [o.value for o in Outcome])
            m.touch_each(m.lookup_seconds, (p.name,), [o.value for o in Outcome])
            m.touch_each(m.upstream_attempts, (p.name,), ATTEMPT_OUTCOMES)
            m.touch(m.failovers, p.name)
        # "none": no provider bound (or none configured); such a lookup has failed.
        m.touch(m.lookups, "none", Outcome.FAILED.value)
        m.touch(m.lookup_seconds, "none", Outcome.FAILED.value)
        for p in self.providers:
            m.touch(m.cost_spent, p.name, p.currency)
            m.touch(m.cost_saved, p.name, p.currency)

    @property
    def ready(self) -> bool:
        return any(p.ready for p in self.providers)

    async def wait_ready(self) -> None:
        waits = [asyncio.ensure_future(p.wait_ready()) for p in self.providers]
        _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for w in pending:
            w.cancel()

    @property
    def in_flight(self) -> int:
        return len(self._inflight)

    def normalize(self, raw: str) -> Msisdn:
        """E.164 or InvalidNumber (counted, never logged in clear).

        Numbers seen lately are remembered as written: parsing with phonenumbers
        (~30 µs) costs more than answering from the cache, and a dialer asks about
        the same numbers again and again.
        """
        known = self._numbers.get(raw)
        if known is not None:
            return known
        try:
            msisdn = normalize(
                raw, self.config.numbers.default_region, self.config.numbers.mobile_only
            )
        except InvalidNumber as exc:
            self.metrics.rejected_numbers.labels(exc.problem.value).inc()
            raise
        numbers = self._numbers
        if len(numbers) >= NUMBERS_REMEMBERED:
            del numbers[next(iter(numbers))]  # the oldest first
        numbers[raw] = msisdn
        return msisdn

    async def lookup(
        self,
        msisdn: Msisdn,
        lookup_id: str | None = None,
        trace: Trace | None = None,
        max_age: float | None = None,
        fresh: bool = False,
    ) -> LookupResult:
        """Concurrent lookups of one number share one upstream query."""
        return await self.begin(msisdn, lookup_id, trace, max_age, fresh)

    def begin(
        self,
        msisdn: Msisdn,
        lookup_id: str | None = None,
        trace: Trace | None = None,
        max_age: float | None = None,
        fresh: bool = False,
        policy: Policy | None = None,
    ) -> asyncio.Future[LookupResult]:
        """Start (or join) a lookup and return this caller's future of its result.

        A cached answer young enough (its kind's time to live, and `max_age` seconds
        when given) answers at once; `fresh` asks the providers whatever is cached.
        The future is the caller's own: cancelling it (an HTTP client that went away)
        never cancels the query others may share. Front ends that answer by callback
        (the SMPP server) add a done-callback instead of awaiting: no task of theirs.
        `trace` goes into the lookup's log lines; a caller that joins a lookup in
        flight gets a `lookup.joined` line with its own id, its trace and the shared
        lookup's id (whose `lookup.done` has the result).
        """
        if not self.accepting:
            raise ShuttingDown("hlrd is shutting down")
        loop = asyncio.get_running_loop()
        mine: asyncio.Future[LookupResult] = loop.create_future()
        max_age = strictest(max_age, (policy or self.config.policy).max_age_s)
        cache = self.cache
        if cache is not None and not fresh:
            hit = cache.peek(msisdn.e164, max_age, lookup_id or new_lookup_id())
            if hit is not None:
                mine.set_result(self._served(hit, trace))
                return mine
        # A fresh lookup never joins one that may answer from the store.
        key = msisdn.e164 + "!" if fresh else msisdn.e164
        shared = self._inflight.get(key)
        if shared is None and not fresh:
            shared = self._inflight.get(msisdn.e164 + "!")  # a fresh one is fresh enough
        if shared is None or shared.done():
            lookup_id = lookup_id or new_lookup_id()
            shared = loop.create_task(
                self._lookup(msisdn, lookup_id, trace or _NO_TRACE, key, max_age, fresh),
                name=lookup_id,
            )
            self._inflight[key] = shared
            self._tasks.add(shared)
            shared.add_done_callback(functools.partial(_deliver, mine, None))
        else:
            lookup_id = lookup_id or new_lookup_id()
            log.info(
                "lookup.joined",
                lookup_id=lookup_id,
                joined_lookup_id=shared.get_name(),
                **(trace or _NO_TRACE),
            )
            if max_age is None:
                shared.add_done_callback(functools.partial(_deliver, mine, lookup_id))
            else:
                shared.add_done_callback(
                    functools.partial(self._deliver_young, mine, msisdn, lookup_id, trace, max_age)
                )
        return mine

    def _deliver_young(
        self,
        mine: asyncio.Future[LookupResult],
        msisdn: Msisdn,
        lookup_id: str,
        trace: Trace | None,
        max_age: float,
        shared: asyncio.Future[LookupResult],
    ) -> None:
        """A joined caller with its own `max_age`: the shared answer came from the
        store and is older than it accepts, so it gets a fresh lookup of its own."""
        if shared.cancelled() or shared.exception() is not None or mine.done():
            _deliver(mine, lookup_id, shared)
            return
        if not _too_old(shared.result(), max_age):
            _deliver(mine, lookup_id, shared)
            return
        try:
            again = self.begin(msisdn, lookup_id, trace, fresh=True)
        except ShuttingDown as exc:
            mine.set_exception(exc)
            return
        again.add_done_callback(functools.partial(_deliver, mine, None))

    def _served(self, hit: LookupResult, trace: Trace | None) -> LookupResult:
        """A cached answer (under this caller's lookup id), logged like any lookup."""
        fields = {
            "lookup_id": hit.lookup_id,
            "provider": hit.provider,
            "outcome": hit.outcome,  # a StrEnum: written as its value, without .value's cost
            "cache": "stale" if hit.cache.stale else "hit",
            "age_s": hit.cache.age_s,
        }
        if trace:
            fields.update(trace)
        log_info(log, "lookup.done", fields)
        return hit

    async def _lookup(
        self,
        msisdn: Msisdn,
        lookup_id: str,
        trace: Trace,
        key: str,
        max_age: float | None,
        fresh: bool,
    ) -> LookupResult:
        task = asyncio.current_task()
        try:
            cache = self.cache
            if cache is not None and not fresh:
                hit = await cache.fetch(msisdn.e164, max_age, lookup_id)
                if hit is not None:
                    return self._served(hit, trace)
            result = await self._look_up(msisdn, lookup_id, trace)
            if cache is not None and result.outcome not in _ANSWERED:
                stale = await cache.stale(msisdn.e164, lookup_id)
                if stale is not None:
                    return self._served(replace(stale, error=result.error), trace)
            return result
        finally:  # here, not in a done-callback: one event-loop callback less per lookup
            self._tasks.discard(task)
            if self._inflight.get(key) is task:
                del self._inflight[key]

    async def _look_up(self, msisdn: Msisdn, lookup_id: str, trace: Trace) -> LookupResult:
        started = time.perf_counter()
        masked = mask_msisdn(msisdn.e164)
        m = self.metrics
        last: LookupResult | None = None
        unbound = 0  # providers that failed for want of a bind
        deadline = started + self.config.lookup.timeout_s
        ordered = self._ordered(msisdn)
        for i, provider in enumerate(ordered):
            breaker = self.breakers.get(provider.name)
            if breaker is not None and not breaker.allow():
                last = _failed(
                    lookup_id,
                    msisdn,
                    provider,
                    Outcome.FAILED,
                    f"{provider.name} is failing; skipped until its circuit breaker probes again",
                    None,
                )
                continue
            sent = time.perf_counter()
            try:
                if provider.max_lookup_s <= deadline - sent:  # it gives up first
                    answer = await provider.lookup(msisdn.e164, lookup_id)
                else:
                    async with asyncio.timeout(max(0.0, deadline - sent)):
                        answer = await provider.lookup(msisdn.e164, lookup_id)
            except TimeoutError:
                self._verdict(breaker, provider.name, failed=None)
                last = _failed(
                    lookup_id, msisdn, provider, Outcome.TIMEOUT, "lookup timed out", _ms(sent)
                )
                m.pending(m.upstream_attempts, provider.name, Outcome.TIMEOUT.value).inc()
                break
            except ProviderError as exc:
                not_bound = str(exc) == NOT_BOUND  # nothing was sent
                # Only "failed" judges the provider. Throttled: alive and saying so; not
                # bound: nothing was tried; a timeout can be one number's HLR (an SMPP
                # receipt that never comes), and five dead numbers in a row must not
                # take a healthy provider out.
                judged = not not_bound and exc.outcome == Outcome.FAILED.value
                self._verdict(breaker, provider.name, failed=True if judged else None)
                m.pending(
                    m.upstream_attempts,
                    provider.name,
                    NOT_BOUND_OUTCOME if not_bound else exc.outcome,
                ).inc()
                if i + 1 < len(ordered):
                    m.pending(m.failovers, provider.name).inc()
                last = _failed(
                    lookup_id,
                    msisdn,
                    provider,
                    Outcome(exc.outcome),
                    str(exc),
                    None if not_bound else _ms(sent),
                )
                unbound += not_bound
                log.warning(
                    "lookup.provider_failed",
                    lookup_id=lookup_id,
                    msisdn=masked,
                    provider=provider.name,
                    outcome=exc.outcome,
                    error=str(exc),
                    **trace,
                )
                continue
            except BaseException:  # cancelled: no verdict on the provider
                self._verdict(breaker, provider.name, failed=None)
                raise
            self._verdict(breaker, provider.name, failed=False)
            done = time.perf_counter()
            last = derive(
                msisdn,
                answer,
                self.config.lookup.return_imsi,
                lookup_id=lookup_id,
                provider=provider.name,
                transport=provider.transport,
                imsi_keyer=self.imsi_keyer,
                timings=Timings(
                    upstream_ms=round((done - sent) * 1000, 3),
                    total_ms=round((done - started) * 1000, 3),
                ),
            )
            m.pending(m.upstream_attempts, provider.name, last.outcome.value).inc()
            if provider.price and last.outcome in _ANSWERED:
                m.pending(m.cost_spent, provider.name, provider.currency).inc(provider.price)
            if self.cache is not None:
                self.cache.remember(last, provider.price, provider.currency)
            break
        if last is None:
            last = LookupResult(
                lookup_id=lookup_id,
                msisdn=msisdn.e164,
                provider="none",
                transport="none",
                outcome=Outcome.FAILED,
                error="no upstream provider configured",
            )
        elif unbound == len(ordered):
            last = replace(last, provider="none", error="no upstream provider is bound")
        elif self.cache is not None and last.outcome not in _ANSWERED:
            self.cache.remember(last)  # briefly: a dead number must not hammer providers
        elapsed = time.perf_counter() - started
        if last.timings.total_ms == 0:
            last = last.served_as(  # replace() re-runs __init__: ~18 µs a lookup
                last.lookup_id,
                last.cache,
                Timings(last.timings.upstream_ms, total_ms=round(elapsed * 1000, 3)),
            )
        outcome = last.outcome.value
        m.pending(m.lookups, last.provider, outcome).inc()
        m.pending(m.lookup_seconds, last.provider, outcome).observe(elapsed)
        # A lookup without an answer is what an operator looks for: above INFO, so a
        # daemon logging at WARNING still shows it.
        fields = {
            "lookup_id": lookup_id,
            "msisdn": masked,
            "provider": last.provider,
            "outcome": last.outcome.value,
            "reachability": last.reachability.value,
            "roaming": last.roaming.value,
            "ms": round(elapsed * 1000, 1),
            **trace,
        }
        if last.outcome in _ANSWERED:
            log_info(log, "lookup.done", fields)
        else:
            log.warning("lookup.done", **fields)
        return last

    def _verdict(self, breaker: CircuitBreaker | None, name: str, failed: bool | None) -> None:
        """Tell the provider's breaker how the lookup went (None: no verdict)."""
        if breaker is None:
            return
        if failed is None:
            breaker.release()
        elif failed:
            before = breaker.opened
            breaker.failure()
            if breaker.opened != before:
                self.metrics.child(self.metrics.circuit_opened, name).inc()
                log.warning("upstream.circuit_opened", provider=name)
        else:
            breaker.success()

    def _ordered(self, msisdn: Msisdn) -> list[Provider]:
        """The number's route, bound providers first, in the route's order: failover
        to the next one."""
        return sorted(self.router.route(msisdn.e164, msisdn.region)[1], key=_unready)

    def decide(
        self, result: LookupResult, policy: CallPolicy | None = None, count: bool = True
    ) -> Decision:
        """The policy's decision, counted (unless the caller counts what it makes of
        it: the compliance gate's final answer). Remembered by the fields it reads: a dialer
        re-checking cached numbers asks the same few questions again and again."""
        name = policy.name if policy is not None else DEFAULT
        key = (name, decision_inputs(result))
        known = self._decisions.get(key)
        if known is None:
            roaming = policy.roaming if policy is not None else self.config.policy
            decision = decide(result, roaming)
            m = self.metrics
            counters = [
                m.pending(m.decisions, decision.verdict.value, reason.split(":")[0])
                for reason in decision.reasons or ("none",)
            ]
            if len(self._decisions) >= DECISIONS_REMEMBERED:
                self._decisions.clear()
            known = self._decisions[key] = (decision, counters)
        if count:
            for counter in known[1]:
                counter.inc()
        return known[0]

    async def erase(self, msisdn: Msisdn, source: str) -> dict[str, int]:
        """GDPR Art. 17: what the daemon keeps of the number goes — cached answers
        (memory and store), its own-list entry, the numbers as callers wrote it that
        normalisation remembers — and a suppression token stays (the gate's). What was
        removed, counted. Needs the lists (`gate`): without them nothing could stop
        the number being called again."""
        assert self.gate is not None, "erasure needs the lists"
        answers = await self.cache.forget(msisdn.e164) if self.cache is not None else 0
        own = await self.gate.suppress(msisdn.e164, source)
        written = [raw for raw, known in self._numbers.items() if known.e164 == msisdn.e164]
        for raw in written:
            del self._numbers[raw]
        log.info("subject.erased", cached_answers=answers, own_list_entries=int(own))
        return {"cached_answers": answers, "own_list_entries": int(own)}

    async def check(self, msisdn: Msisdn, lookup_id: str | None = None) -> Check:
        result = await self.lookup(msisdn, lookup_id)
        return Check(result, self.decide(result))

    async def drain(self, grace_s: float) -> None:
        """Stop taking lookups; give those in flight `grace_s` to finish."""
        self.accepting = False
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace_s)
