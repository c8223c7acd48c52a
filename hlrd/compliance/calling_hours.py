"""Calling hours: may a call center ring this subscriber now, in the subscriber's own time?

The legal windows are local to the *called party*, so the question is asked in the
time zone(s) the subscriber may be in: the visited country's for a roamer (the caller
passes that country), the home country's otherwise. Where a country spans several zones
the window must hold in every one of them, unless the serving MSC's global title places
the subscriber in fewer (a US MSC +1212... is New York).

Sources for the windows operators configure most often (`[hours]` in the config; this
module ships no rule of its own, it only evaluates what it is given):

- France: décret n° 2022-1313 du 13 octobre 2022 (Code de la consommation, art.
  D. 223-9, in force since 1 March 2023): telemarketing calls only Monday to Friday,
  10:00-13:00 and 14:00-20:00 in the consumer's time zone; none on Saturdays, Sundays or
  the public holidays of Code du travail art. L. 3133-1 (the `holidays` package's FR
  list), unless the consumer gave prior express consent.
- United States: TCPA, 47 CFR § 64.1200(c)(1): no telephone solicitation before 8 a.m.
  or after 9 p.m. local time at the called party's location.

A verdict outside the window is "defer" with `retry_after`, the first instant at which
every zone is inside an allowed period (searched `HORIZON_DAYS` ahead), and `until`, the
instant up to which the verdict stays true; `CallingHours` memoises verdicts on it so a
dialer checking the same few countries all day pays a dictionary lookup per call.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from itertools import pairwise
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
import phonenumbers
from phonenumbers import timezone as pn_timezone

Minutes = tuple[int, int]  # [start, end) minutes since local midnight, 0 <= start < end <= 1440

HORIZON_DAYS: Final = 14
DAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_MINUTES: Final = 1440

_ONE_DAY = timedelta(days=1)
_SYSTEM_ZONEINFO = Path("/usr/share/zoneinfo")
# Zones of a country that keep the same clock over this many days from today are one zone.
_AGREE_DAYS = 2 * 366
_SHORT_SCAN_DAYS = 3
_UNKNOWN_ZONE = "Etc/Unknown"  # what phonenumbers answers when it cannot place a number
_NOT_ISO = {"UK": "GB"}


@dataclass(frozen=True, slots=True)
class CountryHours:
    week: tuple[tuple[Minutes, ...], ...]  # 7 entries, Monday first; empty: no calls that day
    no_holidays: bool = True  # no calls on the country's public holidays


@dataclass(frozen=True, slots=True)
class HoursRules:
    countries: Mapping[str, CountryHours]  # ISO 3166 alpha-2 -> its window
    default: CountryHours | None = None  # countries not listed; None = not restricted


@dataclass(frozen=True, slots=True)
class HoursVerdict:
    allowed: bool
    country: str
    zones: tuple[str, ...]  # IANA zones evaluated
    # UTC: None when allowed, or when no allowed instant lies within HORIZON_DAYS.
    retry_after: datetime | None = None
    # None when allowed; "calling_hours:FR", "public_holiday:FR", "calling_hours_none:FR".
    reason: str | None = None
    until: datetime | None = None  # UTC: the verdict holds at least until then


# --- parsing ---------------------------------------------------------------------------

_PERIOD = re.compile(r"([0-9]{2}):([0-9]{2})-([0-9]{2}):([0-9]{2})")
_COUNTRY = re.compile(r"[A-Z]{2}")


def parse_hours(raw: Mapping[str, Any], where: str) -> HoursRules:
    """The `[hours]` table (or a policy's own `hours`), checked in full at start-up so a
    typo is a config error naming its key rather than a window silently never applied.
    The result is read-only: `CallingHours` memoises verdicts on it."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: must be a table of countries")
    countries: dict[str, CountryHours] = {}
    default: CountryHours | None = None
    for key, table in raw.items():
        at = f"{where}.{key}"
        if key == "default":
            default = _country_hours(table, at)
            continue
        _check_country(key, at)
        countries[key] = _country_hours(table, at)
    return HoursRules(MappingProxyType(countries), default)


def _check_country(code: object, at: str) -> None:
    """A rule under a code no lookup ever produces would never apply: refuse it."""
    if isinstance(code, str) and code in _NOT_ISO:
        raise ValueError(f"{at}: {code!r} is not ISO 3166 alpha-2 (use {_NOT_ISO[code]})")
    if not isinstance(code, str) or not _COUNTRY.fullmatch(code) or code not in _known_codes():
        raise ValueError(
            f"{at}: {code!r} is not a known ISO 3166 alpha-2 country code (upper-case, "
            "e.g. FR) nor 'default'"
        )


