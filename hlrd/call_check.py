"""One explained decision per number: the compliance gate, in the order the law needs.

Suppression (the person was erased) -> the lists the policy consults -> consent for
the policy's channel -> calling hours in the home country -> the lookup (only a
number still callable is paid for) -> calling hours where the subscriber is (a
roamer: the visited country's) -> consent still belonging to the subscriber (the
IMSI) -> roaming and reachability (domain.decide). Every answer names the policy
and its version, says why, and is appended to the audit trail before it is given;
an audit trail that cannot take it means "do not call" (fail closed).

The stages before the lookup and after it are two plain calls, not one coroutine,
so the HTTP front end keeps its cached-answer fast path (a future already done).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from .compliance.audit import AuditEntry, AuditTrail
from .compliance.calling_hours import CallingHours, HoursVerdict, zones_for
from .compliance.consent import ConsentBook
from .compliance.gate import ListGate
from .compliance.policy import DEFAULT, CallPolicy
from .domain.decision import Verdict
from .domain.numbers import Msisdn
from .domain.result import LookupResult, RoamingStatus
from .domain.times import iso_utc
from .metrics import Metrics
from .service import LookupService
from .store.keys import NumberKeyer

log = structlog.get_logger("hlrd.check")

COMBINATIONS_REMEMBERED = 4_096  # (verdict, reasons) and (country, zones) seen
KEYS_REMEMBERED = 50_000  # numbers' keyed hashes (consent checks), ~150 bytes each
ZONES_REMEMBERED = 4_096  # (country, number or MSC prefix) -> zones
_PREFIX = 9  # phonenumbers' longest time-zone prefix: zones depend on no more digits

SKIPPED_ERASED = "the person asked to be forgotten: never looked up or called again"
SKIPPED_LISTED = "blocked by a do-not-call list before any lookup"
SKIPPED_CONSENT = "no consent for this call: blocked before any lookup"
SKIPPED_HOURS = "outside the calling hours: check again at retry_after (no lookup paid now)"
SKIPPED_AUDIT = "the audit trail is full: no decision can be recorded, so none is given"


@dataclass(frozen=True, slots=True)
class Answer:
    decision_id: str
    verdict: Verdict
    call: bool
    reasons: tuple[str, ...]
    policy: CallPolicy
    warnings: tuple[str, ...] = ()
    lookup: LookupResult | None = None
    skipped: str | None = None  # why no lookup ran
    retry_after: datetime | None = None
    consent_id: str | None = None

    @property
    def digit(self) -> str:
        """VICIdial / Asterisk CURL(): "1" do not call, "0" call."""
        return "0" if self.call else "1"

    def to_json(self) -> dict[str, Any]:
        return {
            "decision_id": self.decision_id,
            "decision": self.verdict.value,
            "call": self.call,
            "reasons": list(self.reasons),
            "warnings": list(self.warnings),
            "policy": self.policy.to_json(),
            "retry_after": iso_utc(self.retry_after.timestamp() if self.retry_after else None),
            "consent_id": self.consent_id,
            "lookup": self.lookup.to_dict() if self.lookup is not None else None,
            "lookup_skipped": self.skipped,
        }


@dataclass(frozen=True, slots=True)
class Cleared:
    """What the stages before the lookup found, for the stages after it."""

    warnings: tuple[str, ...] = ()
    consent_id: str | None = None


_CLEAR = Cleared()


class CallCheck:
    def __init__(
        self,
        service: LookupService,
        metrics: Metrics,
        gate: ListGate | None = None,
        consent: ConsentBook | None = None,
        audit: AuditTrail | None = None,
        keyer: NumberKeyer | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.service = service
        self.metrics = metrics
        self.gate = gate
        self.consent = consent
        self.audit = audit
        self.keyer = keyer
        self.clock = clock
        self.policies: Mapping[str, CallPolicy] = service.config.policies
        self.default_policy = self.policies[DEFAULT]
        self._hours = {
            name: CallingHours(p.hours) for name, p in self.policies.items() if p.hours is not None
        }
        self._zones: dict[tuple[str, str], tuple[str, ...]] = {}
        self._keys: dict[str, bytes] = {}  # e164 -> keyed hash, for consent
        # What else keeps the number and must forget it on erasure (jobs' files):
        # receipt key -> eraser, given by the daemon.
        self.erasers: dict[str, Callable[[str], Awaitable[int]]] = {}
        self._counters: dict[tuple[Verdict, tuple[str, ...]], list[Any]] = {}
        # (hours, country, zones) -> (since, until, verdict)
        self._verdicts: dict[
            tuple[int, str, tuple[str, ...]], tuple[float, float, HoursVerdict]
        ] = {}
        for policy in self.policies.values():  # the series exist before the first deferral
            for country in policy.hours.countries if policy.hours is not None else ():
                metrics.touch(metrics.deferrals, country)

    def hours(self) -> list[CallingHours]:
        return list(self._hours.values())

    # -- before the lookup --------------------------------------------------------

    def before(
        self, msisdn: Msisdn, policy: CallPolicy, decision_id: str, source: str
    ) -> Answer | Cleared:
        """The answer when the gate stops the number before any lookup, else what
        the later stages need."""
        warnings: tuple[str, ...] = ()
        gate = self.gate
        if gate is not None:
            screened = gate.screen(msisdn.e164, policy)
            if screened.blocked:
                skipped = SKIPPED_ERASED if screened.blocked == ("erased",) else SKIPPED_LISTED
                return self._final(
                    msisdn, policy, decision_id, source, Verdict.BLOCK, screened.blocked, skipped
                )
            warnings = screened.warnings
        consent_id: str | None = None
        if policy.consent is not None:
            found = self._consent(msisdn, policy)
            if not found.ok:
                reason = found.reason or f"consent_missing:{policy.consent}"
                return self._final(
                    msisdn,
                    policy,
                    decision_id,
                    source,
                    Verdict.BLOCK,
                    (reason,),
                    SKIPPED_CONSENT,
                    warnings=warnings,
                    consent_id=found.consent_id,
                )
            consent_id = found.consent_id
        hours = self._hours.get(policy.name)
        if hours is not None and _restricted(policy, msisdn.region):
            zones = self._zones_of(msisdn.region, msisdn.e164)
            verdict = self._in_hours(hours, msisdn.region, zones)
            if not verdict.allowed:
                return self._deferred(
                    msisdn, policy, decision_id, source, verdict, warnings, None, consent_id
                )
        if not warnings and consent_id is None:
            return _CLEAR
        return Cleared(warnings, consent_id)

    def _consent(self, msisdn: Msisdn, policy: CallPolicy) -> Any:
        assert policy.consent is not None
        if self.consent is None or self.keyer is None:
            return _NoConsent(policy.consent)
        return self.consent.check(
            self._key_of(msisdn.e164), policy.consent, self.clock(), policy.consent_ownership
        )

    def _key_of(self, e164: str) -> bytes:
        """The number's keyed hash, remembered: an HMAC is ~2.5 µs and a dialer asks
        about the same numbers all day. Bounded; erasure forgets the number."""
        keys = self._keys
        key = keys.get(e164)
        if key is None:
            assert self.keyer is not None
            key = self.keyer.key(e164)
            if len(keys) >= KEYS_REMEMBERED:
                del keys[next(iter(keys))]  # the oldest first
            keys[e164] = key
        return key

    # -- after the lookup ---------------------------------------------------------

    def after(
        self,
        msisdn: Msisdn,
        policy: CallPolicy,
        cleared: Cleared,
        result: LookupResult,
        decision_id: str,
        source: str,
    ) -> Answer:
        warnings = cleared.warnings
        hours = self._hours.get(policy.name)
        where = result.visited_country
        if (
            hours is not None
            and result.roaming is RoamingStatus.ROAMING
            and where
            and _restricted(policy, where)
        ):
            zones = self._zones_of(where, result.serving_msc or "")
            verdict = self._in_hours(hours, where, zones)
            if not verdict.allowed:
                return self._deferred(
                    msisdn,
                    policy,
                    decision_id,
                    source,
                    verdict,
                    warnings,
                    result,
                    cleared.consent_id,
                )
        if cleared.consent_id is not None and policy.subscriber_check and self.consent is not None:
            changed = self.consent.subscriber_changed_key(cleared.consent_id, result.imsi_key)
            if changed:
                return self._final(
                    msisdn,
                    policy,
                    decision_id,
                    source,
                    Verdict.BLOCK,
                    ("subscriber_changed",),
                    None,
                    warnings=warnings,
                    lookup=result,
                    consent_id=cleared.consent_id,
                )
            if changed is None and self.consent.imsi_recorded(cleared.consent_id):
                warnings = (*warnings, "subscriber_unverified")
        d = self.service.decide(result, policy, count=False)
        return self._final(
            msisdn,
            policy,
            decision_id,
            source,
            d.verdict,
            d.reasons,
            None,
            warnings=warnings,
            lookup=result,
            consent_id=cleared.consent_id,
            call=d.call,
        )

    async def check(
        self,
        msisdn: Msisdn,
        policy: CallPolicy,
        decision_id: str,
        source: str,
        max_age: float | None = None,
    ) -> Answer:
        """The whole gate for one number (SMPP, jobs, the CLI)."""
        cleared = self.before(msisdn, policy, decision_id, source)
        if isinstance(cleared, Answer):
            return cleared
        result = await self.service.begin(
            msisdn, decision_id, max_age=max_age, policy=policy.roaming
        )
        return self.after(msisdn, policy, cleared, result, decision_id, source)

    # -- answers ------------------------------------------------------------------

    def _deferred(
        self,
        msisdn: Msisdn,
        policy: CallPolicy,
        decision_id: str,
        source: str,
        verdict: HoursVerdict,
        warnings: tuple[str, ...],
        lookup: LookupResult | None,
        consent_id: str | None,
    ) -> Answer:
        self.metrics.pending(self.metrics.deferrals, verdict.country).inc()
        reason = verdict.reason or f"calling_hours:{verdict.country}"
        return self._final(
            msisdn,
            policy,
            decision_id,
            source,
            Verdict.DEFER,
            (reason,),
            SKIPPED_HOURS if lookup is None else None,
            warnings=warnings,
            lookup=lookup,
            retry_after=verdict.retry_after,
            consent_id=consent_id,
        )

    def _final(
        self,
        msisdn: Msisdn,
        policy: CallPolicy,
        decision_id: str,
        source: str,
        verdict: Verdict,
        reasons: tuple[str, ...],
        skipped: str | None,
        *,
        warnings: tuple[str, ...] = (),
        lookup: LookupResult | None = None,
        retry_after: datetime | None = None,
        consent_id: str | None = None,
        call: bool = False,
    ) -> Answer:
        """The answer, counted and recorded; "do not call" if it cannot be recorded."""
        answer = Answer(
            decision_id,
            verdict,
            call,
            reasons,
            policy,
            warnings,
            lookup,
            skipped,
            retry_after,
            consent_id,
        )
        if not self._recorded(msisdn, answer, source):
            self.metrics.audit_refused.inc()
            answer = Answer(
                decision_id,
                Verdict.UNKNOWN,
                False,
                ("audit_backlog",),
                policy,
                warnings,
                lookup,
                SKIPPED_AUDIT if lookup is None else None,
            )
        for counter in self._counters_of(answer.verdict, answer.reasons):
            counter.inc()
        return answer

    def _counters_of(self, verdict: Verdict, reasons: tuple[str, ...]) -> list[Any]:
        """hlrd_decisions_total's counters for this verdict and these reasons (the
        part before ":"), remembered: a check asks the same few combinations."""
        key = (verdict, reasons)
        found = self._counters.get(key)
        if found is None:
            m = self.metrics
            found = [
                m.pending(m.decisions, verdict.value, reason.split(":")[0])
                for reason in reasons or ("none",)
            ]
            if len(self._counters) >= COMBINATIONS_REMEMBERED:
                self._counters.clear()
            self._counters[key] = found
        return found

    def _in_hours(self, hours: CallingHours, country: str, zones: tuple[str, ...]) -> HoursVerdict:
        """The calling hours' verdict, remembered while it holds (`until`): a check
        then costs a dictionary lookup, not a datetime and a time-zone conversion."""
        now = self.clock()
        key = (id(hours), country, zones)
        found = self._verdicts.get(key)
        if found is not None and found[0] <= now < found[1]:
            return found[2]
        verdict = hours.evaluate(country, zones, datetime.fromtimestamp(now, UTC))
        if verdict.until is not None:
            if len(self._verdicts) >= COMBINATIONS_REMEMBERED:
                self._verdicts.clear()
            self._verdicts[key] = (now, verdict.until.timestamp(), verdict)
        return verdict

    def _recorded(self, msisdn: Msisdn, answer: Answer, source: str) -> bool:
        audit = self.audit
        if audit is None:
            return True
        lists = self.gate.consulted(answer.policy) if self.gate is not None else ()
        # An erased person's decisions are kept unlinked: only the token may know them.
        linked = answer.reasons != ("erased",)
        return audit.append(
            msisdn.e164 if linked else None, _Recorded(answer, self.clock(), lists, source)
        )

    # -- helpers ------------------------------------------------------------------

    def _zones_of(self, country: str, number: str) -> tuple[str, ...]:
        """The zones the subscriber may be in: the country's, narrowed by the number
        (or the serving MSC's address) where its prefix places it. Remembered by
        prefix: phonenumbers' parse costs ~30 µs, a check must cost a few."""
        key = (country, number[:_PREFIX])
        zones = self._zones.get(key)
        if zones is None:
            zones = zones_for(country, number or None)
            if len(self._zones) >= ZONES_REMEMBERED:
                self._zones.clear()
            self._zones[key] = zones
        return zones

    # -- erasure ------------------------------------------------------------------

    async def erase(self, msisdn: Msisdn, source: str) -> dict[str, Any]:
        """GDPR Art. 17 across everything hlrd keeps: cached answers, the own list
        (service.erase, which leaves the suppression token), consent records (unless
        a legal hold keeps them as evidence, unused) and the audit trail's link
        between the number and its decisions (the decisions stay, the chain holds)."""
        receipt: dict[str, Any] = dict(await self.service.erase(msisdn, source))
        self._keys.pop(msisdn.e164, None)
        hold_days = self.service.config.compliance.legal_hold_days
        if self.consent is not None:
            hold_until = self.clock() + hold_days * 86400 if hold_days else None
            erased = await asyncio.to_thread(self.consent.erase, msisdn.e164, hold_until)
            receipt["consent_records"] = erased.deleted
            receipt["consent_records_held"] = erased.held
            receipt["held_until"] = iso_utc(hold_until) if erased.held and hold_until else None
        if self.audit is not None:
            await asyncio.to_thread(self.audit.flush)  # its pending decisions are linked too
            receipt["audit_records_unlinked"] = await asyncio.to_thread(
                self.audit.unlink, msisdn.e164
            )
        for name, eraser in self.erasers.items():
            receipt[name] = await eraser(msisdn.e164)
        self.metrics.erasures.labels(source if source in ("api", "cli") else "api").inc()
        return receipt


def _restricted(policy: CallPolicy, country: str | None) -> bool:
    """Whether the policy's calling hours say anything of `country` (the zones of a
    country they leave alone are not worth working out)."""
    rules = policy.hours
    return (
        bool(country)
        and rules is not None
        and (rules.default is not None or country in rules.countries)
    )


class _Recorded:
    """An answer as the audit trail's writer takes it: the record's fields are made
    in the writer's thread, not on the event loop (audit.EntrySource)."""

    __slots__ = ("answer", "at", "lists", "source")

    def __init__(
        self, answer: Answer, at: float, lists: tuple[tuple[str, str], ...], source: str
    ) -> None:
        self.answer, self.at, self.lists, self.source = answer, at, lists, source

    def audit_entry(self) -> AuditEntry:
        answer, lookup = self.answer, self.answer.lookup
        return AuditEntry(
            decision_id=answer.decision_id,
            at=self.at,
            policy=answer.policy.name,
            policy_version=answer.policy.version,
            verdict=answer.verdict.value,
            reasons=answer.reasons,
            warnings=answer.warnings,
            lists=self.lists,
            provider=lookup.provider if lookup is not None else None,
            lookup_age_s=(lookup.cache.age_s if lookup.cache.hit else 0.0)
            if lookup is not None
            else None,
            outcome=lookup.outcome.value if lookup is not None else None,
            consent_id=answer.consent_id,
            source=self.source,
        )


@dataclass(frozen=True, slots=True)
class _NoConsent:
    """No consent book: a policy that needs consent finds none."""

    channel: str
    ok: bool = False
    consent_id: None = None

    @property
    def reason(self) -> str:
        return f"consent_missing:{self.channel}"
