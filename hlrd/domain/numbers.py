"""Turning what a dialer sends into E.164 digits, or a clear reason why not.

Dialers send numbers in every format: `+48 601 234 567`, `0048601234567`,
`48601234567`, national `601234567`. phonenumbers (Google's libphonenumber metadata,
the field's standard) knows every country's ranges, so it decides validity and
whether a number is mobile.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from enum import StrEnum

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumber, PhoneNumberType

_SEPARATORS = re.compile(r"[\s\-().\u00a0/]")
_FIRST = frozenset("+(0123456789")  # "-48600000001" is not a number
_MOBILE_TYPES = {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}


class NumberProblem(StrEnum):
    NOT_A_NUMBER = "not_a_number"
    TOO_LONG = "too_long"
    TOO_SHORT = "too_short"
    INVALID = "invalid_for_country"
    NOT_MOBILE = "not_mobile"


class InvalidNumber(ValueError):
    def __init__(self, problem: NumberProblem, detail: str) -> None:
        super().__init__(detail)
        self.problem = problem
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Msisdn:
    e164: str  # digits only, no '+'
    region: str  # ISO 3166 alpha-2 of the numbering plan ("PL")
    mobile: bool

    def __str__(self) -> str:
        return self.e164


ACCEPTED = (
    "digits 0-9 with an optional leading + or 00, e.g. +48601234567, 0048601234567, "
    "48601234567 or a national number; spaces, dashes, dots, slashes and parentheses "
    "between digits are ignored"
)


def normalize(raw: str, default_region: str = "PL", mobile_only: bool = True) -> Msisdn:
    """E.164 digits of `raw`; raises InvalidNumber naming the problem.

    Only ASCII digits count: str.isdigit() also says yes to "²" or "①", which int()
    and phonenumbers then refuse with a ValueError, so one flipped bit in a
    submit_sm used to drop an SMPP link.
    """
    stripped = raw.strip()
    text = _SEPARATORS.sub("", stripped)
    if text.startswith("00"):
        text = "+" + text[2:]
    body = text[1:] if text.startswith("+") else text
    if not (body.isascii() and body.isdigit()) or stripped[:1] not in _FIRST:
        raise InvalidNumber(NumberProblem.NOT_A_NUMBER, ACCEPTED)
    if len(body) > 15:
        raise InvalidNumber(NumberProblem.TOO_LONG, "more than 15 digits (E.164 maximum)")
    if len(body) < 5:
        raise InvalidNumber(NumberProblem.TOO_SHORT, "fewer than 5 digits")
    if text.startswith("+"):
        candidates = [text]
    elif len(body) > _longest_national(default_region):
        candidates = ["+" + body, body]  # cannot be national: parse it once, not twice
    else:
        candidates = [body, "+" + body]
    parsed = None
    kind = PhoneNumberType.UNKNOWN
    if candidates[0].startswith("+"):
        parsed = _plain_international(candidates[0][1:])
        if parsed is not None:
            kind = phonenumbers.number_type(parsed)
            if kind == PhoneNumberType.UNKNOWN:
                parsed = None
    for candidate in candidates if parsed is None else ():
        try:
            number = phonenumbers.parse(candidate, default_region)
        except NumberParseException:
            continue
        # number_type() is what is_valid_number() computes inside; call it once.
        kind = phonenumbers.number_type(number)
        if kind != PhoneNumberType.UNKNOWN:
            parsed = number
            break
    if parsed is None:
        raise InvalidNumber(NumberProblem.INVALID, "not a valid number for its country")
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)[1:]
    if len(e164) > 15:
        raise InvalidNumber(NumberProblem.TOO_LONG, "more than 15 digits (E.164 maximum)")
    mobile = kind in _MOBILE_TYPES
    if mobile_only and not mobile:
        raise InvalidNumber(NumberProblem.NOT_MOBILE, "not a mobile number; HLRs know mobiles")
    region = phonenumbers.region_code_for_number(parsed) or "ZZ"
    return Msisdn(e164=e164, region=region, mobile=mobile)


def _plain_international(digits: str) -> PhoneNumber | None:
    """The number `+digits` is, built without phonenumbers.parse(), or None.

    parse() (~30 µs) handles every written form; E.164 digits need only the
    country code split off. Only when parse() would do nothing more: no leading
    zero and nothing its national-prefix rule would strip. Otherwise None, and the
    caller parses (tests hold both ways to the same answer).
    """
    for size in (1, 2, 3):
        cc = int(digits[:size])
        if cc in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            break
    else:
        return None
    nsn = digits[size:]
    if not nsn or nsn[0] == "0" or _strippable(cc, nsn):
        return None
    return PhoneNumber(country_code=cc, national_number=int(nsn))


def _strippable(cc: int, nsn: str) -> bool:
    pattern = _national_prefix_pattern(cc)
    return pattern is None or pattern.match(nsn) is not None


@functools.cache
def _national_prefix_pattern(cc: int) -> re.Pattern[str] | None:
    """The prefix parse() may strip after the country code (None: do not guess)."""
    region = phonenumbers.region_code_for_country_code(cc)
    if region in ("ZZ", "001"):
        return None
    md = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if md is None:
        return None
    return re.compile(md.national_prefix_for_parsing or "(?!)")


@functools.cache
def _longest_national(region: str) -> int:
    """Most digits a national number of `region` can have, with its trunk prefix.

    Dialers mostly send E.164 without "+"; when that is longer than any national
    number could be, trying it as national first is a wasted parse (~20 µs).
    """
    md = phonenumbers.PhoneMetadata.metadata_for_region(region)
    desc = md.general_desc if md is not None else None
    if md is None or desc is None or not desc.possible_length:
        return 99
    prefixes = (md.national_prefix_for_parsing or md.national_prefix or "").split("|")
    if not all(p.isdigit() or p == "" for p in prefixes):
        return 99  # a pattern, not literal prefixes: do not guess
    return max(desc.possible_length) + max(len(p) for p in prefixes)


def region_of_digits(digits: str) -> str | None:
    """Country (ISO) of a global title or E.164 digit string, by its calling code."""
    for size in (1, 2, 3):
        cc = digits[:size]
        if not cc.isdigit():
            return None
        regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(int(cc))
        if regions:
            if len(regions) == 1 or size > 1:
                return regions[0] if regions[0] != "001" else None
            try:
                n = phonenumbers.parse("+" + digits)
                return phonenumbers.region_code_for_number(n) or regions[0]
            except NumberParseException:
                return regions[0]
    return None
