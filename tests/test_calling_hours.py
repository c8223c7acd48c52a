"""Calling hours: the verdicts a dialer sees, at explicit instants (no wall clock).

2026 calendar used below: Paris changes to summer time on Sunday 29 March and back on
Sunday 25 October; the US on Sunday 8 March and back on Sunday 1 November. French
public holidays: Easter Monday 6 April, Friday 1 May, Tuesday 14 July.
"""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from hlrd.compliance.calling_hours import (
    CallingHours,
    CountryHours,
    HoursRules,
    HoursVerdict,
    parse_hours,
    zones_for,
)

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
HONOLULU = ZoneInfo("Pacific/Honolulu")
BERLIN = ZoneInfo("Europe/Berlin")
NY_MSC = "12125550000"  # a Manhattan global title

EXAMPLE = """
[hours.FR]
mon-fri = ["10:00-13:00", "14:00-20:00"]
public_holidays = false
[hours.US]
mon-sun = ["08:00-21:00"]
public_holidays = true
[hours.default]
mon-sat = ["09:00-20:00"]
"""

US_ZONES = {
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "America/Adak",
    "Pacific/Honolulu",
}


def at(
    zone: ZoneInfo, year: int, month: int, day: int, hour: int = 0, minute: int = 0, fold: int = 0
) -> datetime:
    """A local wall time in `zone`, as the UTC instant a dialer would pass."""
    return datetime(year, month, day, hour, minute, tzinfo=zone, fold=fold).astimezone(UTC)


def rules_from(toml: str) -> HoursRules:
    return parse_hours(tomllib.loads(toml)["hours"], "hours")


def engine(toml: str = EXAMPLE) -> CallingHours:
    return CallingHours(rules_from(toml))


def france(now: datetime) -> HoursVerdict:
    return engine().check("FR", None, now)


def deferred(verdict: HoursVerdict, retry: datetime, reason: str) -> None:
    assert not verdict.allowed
    assert verdict.retry_after == retry
    assert verdict.reason == reason


# --- France ----------------------------------------------------------------------------


def test_france_inside_the_window_is_allowed_until_the_lunch_break() -> None:
    verdict = france(at(PARIS, 2026, 6, 16, 10, 30))
    assert verdict.allowed
    assert verdict.zones == ("Europe/Paris",)
    assert verdict.reason is None and verdict.retry_after is None
    assert verdict.until == at(PARIS, 2026, 6, 16, 13)


def test_france_lunch_break_retries_at_14_paris_time() -> None:
    verdict = france(at(PARIS, 2026, 6, 16, 13, 15))
    deferred(verdict, at(PARIS, 2026, 6, 16, 14), "calling_hours:FR")
    assert verdict.until == verdict.retry_after


def test_france_before_opening_retries_at_10() -> None:
    deferred(france(at(PARIS, 2026, 6, 16, 9, 59)), at(PARIS, 2026, 6, 16, 10), "calling_hours:FR")


def test_france_friday_evening_retries_monday_10() -> None:
    verdict = france(at(PARIS, 2026, 6, 12, 20, 30))
    deferred(verdict, at(PARIS, 2026, 6, 15, 10), "calling_hours:FR")
    assert verdict.retry_after == datetime(2026, 6, 15, 8, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "retry"),
    [
        pytest.param((2026, 7, 14, 11), (2026, 7, 15, 10), id="14 July, a Tuesday"),
        pytest.param((2026, 5, 1, 11), (2026, 5, 4, 10), id="1 May, a Friday"),
        pytest.param((2026, 4, 6, 11), (2026, 4, 7, 10), id="Easter Monday"),
    ],
)
def test_france_public_holiday_retries_next_working_day(
    now: tuple[int, ...], retry: tuple[int, ...]
) -> None:
    verdict = france(at(PARIS, *now))
    deferred(verdict, at(PARIS, *retry), "public_holiday:FR")


def test_france_holidays_allowed_when_the_rule_says_so() -> None:
    ch = engine('[hours.FR]\nmon-fri = ["10:00-13:00", "14:00-20:00"]\npublic_holidays = true\n')
    assert ch.check("FR", None, at(PARIS, 2026, 7, 14, 11)).allowed


