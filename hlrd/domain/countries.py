"""Country facts for roaming decisions: calling code, MCCs and EEA membership.

Roaming is decided by comparing countries, never MNCs, so the only facts needed are
which country an MCC or a calling code belongs to, and which countries are in the
EEA (roam-like-at-home: no extra cost to the subscriber).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Country:
    iso: str
    calling_code: str
    mccs: tuple[str, ...]
    eea: bool
    mobile_mnc: str  # a common mobile network code, for derived test data


# iso calling_code mccs(comma) eea mnc
_TABLE = """
AT 43 232 1 01
BE 32 206 1 01
BG 359 284 1 01
HR 385 219 1 01
CY 357 280 1 01
CZ 420 230 1 01
DK 45 238 1 01
EE 372 248 1 01
FI 358 244 1 91
FR 33 208 1 01
DE 49 262 1 01
GR 30 202 1 01
HU 36 216 1 30
IE 353 272 1 01
IT 39 222 1 01
LV 371 247 1 01
LT 370 246 1 01
LU 352 270 1 01
MT 356 278 1 01
NL 31 204 1 04
PL 48 260 1 01
PT 351 268 1 01
RO 40 226 1 01
SK 421 231 1 01
SI 386 293 1 41
ES 34 214 1 01
SE 46 240 1 01
IS 354 274 1 01
LI 423 295 1 01
NO 47 242 1 01
CH 41 228 0 01
GB 44 234,235 0 15
UA 380 255 0 01
TR 90 286 0 01
RU 7 250 0 01
US 1 310,311,312,313,314,315,316 0 260
EG 20 602 0 01
MA 212 604 0 00
TN 216 605 0 02
AE 971 424 0 02
IN 91 404,405 0 10
CN 86 460 0 00
TH 66 520 0 01
BR 55 724 0 05
AU 61 505 0 01
ZA 27 655 0 01
"""


def _load() -> tuple[Country, ...]:
    out = []
    for line in _TABLE.strip().splitlines():
        iso, cc, mccs, eea, mnc = line.split()
        out.append(Country(iso, cc, tuple(mccs.split(",")), eea == "1", mnc))
    return tuple(out)


COUNTRIES: tuple[Country, ...] = _load()
BY_ISO: dict[str, Country] = {c.iso: c for c in COUNTRIES}
BY_MCC: dict[str, Country] = {m: c for c in COUNTRIES for m in c.mccs}
_BY_CC: dict[str, Country] = {}
for _c in COUNTRIES:
    _BY_CC.setdefault(_c.calling_code, _c)


def country_of_mcc(mcc: str) -> Country | None:
    return BY_MCC.get(mcc[:3])


def country_of_number(e164_digits: str) -> Country | None:
    """Country by the longest calling-code prefix (calling codes are 1-3 digits)."""
    for size in (3, 2, 1):
        c = _BY_CC.get(e164_digits[:size])
        if c is not None:
            return c
    return None
