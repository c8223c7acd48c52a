"""From an HLR answer to reachability/roaming (derive), and from that to may-we-call (decide)."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from hlrd.domain.decision import (
    DECISION_INPUTS,
    KNOWN_REASONS,
    Decision,
    Policy,
    Verdict,
    decide,
)
from hlrd.domain.derive import derive
from hlrd.domain.numbers import Msisdn
from hlrd.domain.result import (
    HlrAnswer,
    LookupResult,
    Network,
    Outcome,
    Reachability,
    RoamingStatus,
    Timings,
    Zone,
)

PL = Msisdn(e164="48601234567", region="PL", mobile=True)
BASE = LookupResult(
    lookup_id="l1", msisdn=PL.e164, provider="sim", transport="smpp", outcome=Outcome.OK
)
IMSI = "260011234567890"
AT_HOME = HlrAnswer(delivered=True, mccmnc="26001", serving_mccmnc="26001", msc="48601000001")
IN_GERMANY = HlrAnswer(delivered=True, mccmnc="26001", serving_mccmnc="26201", msc="491720000001")
IN_EGYPT = HlrAnswer(delivered=True, mccmnc="26001", serving_mccmnc="60201", msc="201000000001")
NATIONAL_ROAMING = HlrAnswer(
    delivered=True, mccmnc="26001", serving_mccmnc="26002", msc="48600000001"
)


def run(answer: HlrAnswer, return_imsi: bool = False) -> LookupResult:
    return derive(
        PL,
        answer,
        return_imsi,
        lookup_id="l1",
        provider="sim",
        transport="smpp",
        timings=Timings(upstream_ms=1.0, total_ms=2.0),
    )


# -- derive -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "serving", "roaming", "visited", "zone"),
    [
        pytest.param(AT_HOME, "PL", RoamingStatus.NOT_ROAMING, None, Zone.DOMESTIC, id="home"),
        pytest.param(IN_GERMANY, "DE", RoamingStatus.ROAMING, "DE", Zone.EEA, id="germany"),
        pytest.param(IN_EGYPT, "EG", RoamingStatus.ROAMING, "EG", Zone.NON_EEA, id="egypt"),
        pytest.param(
            NATIONAL_ROAMING, "PL", RoamingStatus.NOT_ROAMING, None, Zone.DOMESTIC, id="national"
        ),
        pytest.param(
            HlrAnswer(delivered=True, msc="491720000001"),
            "DE",
            RoamingStatus.ROAMING,
            "DE",
            Zone.EEA,
            id="msc-only",
        ),
        pytest.param(
            HlrAnswer(delivered=True, serving_mccmnc="60201"),
            "EG",
            RoamingStatus.ROAMING,
            "EG",
            Zone.NON_EEA,
            id="mccmnc-only",
        ),
        pytest.param(
            HlrAnswer(delivered=True, serving_mccmnc="60201", msc="491720000001"),
            "DE",
            RoamingStatus.ROAMING,
            "DE",
            Zone.EEA,
            id="msc-wins-over-mcc",
        ),
        pytest.param(
            HlrAnswer(delivered=True, msc="4741234567"),
            "NO",
            RoamingStatus.ROAMING,
            "NO",
            Zone.EEA,
            id="norway-eea-not-eu",
        ),
        pytest.param(
            HlrAnswer(delivered=True, msc="41791234567"),
            "CH",
            RoamingStatus.ROAMING,
            "CH",
            Zone.NON_EEA,
            id="switzerland",
        ),
        pytest.param(
            HlrAnswer(delivered=True, msc="447400123456"),
            "GB",
            RoamingStatus.ROAMING,
            "GB",
            Zone.NON_EEA,
            id="uk",
        ),
    ],
)
def test_roaming_by_country(
    answer: HlrAnswer, serving: str, roaming: RoamingStatus, visited: str | None, zone: Zone
) -> None:
    r = run(answer)
    assert (r.serving_country, r.roaming, r.visited_country, r.zone) == (
        serving,
        roaming,
        visited,
        zone,
    )
    assert (r.outcome, r.reachability) == (Outcome.OK, Reachability.CONNECTED)
    assert r.serving_msc == answer.msc


def test_network_countries_are_reported() -> None:
    r = run(IN_EGYPT)
    assert r.home_network == Network(None, "PL")
    assert r.subscription_network == Network("26001", "PL")
    assert r.serving_network == Network("60201", "EG")


@pytest.mark.parametrize(
    ("answer", "ported"),
    [
        pytest.param(
            HlrAnswer(
                delivered=True,
                mccmnc="26006",
                home_mccmnc="26001",
                serving_mccmnc="26006",
                msc="48600000001",
            ),
            True,
            id="ported-or-mvno",
        ),
        pytest.param(
            HlrAnswer(delivered=True, mccmnc="26001", home_mccmnc="26001", msc="48600000001"),
            False,
            id="same-network",
        ),
        pytest.param(
            HlrAnswer(delivered=True, mccmnc="26001", ported=True, msc="48600000001"),
            True,
            id="providers-verdict-when-home-unknown",
        ),
    ],
)
def test_ported_is_not_roaming(answer: HlrAnswer, ported: bool) -> None:
    r = run(answer)
    assert r.ported is ported
    assert (r.roaming, r.zone, r.visited_country) == (
        RoamingStatus.NOT_ROAMING,
        Zone.DOMESTIC,
        None,
    )


def test_no_serving_info_is_roaming_unknown_and_partial() -> None:
    r = run(HlrAnswer(delivered=True, mccmnc="26001"))
    assert r.reachability is Reachability.CONNECTED
    assert (r.roaming, r.zone, r.visited_country, r.serving_country) == (
        RoamingStatus.UNKNOWN,
        Zone.UNKNOWN,
        None,
        None,
    )
    assert r.outcome is Outcome.PARTIAL


@pytest.mark.parametrize(
    ("code", "reach", "name", "outcome"),
    [
        (27, Reachability.ABSENT, "absentSubscriber", Outcome.OK),
        (6, Reachability.ABSENT, "absentSubscriberSM", Outcome.OK),  # TS 29.002 spelling
        (1, Reachability.INVALID, "unknownSubscriber", Outcome.OK),
        (5, Reachability.INVALID, "unidentifiedSubscriber", Outcome.OK),
        (13, Reachability.RESTRICTED, "callBarred", Outcome.OK),
        (11, Reachability.RESTRICTED, "teleserviceNotProvisioned", Outcome.OK),
        (34, Reachability.UNKNOWN, "systemFailure", Outcome.PARTIAL),
        (99, Reachability.UNKNOWN, "mapError99", Outcome.PARTIAL),
    ],
)
def test_map_error(code: int, reach: Reachability, name: str, outcome: Outcome) -> None:
    r = run(replace(AT_HOME, delivered=False, map_error=code))
    assert (r.reachability, r.map_error, r.map_error_name, r.outcome) == (
        reach,
        code,
        name,
        outcome,
    )


@pytest.mark.parametrize(
    ("delivered", "reach", "outcome"),
    [(True, Reachability.CONNECTED, Outcome.OK), (None, Reachability.UNKNOWN, Outcome.PARTIAL)],
)
def test_no_map_error(delivered: bool | None, reach: Reachability, outcome: Outcome) -> None:
    r = run(replace(AT_HOME, delivered=delivered))
    assert (r.reachability, r.map_error, r.map_error_name, r.outcome) == (reach, 0, None, outcome)


@pytest.mark.parametrize(
    ("imsi", "return_imsi", "expected"),
    [
        (IMSI, False, "26001**********"),
        (IMSI, True, IMSI),
        (None, False, None),
    ],
)
def test_imsi_masked_unless_asked(
    imsi: str | None, return_imsi: bool, expected: str | None
) -> None:
    assert run(replace(AT_HOME, imsi=imsi), return_imsi).imsi == expected


def test_derive_keeps_ids_from_base() -> None:
    r = run(IN_GERMANY)
    assert (r.lookup_id, r.msisdn, r.provider, r.transport) == ("l1", PL.e164, "sim", "smpp")


# -- decide -------------------------------------------------------------------------------


def result(
    reach: Reachability = Reachability.CONNECTED,
    roaming: RoamingStatus = RoamingStatus.NOT_ROAMING,
    visited: str | None = None,
    zone: Zone = Zone.DOMESTIC,
    outcome: Outcome = Outcome.OK,
) -> LookupResult:
    return replace(
        BASE,
        outcome=outcome,
        reachability=reach,
        roaming=roaming,
        visited_country=visited,
        zone=zone,
    )


HOME = result()
DE_ROAMING = result(roaming=RoamingStatus.ROAMING, visited="DE", zone=Zone.EEA)
EG_ROAMING = result(roaming=RoamingStatus.ROAMING, visited="EG", zone=Zone.NON_EEA)
TR_ROAMING = result(roaming=RoamingStatus.ROAMING, visited="TR", zone=Zone.NON_EEA)
NO_SERVING = result(roaming=RoamingStatus.UNKNOWN, zone=Zone.UNKNOWN, outcome=Outcome.PARTIAL)


def no_serving(reach: Reachability) -> LookupResult:
    return result(reach=reach, roaming=RoamingStatus.UNKNOWN, zone=Zone.UNKNOWN)


ALLOW = Decision(Verdict.ALLOW, (), call=True)


@pytest.mark.parametrize(
    ("lookup", "policy", "expected"),
    [
        pytest.param(HOME, Policy(), ALLOW, id="home"),
        pytest.param(DE_ROAMING, Policy(), ALLOW, id="eea-roaming"),
        pytest.param(
            EG_ROAMING, Policy(), Decision(Verdict.BLOCK, ("roaming_non_eea",)), id="non-eea"
        ),
        pytest.param(
            DE_ROAMING,
            Policy(block_countries=frozenset({"DE"})),
            Decision(Verdict.BLOCK, ("roaming_country_blocked:DE",)),
            id="country-blocked",
        ),
        pytest.param(
            EG_ROAMING, Policy(allow_countries=frozenset({"EG"})), ALLOW, id="country-allowed"
        ),
        pytest.param(
            TR_ROAMING,
            Policy(allow_countries=frozenset({"EG"})),
            Decision(Verdict.BLOCK, ("roaming_non_eea",)),
            id="allow-is-per-country",
        ),
        pytest.param(
            DE_ROAMING,
            Policy(block_zones=frozenset({Zone.EEA, Zone.NON_EEA})),
            Decision(Verdict.BLOCK, ("roaming_eea",)),
            id="eea-zone-blocked",
        ),
        pytest.param(
            no_serving(Reachability.ABSENT),
            Policy(),
            Decision(Verdict.BLOCK, ("absent",)),
            id="absent",
        ),
        pytest.param(
            no_serving(Reachability.ABSENT), Policy(block_absent=False), ALLOW, id="abs-ok"
        ),
        pytest.param(
            no_serving(Reachability.INVALID),
            Policy(),
            Decision(Verdict.BLOCK, ("invalid_subscriber",)),
            id="invalid",
        ),
        pytest.param(no_serving(Reachability.RESTRICTED), Policy(), ALLOW, id="restricted-ok"),
        pytest.param(
            no_serving(Reachability.RESTRICTED),
            Policy(block_restricted=True),
            Decision(Verdict.BLOCK, ("restricted",)),
            id="restricted-blocked",
        ),
        pytest.param(
            NO_SERVING,
            Policy(),
            Decision(Verdict.UNKNOWN, ("roaming_unknown",), call=False),
            id="roaming-unknown",
        ),
        pytest.param(
            result(reach=Reachability.UNKNOWN, outcome=Outcome.PARTIAL),
            Policy(),
            Decision(Verdict.UNKNOWN, ("reachability_unknown",), call=False),
            id="reachability-unknown",
        ),
    ],
)
def test_decide(lookup: LookupResult, policy: Policy, expected: Decision) -> None:
    assert decide(lookup, policy) == expected


@pytest.mark.parametrize("outcome", [Outcome.FAILED, Outcome.TIMEOUT, Outcome.THROTTLED])
@pytest.mark.parametrize(("fail_closed", "call", "digit"), [(True, False, "1"), (False, True, "0")])
def test_failed_lookup_is_unknown(
    outcome: Outcome, fail_closed: bool, call: bool, digit: str
) -> None:
    lookup = replace(BASE, outcome=outcome)  # reachability and roaming stay UNKNOWN
    d = decide(lookup, Policy(fail_closed=fail_closed))
    assert d == Decision(Verdict.UNKNOWN, (f"lookup_{outcome.value}",), call=call)
    assert d.digit == digit


def test_every_reason_decide_gives_is_one_the_metrics_create_at_start() -> None:
    """hlrd_decisions_total's series exist from start for KNOWN_REASONS only: a reason
    outside it would appear with its first event, which increase() does not see."""
    policies = [
        Policy(),
        Policy(
            block_zones=frozenset(Zone),
            block_countries=frozenset({"DE"}),
            block_restricted=True,
        ),
    ]
    given: set[tuple[Verdict, str]] = set()
    for outcome, reach, roaming, zone, country, policy in itertools.product(
        Outcome, Reachability, RoamingStatus, Zone, ("DE", "EG", None), policies
    ):
        lookup = replace(
            BASE,
            outcome=outcome,
            reachability=reach,
            roaming=roaming,
            zone=zone,
            visited_country=country,
        )
        d = decide(lookup, policy)
        given.update((d.verdict, r.split(":")[0]) for r in d.reasons or ("none",))
    known = {(v, r) for v, reasons in KNOWN_REASONS.items() for r in reasons}
    assert given <= known
    assert known - given == set()  # and the table holds nothing decide() cannot give


@pytest.mark.parametrize(
    ("decision", "digit"),
    [
        (Decision(Verdict.ALLOW, call=True), "0"),
        (Decision(Verdict.BLOCK, ("absent",)), "1"),
        (Decision(Verdict.UNKNOWN, call=False), "1"),
        (Decision(Verdict.UNKNOWN, call=True), "0"),
    ],
)
def test_digit(decision: Decision, digit: str) -> None:
    assert decision.digit == digit


@pytest.mark.parametrize(
    ("answer", "verdict", "digit"),
    [
        (AT_HOME, Verdict.ALLOW, "0"),
        (NATIONAL_ROAMING, Verdict.ALLOW, "0"),
        (IN_GERMANY, Verdict.ALLOW, "0"),
        (IN_EGYPT, Verdict.BLOCK, "1"),
        (replace(AT_HOME, delivered=False, map_error=27), Verdict.BLOCK, "1"),
    ],
    ids=["home", "national-roaming", "germany", "egypt", "absent"],
)
def test_answer_to_dialer_digit(answer: HlrAnswer, verdict: Verdict, digit: str) -> None:
    d = decide(run(answer), Policy())
    assert (d.verdict, d.digit) == (verdict, digit)


def test_result_json_has_every_field_of_the_model() -> None:
    """to_dict is written out by hand for speed; it must not drift from the model."""
    from dataclasses import asdict, fields

    from hlrd.domain.result import LookupResult, Network, Outcome

    r = LookupResult(
        lookup_id="x",
        msisdn="48600000003",
        provider="p",
        transport="smpp",
        outcome=Outcome.OK,
        serving_network=Network("60201", "EG"),
    )
    # Every field but the IMSI's keyed hash, which is never shown.
    shown = asdict(r)
    del shown["imsi_key"]
    assert r.to_dict() == shown
    assert set(r.to_dict()) == {f.name for f in fields(LookupResult)} - {"imsi_key"}


class _Reads:
    """A LookupResult that notes which fields are read."""

    def __init__(self, result: LookupResult) -> None:
        self._result = result
        self.read: set[str] = set()

    def __getattr__(self, name: str) -> object:
        self.read.add(name)
        return getattr(self._result, name)


@pytest.mark.parametrize(
    "lookup",
    [
        BASE,
        replace(BASE, outcome=Outcome.FAILED),
        replace(
            BASE,
            reachability=Reachability.CONNECTED,
            roaming=RoamingStatus.ROAMING,
            visited_country="EG",
            zone=Zone.NON_EEA,
        ),
        replace(BASE, reachability=Reachability.ABSENT, roaming=RoamingStatus.NOT_ROAMING),
    ],
)
def test_decide_reads_only_the_fields_decisions_are_remembered_by(lookup: LookupResult) -> None:
    """The service remembers decisions by DECISION_INPUTS: a field decide() read
    beyond them would get another number's decision."""
    policy = Policy(block_countries=frozenset({"EG"}), allow_countries=frozenset({"DE"}))
    spy = _Reads(lookup)
    decide(spy, policy)  # type: ignore[arg-type]
    assert spy.read <= set(DECISION_INPUTS)
    assert spy.read  # it did read through the spy
