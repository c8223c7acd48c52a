"""tyntec HLR Lookup, formerly Global Number Verification (GNV): `GET /nis/v1/gnv`.

One GET per lookup, the number in the query (`msisdn=%2B<E.164>`: a bare `+` would
be read as a space) and the account's key in the `apiKey` header; the answer is the
`GnvResponse` of tyntec's public OpenAPI definition (docs/vendors/tyntec-gnv.md).

Two things of that answer shape how it is read:

* tyntec's definition types its flags as the STRINGS "true", "false" and
  "unknown", not JSON booleans, and a string "false" is truthy in Python — each
  flag goes through `_flag`, nothing tests one for truth directly;
* `errorCode` is the network's reason for an unsuccessful query, written in hex as
  tyntec's NIS error table lists it ("1b" is MAP absentSubscriber, 27): a MAP error
  code, so it goes into hlrd's answer as such and says more than `presence`.

Countries come as ISO 3166-1 alpha-3 (`mscCountry: "DEU"`); hlrd speaks alpha-2,
so the full ISO table is kept here (the shared country table only knows the few
countries hlrd has numbering facts for, and a subscriber may roam anywhere).
"""

from __future__ import annotations

import json
import re
from typing import Any

from ...domain.map_errors import MapError
from ...domain.numbers import region_of_digits
from ...domain.result import HlrAnswer
from ..base import ProviderError
from .problem import problem_type
from .provider import OneRequestVendor, Request

PATH = "/nis/v1/gnv"  # below base_url https://api.tyntec.com

# The largest errorCode taken as a code: MAP's are one byte and tyntec's error table
# writes at most four hex digits; anything wider is no code hlrd can name.
_MAX_ERROR_CODE = 0xFFFF


class Tyntec(OneRequestVendor):
    """The vendor half of the adapter: the request and what its answer means.

    Reachability: a non-zero `errorCode` is the network's MAP error (absent,
    unknown, barred ...); without one `presence` "true" is reachable, "false" absent
    and "unknown" unknown. Roaming is hlrd's own country compare: the serving
    MSC's country (`mscCountry`, and `msc` when it is a global title); when tyntec
    says "roaming": "false" and names no MSC, the number's own country. Porting is
    tyntec's verdict (it resolves portability itself), the range holder (`nrh*`)
    given as home network only where it agrees with that verdict. Everything else —
    HTTP errors, bodies that are not a GnvResponse, an answer about another number —
    fails the lookup, and no message holds the number, the key or tyntec's `detail`
    (which may echo the number).
    """

    def __init__(self, api_key: str) -> None:
        self._api_key = api_key

    def request(self, msisdn: str, lookup_id: str) -> Request:
        path = f"{PATH}?msisdn=%2B{msisdn}"  # msisdn: E.164 digits, nothing to escape
        key = self._api_key

        def headers() -> dict[str, str]:
            return {"Accept": "application/json", "apiKey": key}

        return Request("GET", path, None, headers)

    def read(self, status: int, body: bytes, msisdn: str) -> HlrAnswer:
        if status != 200:
            raise ProviderError(_refusal(status, body))
        try:
            d = json.loads(body)
        except ValueError:
            raise ProviderError("tyntec answered something that is not JSON") from None
        if not isinstance(d, dict):
            raise ProviderError("tyntec answered JSON that is not a GNV response")
        if d.get("synchronous") in (False, "false"):
            raise ProviderError("tyntec answered asynchronously (a callbackUrl is not used)")
        asked = d.get("msisdn")
        if asked is not None and (not isinstance(asked, str) or asked.removeprefix("+") != msisdn):
            raise ProviderError("tyntec answered about another number")
        delivered, map_error = _reachability(d.get("presence"), d.get("errorCode"))
        mccmnc = _mccmnc(d.get("imsiMCC"), d.get("imsiMNC"))
        ported = _flag(d.get("ported"))
        home = _mccmnc(d.get("nrhMCC"), d.get("nrhMNC"))
        if home and mccmnc and ported is not None and (home != mccmnc) != ported:
            # A range holder that disagrees with tyntec's porting verdict (an MVNO
            # on its host's IMSIs): hlrd would compare the two and say otherwise.
            home = None
        answer = HlrAnswer(
            delivered=delivered,
            map_error=map_error,
            imsi=_digits(d.get("imsi")),
            mccmnc=mccmnc,
            home_mccmnc=home,
            ported=ported,
            message_id=d.get("requestId") if isinstance(d.get("requestId"), str) else None,
        )
        if delivered and map_error is None:
            _serving(answer, d, msisdn)
        return answer


