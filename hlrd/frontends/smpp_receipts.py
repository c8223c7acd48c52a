"""A LookupResult as the delivery receipt a call-center platform's SMPP client reads.

Same shape as the SMPP HLR providers they already integrate (and as hlrd-sim):
receipt text with HLR `key:value` fields, the SMPP 3.4 receipt TLVs, and the vendor
TLVs of hlrd.smpp.hlr_fields. Failures that are not the HLR's use `err:` codes from
900 up, so they never collide with MAP error codes (0-255):

| err | stat    | meaning                                      |
|-----|---------|----------------------------------------------|
| 901 | REJECTD | the destination is not a valid mobile number |
| 902 | UNDELIV | the lookup failed upstream                   |
| 903 | UNDELIV | no answer within the lookup timeout          |
| 904 | UNDELIV | the upstream refused for rate (throttled)    |
"""

from __future__ import annotations

from ..config import SmppAccount
from ..domain.result import LookupResult, Outcome, Reachability, RoamingStatus
from ..smpp.hlr_fields import HlrFields
from ..smpp.pdu import DeliverSm, SubmitSm
from ..smpp.receipts import Receipt, receipt_pdu

ERR_INVALID_NUMBER = 901
_OUTCOME_ERR = {Outcome.FAILED: 902, Outcome.TIMEOUT: 903, Outcome.THROTTLED: 904}
_STAT = {
    Reachability.CONNECTED: "DELIVRD",
    Reachability.ABSENT: "UNDELIV",
    Reachability.INVALID: "UNDELIV",
    Reachability.RESTRICTED: "REJECTD",
    Reachability.UNKNOWN: "UNKNOWN",
}


def stat_and_err(result: LookupResult | None) -> tuple[str, int]:
    if result is None:
        return "REJECTD", ERR_INVALID_NUMBER
    if result.outcome in _OUTCOME_ERR:
        return "UNDELIV", _OUTCOME_ERR[result.outcome]
    return _STAT[result.reachability], result.map_error or 0


def hlr_fields(result: LookupResult, account: SmppAccount) -> HlrFields:
    imsi = result.imsi if account.return_imsi and result.imsi and "*" not in result.imsi else None
    roaming = {RoamingStatus.ROAMING: True, RoamingStatus.NOT_ROAMING: False}.get(result.roaming)
    return HlrFields(
        hlr_status=result.reachability.value.lower(),
        imsi=imsi,
        mccmnc=result.subscription_network.mccmnc,
        serving_mccmnc=result.serving_network.mccmnc,
        msc=result.serving_msc,
        roaming=roaming,
        ported=result.ported,
        home_mccmnc=result.home_network.mccmnc,
        roaming_country=result.visited_country,
    )


def build_receipt(
    submit: SubmitSm, message_id: str, result: LookupResult | None, account: SmppAccount
) -> DeliverSm:
    stat, err = stat_and_err(result)
    fields = hlr_fields(result, account) if result is not None else HlrFields()
    with_text = account.receipt_format in ("text", "both")
    with_vendor = account.receipt_format in ("tlv", "both")
    r = Receipt(
        message_id=message_id,
        stat=stat,
        err=f"{err:03d}",
        extra=fields.text_fields() if with_text else {},
    )
    return receipt_pdu(submit, r, fields.tlvs() if with_vendor else [])