def test_holiday_is_the_reason_while_it_shuts_a_window_before_the_retry() -> None:
    """Friday evening before Easter Monday: the wait runs to Tuesday because of the
    holiday; once Monday's window has passed, it is ordinary calling hours again."""
    ch = engine()
    friday = ch.check("FR", None, at(PARIS, 2026, 4, 3, 20, 30))
    deferred(friday, at(PARIS, 2026, 4, 7, 10), "public_holiday:FR")
    assert friday.until == at(PARIS, 2026, 4, 6, 20)
    monday_night = ch.check("FR", None, at(PARIS, 2026, 4, 6, 20, 30))
    deferred(monday_night, at(PARIS, 2026, 4, 7, 10), "calling_hours:FR")


def test_paris_spring_change_saturday_retries_monday_10_cest() -> None:
    verdict = france(at(PARIS, 2026, 3, 28, 12))
    deferred(verdict, datetime(2026, 3, 30, 8, tzinfo=UTC), "calling_hours:FR")
    assert verdict.retry_after == at(PARIS, 2026, 3, 30, 10)


def test_paris_autumn_change_saturday_retries_monday_10_cet() -> None:
    verdict = france(at(PARIS, 2026, 10, 24, 12))
    deferred(verdict, datetime(2026, 10, 26, 9, tzinfo=UTC), "calling_hours:FR")


# --- United States: several zones, MSC narrowing, roamers -------------------------------


def test_us_has_one_zone_per_present_day_clock() -> None:
    assert set(zones_for("US")) == US_ZONES
    assert len(zones_for("US")) == len(US_ZONES)


def test_us_0830_new_york_waits_for_honolulu_to_reach_0800() -> None:
    verdict = engine().check("US", None, at(NEW_YORK, 2026, 6, 16, 8, 30))
    deferred(verdict, at(HONOLULU, 2026, 6, 16, 8), "calling_hours:US")
    assert verdict.retry_after == datetime(2026, 6, 16, 18, tzinfo=UTC)
    assert set(verdict.zones) == US_ZONES


def test_us_common_window_closes_at_21_new_york() -> None:
    verdict = engine().check("US", None, at(HONOLULU, 2026, 6, 16, 8))
    assert verdict.allowed
    assert verdict.until == at(NEW_YORK, 2026, 6, 16, 21)


def test_new_york_msc_narrows_to_new_york_and_allows_0830() -> None:
    assert zones_for("US", NY_MSC) == ("America/New_York",)
    assert zones_for("US", "+" + NY_MSC) == ("America/New_York",)
    verdict = engine().check("US", NY_MSC, at(NEW_YORK, 2026, 6, 16, 8, 30))
    assert verdict.allowed
    assert verdict.zones == ("America/New_York",)


def test_msc_in_a_zone_the_country_lists_under_another_name() -> None:
    """Idaho's +1208 is America/Boise or Los_Angeles: Boise keeps Denver's clock."""
    assert set(zones_for("US", "12082440000")) == {"America/Denver", "America/Los_Angeles"}


@pytest.mark.parametrize("msc", ["33609000000", "1212", "not-a-number", ""])
def test_msc_abroad_or_unplaceable_keeps_every_zone(msc: str) -> None:
    assert set(zones_for("US", msc)) == US_ZONES


def test_roamer_is_judged_by_the_visited_country() -> None:
    """A Polish subscriber in New York at 19:00 local (01:00 in Warsaw)."""
    ch = engine(EXAMPLE + '[hours.PL]\nmon-fri = ["08:00-20:00"]\n')
    now = at(NEW_YORK, 2026, 6, 16, 19)
    roaming = ch.check("US", NY_MSC, now)
    assert roaming.allowed
    assert (roaming.country, roaming.zones) == ("US", ("America/New_York",))
    at_home = ch.check("PL", None, now)
    deferred(at_home, at(ZoneInfo("Europe/Warsaw"), 2026, 6, 17, 8), "calling_hours:PL")


# --- DST edges in the US -----------------------------------------------------------------


