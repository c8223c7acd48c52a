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
| 905 | REJECTD | the gate blocked it before any lookup, or    |
|     |         | the number changed hands (subscriber_changed)|
| 906 | REJECTD | deferred: outside the calling hours          |
| 907 | UNDELIV | no decision could be recorded (audit full)   |

Every receipt of a valid number also carries the account's policy's decision. The
text always has `call:yes|no` (what the platform dials on); a receipt the gate
answered without a lookup also has `decision:<verdict> reasons:<r1>,<r2>` and, when
deferred, `retry_after:<unix seconds>` (a looked-up receipt's text has no room for
them within short_message's 254 octets, which platforms read). The vendor TLVs carry
all of it, every time:

| tag    | field                           | example                  |
|--------|---------------------------------|--------------------------|
| 0x1410 | decision                        | `block`                  |
| 0x1411 | call (u8 0/1)                   | `0`                      |
| 0x1412 | reasons, comma-separated        | `consent_missing:voice`  |
| 0x1413 | retry_after (unix seconds)      | `1764655200`             |
| 0x1414 | policy and version              | `telemarketing:7`        |
"""

from __future__ import annotations

from ..call_check import Answer
from ..config import SmppAccount
from ..domain.decision import Verdict
from ..domain.result import LookupResult, Outcome, Reachability, RoamingStatus
from ..smpp.hlr_fields import HlrFields
from ..smpp.pdu import TLV_CSTR, DeliverSm, SubmitSm, Tlv, make_tlv
from ..smpp.receipts import Receipt, receipt_pdu

ERR_INVALID_NUMBER = 901
_OUTCOME_ERR = {Outcome.FAILED: 902, Outcome.TIMEOUT: 903, Outcome.THROTTLED: 904}
ERR_GATE_BLOCKED = 905
ERR_DEFERRED = 906
ERR_NOT_RECORDED = 907
_STAT = {
    Reachability.CONNECTED: "DELIVRD",
    Reachability.ABSENT: "UNDELIV",
    Reachability.INVALID: "UNDELIV",
    Reachability.RESTRICTED: "REJECTD",
    Reachability.UNKNOWN: "UNKNOWN",
}


def stat_and_err(result: LookupResult | None, answer: Answer | None = None) -> tuple[str, int]:
    """The HLR's stat and error, unless the gate's answer overrides them: deferred,
    not recorded, blocked without a lookup, or the number changed hands."""
    if answer is not None:
        if answer.verdict is Verdict.DEFER:
            return "REJECTD", ERR_DEFERRED
        if answer.reasons == ("audit_backlog",):
            return "UNDELIV", ERR_NOT_RECORDED
        if answer.verdict is Verdict.BLOCK and (
            result is None or "subscriber_changed" in answer.reasons
        ):
            return "REJECTD", ERR_GATE_BLOCKED
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


TAG_DECISION = 0x1410
TAG_CALL = 0x1411
TAG_REASONS = 0x1412
TAG_RETRY_AFTER = 0x1413
TAG_POLICY = 0x1414


def decision_fields(answer: Answer, whole: bool) -> dict[str, str]:
    """Receipt text fields: `call`, and the rest when `whole`."""
    fields = {"call": "yes" if answer.call else "no"}
    if whole:
        fields["decision"] = answer.verdict.value
        fields["reasons"] = ",".join(answer.reasons) or "none"
        if answer.retry_after is not None:
            fields["retry_after"] = str(int(answer.retry_after.timestamp()))
    return fields


def decision_tlvs(answer: Answer) -> list[Tlv]:
    tlvs = [
        make_tlv(TAG_DECISION, answer.verdict.value, TLV_CSTR),
        Tlv(TAG_CALL, b"\x01" if answer.call else b"\x00"),
        make_tlv(TAG_REASONS, ",".join(answer.reasons), TLV_CSTR),
        make_tlv(TAG_POLICY, f"{answer.policy.name}:{answer.policy.version}", TLV_CSTR),
    ]
    if answer.retry_after is not None:
        tlvs.append(make_tlv(TAG_RETRY_AFTER, str(int(answer.retry_after.timestamp())), TLV_CSTR))
    return tlvs


def build_receipt(
    submit: SubmitSm,
    message_id: str,
    result: LookupResult | None,
    account: SmppAccount,
    answer: Answer | None = None,
) -> DeliverSm:
    stat, err = stat_and_err(result, answer)
    fields = hlr_fields(result, account) if result is not None else HlrFields()
    with_text = account.receipt_format in ("text", "both")
    with_vendor = account.receipt_format in ("tlv", "both")
    extra = fields.text_fields() if with_text else {}
    tlvs = fields.tlvs() if with_vendor else []
    if answer is not None:
        extra.update(decision_fields(answer, whole=result is None))
        if with_vendor:
            tlvs += decision_tlvs(answer)
    r = Receipt(message_id=message_id, stat=stat, err=f"{err:03d}", extra=extra)
    return receipt_pdu(submit, r, tlvs)
