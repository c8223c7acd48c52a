"""Numbers as registries write them, made E.164 digits fast.

A registry file holds millions of numbers in one country's national format
("07700 900123", "202,5550123"); phonenumbers' full parse costs ~20 µs a number,
which is minutes for a national list. Registries list valid numbers already, so this
only does what makes a national number international: separators out, `+` or `00`
kept as international, else the region's national prefix (0 in the UK, 1 in the
US, none in Italy, where the 0 belongs to the number) dropped and its country code
put in front, then a length check (7-15 digits).
"""

from __future__ import annotations

from phonenumbers import PhoneMetadata, country_code_for_region

_SEPARATORS = str.maketrans("", "", " -./()\t")


class NationalNumbers:
    __slots__ = ("_cc", "_prefix")

    def __init__(self, region: str) -> None:
        cc = country_code_for_region(region.upper())
        if not cc:
            raise ValueError(f"region: {region!r} is not a region phonenumbers knows")
        meta = PhoneMetadata.metadata_for_region(region.upper())
        self._cc = str(cc)
        self._prefix = (meta.national_prefix if meta is not None else None) or ""

    def e164(self, raw: str) -> str | None:
        """E.164 digits (no '+'), or None for what is not a number."""
        s = raw.strip()
        if not s.isdigit():  # the common case (digits alone) skips the separators
            s = s.translate(_SEPARATORS)
        if s.startswith("+"):
            digits = s[1:]
        elif s.startswith("00"):
            digits = s[2:]
        else:
            if self._prefix and s.startswith(self._prefix):
                s = s[len(self._prefix) :]
            digits = self._cc + s
        if 7 <= len(digits) <= 15 and digits.isascii() and digits.isdigit():
            return digits
        return None

    def e164_many(self, raws: list[str]) -> list[str | None]:
        """`e164` of each: national numbers of plain digits (what registries hold) in
        one comprehension, anything else (`+`, `00`, separators) through `e164`."""
        cc, prefix, cut, e164 = self._cc, self._prefix, len(self._prefix), self.e164
        out = [
            (cc + (s[cut:] if prefix and s.startswith(prefix) else s))
            if s.isascii() and s.isdigit() and not s.startswith("00")
            else e164(s)
            for s in [r.strip() for r in raws]
        ]
        return [d if d is None or 7 <= len(d) <= 15 else None for d in out]