def test_us_window_opens_an_hour_later_in_utc_after_fall_back() -> None:
    ch = engine()
    saturday = ch.check("US", NY_MSC, at(NEW_YORK, 2026, 10, 31, 7, 30))
    sunday = ch.check("US", NY_MSC, at(NEW_YORK, 2026, 11, 1, 7, 30))
    assert saturday.retry_after == datetime(2026, 10, 31, 12, tzinfo=UTC)
    assert sunday.retry_after == datetime(2026, 11, 1, 13, tzinfo=UTC)


def test_fall_back_day_window_lasts_its_real_13_hours_plus_1() -> None:
    ch = engine('[hours.US]\nmon-sun = ["00:00-13:00"]\npublic_holidays = true\n')
    midnight = at(NEW_YORK, 2026, 11, 1, 0)
    verdict = ch.evaluate("US", ("America/New_York",), midnight)
    assert verdict.allowed
    assert verdict.until == at(NEW_YORK, 2026, 11, 1, 13)
    assert verdict.until is not None and verdict.until - midnight == timedelta(hours=14)


def test_period_ending_in_the_repeated_hour_ends_at_its_second_occurrence() -> None:
    ch = engine('[hours.US]\nmon-sun = ["00:00-01:30"]\npublic_holidays = true\n')
    first_0145 = at(NEW_YORK, 2026, 11, 1, 1, 45)  # EDT, before the clocks go back
    verdict = ch.evaluate("US", ("America/New_York",), first_0145)
    assert verdict.allowed
    assert verdict.until == at(NEW_YORK, 2026, 11, 1, 1, 30, fold=1)
    assert verdict.until == datetime(2026, 11, 1, 6, 30, tzinfo=UTC)


def test_period_to_24_00_ends_at_the_first_midnight_before_a_repeated_hour() -> None:
    """Havana goes back from 01:00 to 00:00 on Sunday 1 November: Saturday's 20:00-24:00
    ends at the first midnight; the repeated 00:xx belong to Sunday."""
    havana = ZoneInfo("America/Havana")
    ch = engine('[hours.CU]\nsat = ["20:00-24:00"]\npublic_holidays = true\n')
    zones = ("America/Havana",)
    saturday = ch.evaluate("CU", zones, at(havana, 2026, 10, 31, 23))
    assert saturday.allowed
    assert saturday.until == at(havana, 2026, 11, 1, 0) == datetime(2026, 11, 1, 4, tzinfo=UTC)
    sunday = ch.evaluate("CU", zones, at(havana, 2026, 11, 1, 0, 30))
    deferred(sunday, at(havana, 2026, 11, 7, 20), "calling_hours:CU")


def test_window_starting_in_the_spring_gap_opens_when_the_clock_jumps() -> None:
    ch = engine('[hours.US]\nmon-sun = ["02:30-05:00"]\npublic_holidays = true\n')
    zones = ("America/New_York",)
    saturday = ch.evaluate("US", zones, at(NEW_YORK, 2026, 3, 7, 1))
    assert saturday.retry_after == datetime(2026, 3, 7, 7, 30, tzinfo=UTC)  # 02:30 EST
    sunday = ch.evaluate("US", zones, at(NEW_YORK, 2026, 3, 8, 1))
    assert sunday.retry_after == datetime(2026, 3, 8, 7, tzinfo=UTC)  # 03:00 EDT, no 02:30
    opened = ch.evaluate("US", zones, datetime(2026, 3, 8, 7, tzinfo=UTC))
    assert opened.allowed
    assert opened.until == at(NEW_YORK, 2026, 3, 8, 5)


# --- memo ------------------------------------------------------------------------------


def test_memo_reuses_an_allowed_verdict_only_within_computed_until() -> None:
    ch = engine()
    opened = ch.check("FR", None, at(PARIS, 2026, 6, 16, 10))
    assert opened.allowed
    assert ch.check("FR", None, at(PARIS, 2026, 6, 16, 12, 59)) is opened
    assert ch.evaluate("FR", ("Europe/Paris",), at(PARIS, 2026, 6, 16, 11)) is opened
    before = ch.check("FR", None, at(PARIS, 2026, 6, 16, 9, 59))
    assert not before.allowed
    closed = ch.check("FR", None, at(PARIS, 2026, 6, 16, 13))
    deferred(closed, at(PARIS, 2026, 6, 16, 14), "calling_hours:FR")