def _serving(answer: HlrAnswer, d: dict[str, Any], msisdn: str) -> None:
    """Where a reachable subscriber is served, for hlrd's country compare."""
    answer.msc = _digits(d.get("msc"))
    answer.serving_mccmnc = _mccmnc(d.get("mscMCC"), d.get("mscMNC"))
    answer.serving_country = alpha2(d.get("mscCountry"))
    if answer.msc or answer.serving_mccmnc or answer.serving_country:
        return
    if _flag(d.get("roaming")) is False:
        answer.serving_mccmnc = answer.mccmnc
        answer.serving_country = region_of_digits(msisdn)


_FLAGS: dict[Any, bool | None] = {"true": True, "false": False, "unknown": None}


def _flag(value: Any) -> bool | None:
    """tyntec's "true"/"false"/"unknown" as True/False/None; a JSON boolean is taken
    as meant (an older example writes one); anything else says nothing."""
    if isinstance(value, bool):
        return value
    return _FLAGS.get(value) if isinstance(value, str) else None


def _reachability(presence: Any, error_code: Any) -> tuple[bool | None, int | None]:
    """(delivered, map_error) from `errorCode`, else `presence`; ProviderError when
    the answer says neither (a GnvResponse without them is not one)."""
    code = _error_code(error_code)
    if code is None:
        return None, None  # an error we cannot read: no claim either way
    if code:
        return False, code
    if not (isinstance(presence, bool) or (isinstance(presence, str) and presence in _FLAGS)):
        raise ProviderError("tyntec answered without a known presence or errorCode")
    seen = _flag(presence)
    if seen is False:
        return False, int(MapError.ABSENT_SUBSCRIBER)
    return seen, None


def _error_code(value: Any) -> int | None:
    """`errorCode` as an int: 0 for none (absent, or "0"), None when unreadable.
    tyntec writes it as a hex string; a JSON number is only taken where both bases
    read the same (0-9)."""
    if value is None or value == "":
        return 0
    if isinstance(value, int) and not isinstance(value, bool):
        return value if 0 <= value <= 9 else None
    if not isinstance(value, str) or not _HEX.fullmatch(value.strip()):
        return None
    code = int(value.strip(), 16)
    return code if code <= _MAX_ERROR_CODE else None


_HEX = re.compile(r"(?:0x)?[0-9a-fA-F]{1,8}")


def _digits(value: Any) -> str | None:
    """A digit string as given; masked or anything else is no value (an IMSI too:
    it is passed on, never logged or put in a message)."""
    return value if isinstance(value, str) and value.isascii() and value.isdigit() else None


def _mccmnc(mcc_value: Any, mnc_value: Any) -> str | None:
    mcc, mnc = _digits(mcc_value), _digits(mnc_value)
    if mcc and mnc and len(mcc) == 3 and 2 <= len(mnc) <= 3:
        return mcc + mnc
    return None


def _refusal(status: int, body: bytes) -> str:
    """The failure's message: ours per status, and the RFC 7807 problem's `type`
    name when it is a plain word (`DataNotParseable`) — never its `title` or
    `detail`, which are free text and may hold the number."""
    what = _HTTP_ERRORS.get(status, f"tyntec answered HTTP {status}")
    kind = problem_type(body)
    return f"{what} [{kind}]" if kind else what