@functools.cache
def _known_codes() -> frozenset[str]:
    return frozenset(_zone_table()) | frozenset(
        holidays.list_supported_countries(include_aliases=False)
    )


def _country_hours(table: object, at: str) -> CountryHours:
    if not isinstance(table, Mapping):
        raise ValueError(f"{at}: must be a table of days (mon-fri = [...]) and public_holidays")
    week: list[tuple[Minutes, ...]] = [()] * 7
    given_by: dict[int, str] = {}
    public_holidays = False
    for key, value in table.items():
        here = f"{at}.{key}"
        if key == "public_holidays":
            if not isinstance(value, bool):
                raise ValueError(f"{here}: must be true or false")
            public_holidays = value
            continue
        days = _days(key, here)
        periods = _periods(value, here)
        for day in days:
            if day in given_by:
                raise ValueError(f"{here}: {DAYS[day]} is already given by {given_by[day]}")
            given_by[day] = key
            week[day] = periods
    return CountryHours(week=tuple(week), no_holidays=not public_holidays)


def _days(key: object, here: str) -> tuple[int, ...]:
    """`mon` or a range `mon-fri`; a range may wrap past Sunday (`fri-mon`)."""
    if isinstance(key, str):
        if key in DAYS:
            return (DAYS.index(key),)
        first, sep, last = key.partition("-")
        if sep and first in DAYS and last in DAYS and first != last:
            a, b = DAYS.index(first), DAYS.index(last)
            return tuple((a + i) % 7 for i in range((b - a) % 7 + 1))
    raise ValueError(f"{here}: not a day (mon..sun), a range of days (mon-fri) nor public_holidays")


def _periods(value: object, here: str) -> tuple[Minutes, ...]:
    """Sorted for the evaluator; overlaps refused since they are almost always a typo."""
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ValueError(f'{here}: must be a list of "HH:MM-HH:MM" periods')
    periods = sorted(_period(item, here) for item in value)
    for prev, cur in pairwise(periods):
        if cur[0] < prev[1]:
            raise ValueError(f"{here}: periods {_fmt(prev)} and {_fmt(cur)} overlap")
    return tuple(periods)


def _period(item: object, here: str) -> Minutes:
    match = _PERIOD.fullmatch(item) if isinstance(item, str) else None
    if match is None:
        raise ValueError(f"{here}: {item!r} is not HH:MM-HH:MM")
    sh, sm, eh, em = (int(g) for g in match.groups())
    end_ok = (eh < 24 and em < 60) or (eh == 24 and em == 0)
    if sh > 23 or sm > 59 or not end_ok:
        raise ValueError(f"{here}: {item!r} is not HH:MM-HH:MM")
    start, end = sh * 60 + sm, eh * 60 + em
    if start >= end:
        raise ValueError(f"{here}: {item!r} does not end after it starts")
    return start, end


def _fmt(period: Minutes) -> str:
    (sh, sm), (eh, em) = divmod(period[0], 60), divmod(period[1], 60)
    return f"{sh:02d}:{sm:02d}-{eh:02d}:{em:02d}"


# --- zones -----------------------------------------------------------------------------


def zones_for(country: str, msc: str | None = None) -> tuple[str, ...]:
    """The distinct present-day zones the subscriber may be in, narrowed by the serving
    MSC's number when phonenumbers places it inside the country. () when hlrd cannot
    place the country in any zone (`evaluate` then defers it if a rule applies).
    Memoised: a dialer asks for the same few (country, MSC) pairs all day."""
    return _zones_for(country, msc or None)


@functools.lru_cache(maxsize=8192)
def _zones_for(country: str, msc: str | None) -> tuple[str, ...]:
    zones = _country_zones(country)
    if not zones or msc is None:
        return zones
    return _narrow(zones, msc) or zones


