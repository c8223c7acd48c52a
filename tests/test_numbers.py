"""Normalizing what dialers send into E.164 digits, and the country of a global title."""

from __future__ import annotations

import phonenumbers
import pytest

from hlrd.domain.numbers import (
    InvalidNumber,
    Msisdn,
    NumberProblem,
    _plain_international,
    normalize,
    region_of_digits,
)

PL_MOBILE = Msisdn(e164="48601234567", region="PL", mobile=True)
DE_MOBILE = Msisdn(e164="4915112345678", region="DE", mobile=True)


@pytest.mark.parametrize(
    "raw",
    [
        "+48 601 234 567",
        "0048601234567",
        "48601234567",
        "601234567",
        "  +48601234567  ",
        "601-234-567",
        "601.234.567",
        "(601) 234 567",
        "+48/601/234/567",
        "\u00a0+48\u00a0601\u00a0234\u00a0567",
    ],
)
def test_polish_mobile_in_every_format(raw: str) -> None:
    assert normalize(raw) == PL_MOBILE


@pytest.mark.parametrize(
    ("raw", "default_region"),
    [
        ("4915112345678", "PL"),
        ("+49 151 12345678", "PL"),
        ("0049 151 12345678", "PL"),
        ("+49 (0)151 1234 5678", "PL"),
        ("+49 (0) 151.1234.5678", "PL"),
        ("15112345678", "DE"),
        ("0151 12345678", "DE"),
    ],
)
def test_german_mobile(raw: str, default_region: str) -> None:
    assert normalize(raw, default_region=default_region) == DE_MOBILE


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+44 (0)7400 123456", Msisdn("447400123456", "GB", True)),
        ("+33 (0)6 12 34 56 78", Msisdn("33612345678", "FR", True)),
        ("+43 (0)664 1234567", Msisdn("436641234567", "AT", True)),
    ],
)
def test_trunk_zero_in_parentheses_is_dropped(raw: str, expected: Msisdn) -> None:
    assert normalize(raw) == expected


@pytest.mark.parametrize("default_region", ["PL", "US", "DE"])
def test_00_prefix_is_international_whatever_the_default_region(default_region: str) -> None:
    # The US dials out with 011, so "00" must be understood by hlrd itself, not by the region.
    assert normalize("0048601234567", default_region=default_region) == PL_MOBILE


def test_default_region_applies_to_national_numbers_only() -> None:
    with pytest.raises(InvalidNumber):
        normalize("601234567", default_region="DE")
    assert normalize("+48 601 234 567", default_region="DE") == PL_MOBILE


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("abc", NumberProblem.NOT_A_NUMBER),
        ("", NumberProblem.NOT_A_NUMBER),
        ("+", NumberProblem.NOT_A_NUMBER),
        ("+48 601 234 56x", NumberProblem.NOT_A_NUMBER),
        ("++48601234567", NumberProblem.NOT_A_NUMBER),
        ("-48600000001", NumberProblem.NOT_A_NUMBER),  # a minus sign is not a separator
        ("\u00b248600000001", NumberProblem.NOT_A_NUMBER),  # superscript digits: isdigit() is True
        ("4860000000\u00b9", NumberProblem.NOT_A_NUMBER),
        ("\u2460\u2461\u2462\u2463\u2464\u2465", NumberProblem.NOT_A_NUMBER),  # circled
        ("\uff14\uff18\uff16\uff10\uff10\uff10\uff10\uff10", NumberProblem.NOT_A_NUMBER),
        ("1234", NumberProblem.TOO_SHORT),
        ("12-34", NumberProblem.TOO_SHORT),
        ("486012345678901234", NumberProblem.TOO_LONG),
        # E.164 numbers have at most 15 digits; 16 after a '+' is too long, not "invalid".
        ("+4860123456789012", NumberProblem.TOO_LONG),
        ("+48 601 234 56", NumberProblem.INVALID),
        ("+48 601 234 5678", NumberProblem.INVALID),
        ("+999 1234567", NumberProblem.INVALID),
        ("+48 22 123 45 67", NumberProblem.NOT_MOBILE),
    ],
)
def test_problem(raw: str, problem: NumberProblem) -> None:
    with pytest.raises(InvalidNumber) as exc:
        normalize(raw)
    assert exc.value.problem is problem
    assert exc.value.detail


def test_fixed_line_accepted_when_not_mobile_only() -> None:
    assert normalize("+48 22 123 45 67", mobile_only=False) == Msisdn("48221234567", "PL", False)
    assert normalize("+48 601 234 567", mobile_only=False) == PL_MOBILE


@pytest.mark.parametrize(
    ("digits", "region"),
    [
        ("201000000001", "EG"),
        ("491720000001", "DE"),
        ("48600000001", "PL"),
        ("447400123456", "GB"),
        ("41791234567", "CH"),
        ("12025550123", "US"),
        ("882123456", None),
        ("", None),
        ("abc", None),
    ],
)
def test_region_of_digits(digits: str, region: str | None) -> None:
    assert region_of_digits(digits) == region


def test_e164_fast_path_builds_exactly_what_phonenumbers_parses() -> None:
    """normalize() skips phonenumbers.parse() for plain E.164 digits; for every
    region's example numbers (and neighbours of them) the number it builds must be
    the one parse() returns, or it must step aside."""
    taken = 0
    checked = 0
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in range(11):  # every PhoneNumberType with example numbers
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)[1:]
            for digits in {e164, e164[:-1] + "7", e164[:-2] + "00", e164[:-1]}:
                checked += 1
                built = _plain_international(digits)
                if built is not None:
                    taken += 1
                    assert built == phonenumbers.parse("+" + digits, None), digits
    assert taken > checked // 2  # the fast path is the common path


def test_not_a_number_says_what_is_accepted() -> None:
    with pytest.raises(InvalidNumber) as exc:
        normalize("\u00b2\u00b2\u00b2")
    assert "digits 0-9" in exc.value.detail
    assert "+48601234567" in exc.value.detail  # an example of each accepted form