_HTTP_ERRORS = {
    400: "tyntec refused the request (HTTP 400)",
    401: "tyntec refused the credentials (HTTP 401): check api_key",
    402: "tyntec: the account is out of credit (HTTP 402)",
    403: "tyntec refused the credentials (HTTP 403): check api_key",
    404: "tyntec has no such endpoint (HTTP 404): check base_url",
}


def alpha2(alpha3: Any) -> str | None:
    """ISO 3166-1 alpha-2 of an alpha-3 code (any case), or None."""
    return _ALPHA2.get(alpha3.upper()) if isinstance(alpha3, str) else None


# ISO 3166-1: alpha-3 alpha-2, and Kosovo's user-assigned XKX/XK that operators use.
_ISO = """
AFG AF ALA AX ALB AL DZA DZ ASM AS AND AD AGO AO AIA AI ATA AQ ATG AG ARG AR ARM AM
ABW AW AUS AU AUT AT AZE AZ BHS BS BHR BH BGD BD BRB BB BLR BY BEL BE BLZ BZ BEN BJ
BMU BM BTN BT BOL BO BES BQ BIH BA BWA BW BVT BV BRA BR IOT IO BRN BN BGR BG BFA BF
BDI BI CPV CV KHM KH CMR CM CAN CA CYM KY CAF CF TCD TD CHL CL CHN CN CXR CX CCK CC
COL CO COM KM COG CG COD CD COK CK CRI CR CIV CI HRV HR CUB CU CUW CW CYP CY CZE CZ
DNK DK DJI DJ DMA DM DOM DO ECU EC EGY EG SLV SV GNQ GQ ERI ER EST EE SWZ SZ ETH ET
FLK FK FRO FO FJI FJ FIN FI FRA FR GUF GF PYF PF ATF TF GAB GA GMB GM GEO GE DEU DE
GHA GH GIB GI GRC GR GRL GL GRD GD GLP GP GUM GU GTM GT GGY GG GIN GN GNB GW GUY GY
HTI HT HMD HM VAT VA HND HN HKG HK HUN HU ISL IS IND IN IDN ID IRN IR IRQ IQ IRL IE
IMN IM ISR IL ITA IT JAM JM JPN JP JEY JE JOR JO KAZ KZ KEN KE KIR KI PRK KP KOR KR
KWT KW KGZ KG LAO LA LVA LV LBN LB LSO LS LBR LR LBY LY LIE LI LTU LT LUX LU MAC MO
MDG MG MWI MW MYS MY MDV MV MLI ML MLT MT MHL MH MTQ MQ MRT MR MUS MU MYT YT MEX MX
FSM FM MDA MD MCO MC MNG MN MNE ME MSR MS MAR MA MOZ MZ MMR MM NAM NA NRU NR NPL NP
NLD NL NCL NC NZL NZ NIC NI NER NE NGA NG NIU NU NFK NF MKD MK MNP MP NOR NO OMN OM
PAK PK PLW PW PSE PS PAN PA PNG PG PRY PY PER PE PHL PH PCN PN POL PL PRT PT PRI PR
QAT QA REU RE ROU RO RUS RU RWA RW BLM BL SHN SH KNA KN LCA LC MAF MF SPM PM VCT VC
WSM WS SMR SM STP ST SAU SA SEN SN SRB RS SYC SC SLE SL SGP SG SXM SX SVK SK SVN SI
SLB SB SOM SO ZAF ZA SGS GS SSD SS ESP ES LKA LK SDN SD SUR SR SJM SJ SWE SE CHE CH
SYR SY TWN TW TJK TJ TZA TZ THA TH TLS TL TGO TG TKL TK TON TO TTO TT TUN TN TUR TR
TKM TM TCA TC TUV TV UGA UG UKR UA ARE AE GBR GB USA US UMI UM URY UY UZB UZ VUT VU
VEN VE VNM VN VGB VG VIR VI WLF WF ESH EH YEM YE ZMB ZM ZWE ZW XKX XK
"""
_PAIRS = _ISO.split()
_ALPHA2: dict[str, str] = dict(zip(_PAIRS[::2], _PAIRS[1::2], strict=True))