def _narrow(zones: tuple[str, ...], msc: str) -> tuple[str, ...]:
    """The country's zones the MSC's number falls in. Zones phonenumbers names that are
    not the country's representative (America/Boise for America/Denver) are matched by
    keeping the same clock; an MSC abroad or unplaceable narrows nothing."""
    digits = msc.removeprefix("+")
    if not (digits.isascii() and digits.isdigit()):
        return ()
    try:
        number = phonenumbers.parse("+" + digits)
    except phonenumbers.NumberParseException:
        return ()
    named = set(pn_timezone.time_zones_for_number(number)) - {_UNKNOWN_ZONE}
    clocks = {_timeline(name) for name in named} - {None}
    return tuple(z for z in zones if z in named or _timeline(z) in clocks)


@functools.lru_cache(maxsize=512)
def _country_zones(country: str) -> tuple[str, ...]:
    listed = _zone_table().get(country) or _phonenumbers_zones(country)
    return _distinct(listed)


def _distinct(zones: Iterable[str]) -> tuple[str, ...]:
    """One zone per clock: zone.tab lists zones that differed only in the past (29 for
    the US); evaluating each would cost time and say nothing more. The name kept is the
    one zonenow.tab uses, else the first listed."""
    preferred = _zonenow()
    groups: dict[tuple[tuple[int, int], ...], list[str]] = {}
    for zone in zones:
        clock = _timeline(zone)
        if clock is not None:
            groups.setdefault(clock, []).append(zone)
    return tuple(next((z for z in g if z in preferred), g[0]) for g in groups.values())


def _phonenumbers_zones(country: str) -> tuple[str, ...]:
    """For the few regions numbered but absent from zone.tab (XK Kosovo, AC Ascension)."""
    example = phonenumbers.example_number_for_type(
        country, phonenumbers.PhoneNumberType.MOBILE
    ) or phonenumbers.example_number(country)
    if example is None:
        return ()
    return tuple(z for z in pn_timezone.time_zones_for_number(example) if z != _UNKNOWN_ZONE)


@functools.cache
def _zone_table() -> Mapping[str, tuple[str, ...]]:
    """Country -> zones from zone.tab (its names are the country's own: Europe/Oslo,
    not zone1970.tab's Europe/Berlin). zonenow.tab cannot serve here: its country
    column is always "XX" ("irrelevant and ignored", says its header)."""
    table: dict[str, list[str]] = {}
    for line in _read_tab("zone.tab", "zone1970.tab").splitlines():
        fields = line.split("\t")
        if line.startswith("#") or len(fields) < 3:
            continue
        for code in fields[0].split(","):
            table.setdefault(code, []).append(fields[2])
    return MappingProxyType({code: tuple(zones) for code, zones in table.items()})


@functools.cache
def _zonenow() -> frozenset[str]:
    """The zone names tzdb itself picks to stand for each present-day clock."""
    lines = _read_tab("zonenow.tab").splitlines()
    return frozenset(
        f[2] for f in (line.split("\t") for line in lines if not line.startswith("#")) if len(f) > 2
    )


def _read_tab(*names: str) -> str:
    """The tzdata package's copy first (a pinned dependency, usually newer than the
    system's, so it lists zones created since), else the system's."""
    for name in names:
        try:
            return (resources.files("tzdata") / "zoneinfo" / name).read_text(encoding="utf-8")
        except (ModuleNotFoundError, OSError):
            pass
        try:
            return (_SYSTEM_ZONEINFO / name).read_text(encoding="utf-8")
        except OSError:
            pass
    return ""


@functools.cache
def _today() -> int:
    """Grouping zones is about the clocks from now on: the day it is first needed."""
    return int(time.time()) // 86400 * 86400


@functools.lru_cache(maxsize=1024)
def _timeline(key: str) -> tuple[tuple[int, int], ...] | None:
    """A zone's UTC offset and every change of it over the next two years: zones with
    the same timeline keep the same clock. None for a name zoneinfo does not know."""
    try:
        zone = ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    start = _today()
    previous = _offset(zone, start)
    changes = [(start, previous)]
    for day in range(1, _AGREE_DAYS + 1):
        at = start + day * 86400
        current = _offset(zone, at)
        if current != previous:
            changes.append((_change(zone, at - 86400, at), current))
            previous = current
    return tuple(changes)


def _offset(zone: ZoneInfo, ts: int) -> int:
    delta = datetime.fromtimestamp(ts, zone).utcoffset()
    return int(delta.total_seconds()) if delta is not None else 0