def test_memo_reuses_a_deferral_until_the_retry() -> None:
    ch = engine()
    waiting = ch.check("US", None, at(NEW_YORK, 2026, 6, 16, 8, 30))
    assert ch.check("US", None, at(NEW_YORK, 2026, 6, 16, 13, 59)) is waiting
    assert waiting.retry_after is not None
    opened = ch.check("US", None, waiting.retry_after)
    assert opened.allowed and opened is not waiting


def test_memo_takes_any_aware_now() -> None:
    ch = engine()
    first = ch.check("FR", None, datetime(2026, 6, 16, 10, 30, tzinfo=PARIS))
    assert ch.check("FR", None, datetime(2026, 6, 16, 8, 40, tzinfo=UTC)) is first


def test_naive_now_and_unknown_zone_are_refused() -> None:
    ch = engine()
    ch.check("FR", None, at(PARIS, 2026, 6, 16, 10, 30))
    with pytest.raises(ValueError, match="timezone-aware"):
        ch.check("FR", None, datetime(2026, 6, 16, 10, 30))
    with pytest.raises(ValueError, match="timezone-aware"):
        ch.evaluate("FR", ("Europe/Paris",), datetime(2026, 6, 16, 10, 30))
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        ch.evaluate("FR", ("Mars/Olympus",), at(PARIS, 2026, 6, 16, 10, 30))


# --- default, no rule, unknown places, horizon --------------------------------------------


def test_default_rule_applies_to_unlisted_countries() -> None:
    ch = engine()
    sunday = ch.check("DE", None, at(BERLIN, 2026, 6, 14, 12))
    deferred(sunday, at(BERLIN, 2026, 6, 15, 9), "calling_hours:DE")
    unity_day = ch.check("DE", None, at(BERLIN, 2026, 10, 3, 12))  # a Saturday
    deferred(unity_day, at(BERLIN, 2026, 10, 5, 9), "public_holiday:DE")


def test_no_rule_means_not_restricted() -> None:
    ch = engine('[hours.FR]\nmon-fri = ["10:00-20:00"]\n')
    verdict = ch.check("DE", None, at(BERLIN, 2026, 6, 14, 3))
    assert verdict == HoursVerdict(True, "DE", ("Europe/Berlin",))


def test_country_without_zones_is_deferred_only_when_a_rule_applies() -> None:
    assert zones_for("ZZ") == ()
    now = datetime(2026, 6, 16, 12, tzinfo=UTC)
    restricted = engine().check("ZZ", None, now)
    assert not restricted.allowed
    assert restricted.reason == "calling_hours_none:ZZ"
    assert restricted.retry_after is None
    assert engine('[hours.FR]\nmon-fri = ["10:00-20:00"]\n').check("ZZ", None, now).allowed


def test_numbered_region_missing_from_zone_tab_still_has_a_zone() -> None:
    assert zones_for("XK") == ("Europe/Belgrade",)


def test_russia_has_its_eleven_clocks_once_each() -> None:
    zones = zones_for("RU")
    noon = datetime(2026, 6, 16, 12, tzinfo=UTC)
    offsets = {noon.astimezone(ZoneInfo(z)).utcoffset() for z in zones}
    assert len(zones) == len(offsets) == 11
    assert "Europe/Moscow" in zones


def test_rule_with_no_periods_has_no_window_within_the_horizon() -> None:
    ch = engine("[hours.FR]\npublic_holidays = true\n")
    verdict = ch.check("FR", None, at(PARIS, 2026, 6, 16, 11))
    assert not verdict.allowed
    assert verdict.reason == "calling_hours_none:FR"
    assert verdict.retry_after is None


