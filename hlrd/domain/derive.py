"""From a provider's raw answer to reachability, porting and roaming.

Roaming is decided by comparing countries — the serving MSC's global title (or the
serving MCC) against the number's home country — never by comparing MNCs: national
roaming and MVNOs run on other networks of the same country and are not roaming
for the subscriber's bill.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from .countries import BY_ISO, country_of_mcc
from .map_errors import MapError, map_error_name
from .masking import mask_imsi
from .numbers import Msisdn, region_of_digits
from .result import (
    HlrAnswer,
    LookupResult,
    Network,
    Outcome,
    Reachability,
    RoamingStatus,
    Timings,
    Zone,
)

_ABSENT = {MapError.ABSENT_SUBSCRIBER, MapError.ABSENT_SUBSCRIBER_SM}
_INVALID = {
    MapError.UNKNOWN_SUBSCRIBER,
    MapError.UNIDENTIFIED_SUBSCRIBER,
    MapError.ILLEGAL_SUBSCRIBER,
    MapError.ILLEGAL_EQUIPMENT,
}
_RESTRICTED = {
    MapError.CALL_BARRED,
    MapError.TELESERVICE_NOT_PROVISIONED,
    MapError.FACILITY_NOT_SUPPORTED,
}


def reachability_of(answer: HlrAnswer) -> Reachability:
    code = answer.map_error or 0
    if code == 0:
        return Reachability.CONNECTED if answer.delivered else Reachability.UNKNOWN
    if code in _ABSENT:
        return Reachability.ABSENT
    if code in _INVALID:
        return Reachability.INVALID
    if code in _RESTRICTED:
        return Reachability.RESTRICTED
    return Reachability.UNKNOWN


def _country_of_mccmnc(mccmnc: str | None) -> str | None:
    if not mccmnc:
        return None
    c = country_of_mcc(mccmnc)
    return c.iso if c else None


def _zone(home: str, visited: str) -> Zone:
    h, v = BY_ISO.get(home), BY_ISO.get(visited)
    if h is None or v is None:
        return Zone.NON_EEA if v is None and visited else Zone.UNKNOWN
    return Zone.EEA if (h.eea and v.eea) else Zone.NON_EEA


def derive(
    msisdn: Msisdn,
    answer: HlrAnswer,
    return_imsi: bool,
    *,
    lookup_id: str,
    provider: str,
    transport: str,
    timings: Timings,
    imsi_keyer: Callable[[str], bytes] | None = None,
) -> LookupResult:
    """The result of a lookup: what the provider's answer means for this number."""
    reach = reachability_of(answer)
    code = answer.map_error or 0
    home_country = msisdn.region
    subscription = Network(answer.mccmnc, _country_of_mccmnc(answer.mccmnc))
    home = Network(answer.home_mccmnc, home_country)
    if answer.home_mccmnc and answer.mccmnc:
        ported: bool | None = answer.home_mccmnc != answer.mccmnc
    else:
        ported = answer.ported
    serving_country = region_of_digits(answer.msc) if answer.msc else None
    serving_country = (
        serving_country or answer.serving_country or _country_of_mccmnc(answer.serving_mccmnc)
    )
    if serving_country is None:
        roaming, visited, zone = RoamingStatus.UNKNOWN, None, Zone.UNKNOWN
    elif serving_country == home_country:
        roaming, visited, zone = RoamingStatus.NOT_ROAMING, None, Zone.DOMESTIC
    else:
        roaming, visited = RoamingStatus.ROAMING, serving_country
        zone = _zone(home_country, serving_country)
    outcome = Outcome.OK
    if reach is Reachability.UNKNOWN or (
        reach is Reachability.CONNECTED and roaming is RoamingStatus.UNKNOWN
    ):
        outcome = Outcome.PARTIAL
    imsi = answer.imsi if return_imsi else mask_imsi(answer.imsi)
    imsi_key = None
    if imsi_keyer is not None and answer.imsi:
        with contextlib.suppress(ValueError):  # no IMSI, whatever the provider sent
            imsi_key = imsi_keyer(answer.imsi)
    return LookupResult(
        lookup_id=lookup_id,
        msisdn=msisdn.e164,
        provider=provider,
        transport=transport,
        timings=timings,
        outcome=outcome,
        reachability=reach,
        map_error=code,
        map_error_name=map_error_name(code) if code else None,
        home_network=home,
        subscription_network=subscription,
        ported=ported,
        serving_msc=answer.msc,
        serving_network=Network(answer.serving_mccmnc, _country_of_mccmnc(answer.serving_mccmnc)),
        serving_country=serving_country,
        roaming=roaming,
        visited_country=visited,
        zone=zone,
        imsi=imsi,
        imsi_key=imsi_key,
    )