def _change(zone: ZoneInfo, lo: int, hi: int) -> int:
    """The first second in (lo, hi] already on hi's offset: the transition instant."""
    target = _offset(zone, hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _offset(zone, mid) == target:
            hi = mid
        else:
            lo = mid
    return hi


# --- evaluation ------------------------------------------------------------------------

Span = tuple[float, float]  # [start, end) in POSIX seconds


_Memo = dict[tuple[str, Any], tuple[datetime, datetime, HoursVerdict]]


class CallingHours:
    """Evaluates `HoursRules`, memoising each verdict for the span in which it holds.

    Memo hits compare `now` with UTC datetimes: pass `datetime.now(UTC)` (another
    tzinfo works but costs a conversion per comparison)."""

    __slots__ = ("_by_msc", "_by_zones", "_max_memo", "_rules")

    def __init__(self, rules: HoursRules, max_memo: int = 4096) -> None:
        self._rules = rules
        self._max_memo = max(1, max_memo)
        # key -> (computed at, until, verdict): reused only for computed at <= now < until
        self._by_zones: _Memo = {}
        self._by_msc: _Memo = {}  # check() skips zones_for on a hit

    def check(self, country: str, msc: str | None, now: datetime) -> HoursVerdict:
        """`country` is where the subscriber is: the visited country for a roamer."""
        if now.tzinfo is None:
            raise ValueError("calling hours: now must be timezone-aware")
        key = (country, msc)
        hit = self._by_msc.get(key)
        if hit is not None and hit[0] <= now < hit[1]:
            return hit[2]
        verdict = self.evaluate(country, zones_for(country, msc), now)
        self._remember(self._by_msc, key, now, verdict)
        return verdict

    def evaluate(self, country: str, zones: tuple[str, ...], now: datetime) -> HoursVerdict:
        """`country` upper-case ISO alpha-2; `now` aware. Raises ValueError for a naive
        `now` or a zone name zoneinfo does not know (a caller's bug, not a verdict)."""
        if now.tzinfo is None:
            raise ValueError("calling hours: now must be timezone-aware")
        key = (country, zones)
        hit = self._by_zones.get(key)
        if hit is not None and hit[0] <= now < hit[1]:
            return hit[2]
        hours = self._rules.countries.get(country, self._rules.default)
        if hours is None:
            return HoursVerdict(True, country, zones)
        verdict = _judge(country, zones, hours, now)
        self._remember(self._by_zones, key, now, verdict)
        return verdict

    def _remember(
        self, memo: _Memo, key: tuple[str, Any], now: datetime, verdict: HoursVerdict
    ) -> None:
        if verdict.until is None:  # constant verdicts are cheap to make again
            return
        if len(memo) >= self._max_memo:
            memo.clear()
        memo[key] = (now.astimezone(UTC), verdict.until, verdict)

    def preload(self, years: Iterable[int]) -> None:
        """Loads what a first check of a listed country would: its zones (~50 ms for the
        US) and holidays (the first year of a country imports its module, ~0.1 s). Call
        it from a thread at start-up so no check pays that on the event loop."""
        years = tuple(years)
        for country, hours in self._rules.countries.items():
            zones_for(country)
            for year in years if hours.no_holidays else ():
                _holidays(country, year)


def _judge(
    country: str, zones: tuple[str, ...], hours: CountryHours, now: datetime
) -> HoursVerdict:
    """One uncached verdict, searched over one day more than the horizon so that a
    "none" verdict can be given an `until` too."""
    if not zones:
        if _always_open(hours):
            return HoursVerdict(True, country, zones)
        return HoursVerdict(False, country, zones, reason=f"calling_hours_none:{country}")
    t0 = now.timestamp()
    horizon = t0 + HORIZON_DAYS * 86400
    open_ = _first_open(country, zones, hours, t0)
    if open_ and open_[0][0] <= t0:
        return HoursVerdict(True, country, zones, until=_utc(open_[0][1]))
    if not open_ or open_[0][0] > horizon:
        # No window within the horizon seen from any instant before `until` either.
        until = open_[0][0] - HORIZON_DAYS * 86400 if open_ else t0 + 86400
        return HoursVerdict(
            False, country, zones, reason=f"calling_hours_none:{country}", until=_utc(until)
        )
    return _deferred(country, zones, hours, t0, open_[0][0])


def _first_open(country: str, zones: tuple[str, ...], hours: CountryHours, t0: float) -> list[Span]:
    """The common open spans from t0: a few days usually show the next window whole,
    at a fifth of the cost of the full horizon (plus the day `_judge` needs)."""
    for days in (_SHORT_SCAN_DAYS, HORIZON_DAYS + 1):
        end = t0 + days * 86400
        open_ = _common(country, zones, hours, t0, end, hours.no_holidays)
        if open_ and open_[0][1] < end:
            break
    return open_


def _deferred(
    country: str, zones: tuple[str, ...], hours: CountryHours, t0: float, retry: float
) -> HoursVerdict:
    """The reason is "public_holiday" while a holiday is what keeps an otherwise open
    window shut before `retry`: from `now` to the end of the last such window, so the
    reason does not change before `until` (a memoised verdict must equal a fresh one)."""
    reason, until = f"calling_hours:{country}", retry
    if hours.no_holidays:
        shut = _common(country, zones, hours, t0, retry, holidays_shut=False)
        if shut:
            reason, until = f"public_holiday:{country}", shut[-1][1]
    return HoursVerdict(
        False, country, zones, retry_after=_utc(retry), reason=reason, until=_utc(until)
    )


def _always_open(hours: CountryHours) -> bool:
    return not hours.no_holidays and all(day == ((0, DAY_MINUTES),) for day in hours.week)


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _common(
    country: str,
    zones: tuple[str, ...],
    hours: CountryHours,
    start: float,
    end: float,
    holidays_shut: bool,
) -> list[Span]:
    """The instants in [start, end) open in every zone, as sorted disjoint spans."""
    common: list[Span] = [(start, end)]
    for name in zones:
        common = _intersect(
            common, _zone_spans(country, _zone(name), hours, start, end, holidays_shut)
        )
        if not common:
            break
    return common


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"calling hours: unknown time zone {name!r}") from exc


