"""RestComm SMSC gateway's receipts for SRI-only HLR lookups (`dropaftersri`), as
RestComm builds them (docs/vendors/restcomm-sri-receipts.md, MessageUtil and
MtCommonSbb): no TLVs, RestComm's own error numbers, the SRI result appended after
the original text:

    id:0000012345 sub:001 dlvrd:000 submit date:2405141230 done date:2405141230
    stat:UNDELIV err:226 text:hlr imsi:260011234567890 nnn_digits:4917000000001
    nnn_an:1 nnn_np:1

226 (MPROC_SRI_REQUEST_DROP) is the SRI's success; a MAP error gives a plain failure
receipt with RestComm's code for it.
"""

from __future__ import annotations

import time

from hlrd.smpp.constants import EsmClass
from hlrd.smpp.pdu import DeliverSm, SubmitSm
from hlrd.smpp.receipts import receipt_deliver_sm

from .scenario import Answer

# scenario status -> RestComm ErrorCode (R5 of the reference)
ERR = {
    "live": 226,  # MPROC_SRI_REQUEST_DROP: the SRI succeeded, message dropped
    "absent": 8,  # ABSENT_SUBSCRIBER
    "unknown": 1,  # UNKNOWN_SUBSCRIBER
    "barred": 5,  # CALL_BARRED
    "not_provisioned": 4,  # TELESERVICE_NOT_PROVISIONED
    "system_failure": 12,  # SYSTEM_FAILURE
}


def restcomm_sri_receipt(submit: SubmitSm, message_id: str, answer: Answer) -> DeliverSm:
    stamp = time.strftime("%y%m%d%H%M", time.gmtime())
    original = submit.short_message.decode("latin-1", "replace")[:20]
    err = ERR.get(answer.status, 40)  # HLR_REJECT_AFTER_ROUTING_INFO
    text = (
        f"id:{message_id} sub:001 dlvrd:000 submit date:{stamp} done date:{stamp} "
        f"stat:UNDELIV err:{err:03d} text:{original}"
    )
    if err == 226:
        text += f" imsi:{answer.imsi or ''} nnn_digits:{answer.msc or ''} nnn_an:1 nnn_np:1"
    mode = EsmClass.DELIVERY_RECEIPT | (submit.esm_class & 0x03)  # data_coding 0, no TLVs
    return receipt_deliver_sm(submit, text.encode("latin-1"), [], mode)