def test_window_just_past_the_horizon_is_none_until_it_comes_within() -> None:
    """08:00-10:30 in both New York and Phoenix overlap only while New York is on
    standard time: the first common half hour is 1 November 08:00-08:30 in Phoenix."""
    ch = engine('[hours.US]\nmon-sun = ["08:00-10:30"]\npublic_holidays = true\n')
    zones = ("America/New_York", "America/Phoenix")
    first = datetime(2026, 11, 1, 15, tzinfo=UTC)
    early = ch.evaluate("US", zones, first - timedelta(days=14, hours=23))
    assert not early.allowed
    assert (early.reason, early.retry_after) == ("calling_hours_none:US", None)
    assert early.until == first - timedelta(days=14)
    assert ch.evaluate("US", zones, first - timedelta(days=14, seconds=1)) is early
    within = ch.evaluate("US", zones, first - timedelta(days=14))
    deferred(within, first, "calling_hours:US")
    assert ch.evaluate("US", zones, first).until == first + timedelta(minutes=30)


# --- parse_hours -----------------------------------------------------------------------


def test_parse_example() -> None:
    rules = rules_from(EXAMPLE)
    weekday = ((600, 780), (840, 1200))
    assert rules.countries["FR"] == CountryHours(week=(weekday,) * 5 + ((), ()))
    assert rules.countries["US"] == CountryHours(week=(((480, 1260),),) * 7, no_holidays=False)
    assert rules.default == CountryHours(week=(((540, 1200),),) * 6 + ((),))


def test_parse_wrapping_range_midnight_end_and_unsorted_periods() -> None:
    rules = rules_from('[hours.GB]\nfri-mon = ["18:00-24:00", "08:00-12:00"]\n')
    week = rules.countries["GB"].week
    assert week[4] == week[5] == week[6] == week[0] == ((480, 720), (1080, 1440))
    assert week[1] == week[2] == week[3] == ()


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            {"FR": {"mon-fri": ["25:00-26:00"]}},
            r"hours\.FR\.mon-fri: '25:00-26:00' is not HH:MM-HH:MM",
        ),
        ({"FR": {"mon": ["10:00-24:01"]}}, r"hours\.FR\.mon: '10:00-24:01' is not HH:MM-HH:MM"),
        ({"FR": {"mon": ["9:00-12:00"]}}, r"hours\.FR\.mon: '9:00-12:00' is not HH:MM-HH:MM"),
        ({"FR": {"mon": ["14:00-10:00"]}}, r"hours\.FR\.mon: '14:00-10:00' does not end after"),
        ({"FR": {"mon": "10:00-12:00"}}, r"hours\.FR\.mon: must be a list"),
        (
            {"FR": {"mon": ["10:00-13:00", "12:00-14:00"]}},
            r"hours\.FR\.mon: periods 10:00-13:00 and 12:00-14:00 overlap",
        ),
        (
            {"FR": {"mon-fri": ["10:00-13:00"], "fri": ["14:00-15:00"]}},
            r"hours\.FR\.fri: fri is already given by mon-fri",
        ),
        ({"FR": {"monday": ["10:00-13:00"]}}, r"hours\.FR\.monday: not a day"),
        ({"FR": {"mon-mon": ["10:00-13:00"]}}, r"hours\.FR\.mon-mon: not a day"),
        ({"FR": {"public_holidays": "no"}}, r"hours\.FR\.public_holidays: must be true or false"),
        ({"FR": ["10:00-13:00"]}, r"hours\.FR: must be a table"),
        ({"ZZ": {"mon": ["10:00-13:00"]}}, r"hours\.ZZ: 'ZZ' is not a known ISO 3166"),
        ({"fr": {"mon": ["10:00-13:00"]}}, r"hours\.fr: 'fr' is not a known ISO 3166"),
        ({"UK": {"mon": ["10:00-13:00"]}}, r"hours\.UK: .*use GB"),
        ({"default": {"sun": ["x"]}}, r"hours\.default\.sun: 'x' is not HH:MM-HH:MM"),
    ],
)
def test_parse_errors_name_the_key(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match="^" + message):
        parse_hours(table, "hours")


def test_parse_errors_carry_the_policy_prefix() -> None:
    with pytest.raises(ValueError, match=r"^policies\.x\.hours\.US\.sat: "):
        parse_hours({"US": {"sat": ["08:00"]}}, "policies.x.hours")


def test_parsed_rules_are_read_only() -> None:
    rules = rules_from(EXAMPLE)
    with pytest.raises(TypeError):
        rules.countries["DE"] = CountryHours(week=((),) * 7)  # type: ignore[index]