def _zone_spans(
    country: str,
    zone: ZoneInfo,
    hours: CountryHours,
    start: float,
    end: float,
    holidays_shut: bool,
) -> list[Span]:
    """A zone's allowed periods as UTC spans, day by day in local dates. A day's periods
    end by its first midnight, so none of an earlier day reaches into `start`'s date."""
    day = datetime.fromtimestamp(start, zone).date()
    last = datetime.fromtimestamp(end, zone).date() + _ONE_DAY
    spans: list[Span] = []
    while day <= last:
        periods = hours.week[day.weekday()]
        if periods and not (holidays_shut and day in _holidays(country, day.year)):
            for first, stop in periods:
                a, b = _wall_to_utc(zone, day, first, 0), _wall_to_utc(zone, day, stop, 1)
                if a < b:
                    spans.append((a, b))
        day += _ONE_DAY
    return _merge(spans)


def _wall_to_utc(zone: ZoneInfo, day: date, minute: int, fold: int) -> int:
    """A local wall time as POSIX seconds. fold=0 picks the first of a repeated time (a
    period's start), fold=1 the last (its end), so a period spans the real elapsed time.
    24:00 is the first next midnight: a repeated hour after it is the next day's. A time
    skipped by a spring-forward gap maps to the end of the gap: the first instant whose
    wall clock has passed it."""
    if minute == DAY_MINUTES:
        day, minute, fold = day + _ONE_DAY, 0, 0
    wall = datetime(day.year, day.month, day.day, minute // 60, minute % 60, fold=fold)
    ts = int(wall.replace(tzinfo=zone).timestamp())
    if datetime.fromtimestamp(ts, zone).replace(tzinfo=None) == wall:
        return ts
    other = int(wall.replace(tzinfo=zone, fold=1 - fold).timestamp())
    return _change(zone, min(ts, other), max(ts, other))


def _merge(spans: list[Span]) -> list[Span]:
    spans.sort()
    merged: list[Span] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            if b > merged[-1][1]:
                merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    return merged


def _intersect(xs: list[Span], ys: list[Span]) -> list[Span]:
    out: list[Span] = []
    i = j = 0
    while i < len(xs) and j < len(ys):
        a, b = max(xs[i][0], ys[j][0]), min(xs[i][1], ys[j][1])
        if a < b:
            out.append((a, b))
        if xs[i][1] < ys[j][1]:
            i += 1
        else:
            j += 1
    return out


@functools.lru_cache(maxsize=512)
def _holidays(country: str, year: int) -> frozenset[date]:
    """National public holidays only (no subdivision): the rule is per country. A country
    the holidays package does not cover has none."""
    try:
        return frozenset(holidays.country_holidays(country, years=year))
    except NotImplementedError:
        return frozenset()
