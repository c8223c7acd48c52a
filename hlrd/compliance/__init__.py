"""The compliance gate: do-not-call lists (and, in coming steps, erasure, consent,
calling hours and the audit trail): what may stop a call before anything is paid for."""
