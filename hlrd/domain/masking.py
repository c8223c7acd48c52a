"""Masking of personal data for logs: MSISDNs keep their last 3 digits, IMSIs nothing."""

from __future__ import annotations


def mask_msisdn(msisdn: str) -> str:
    digits = msisdn.lstrip("+")
    return "*" * max(0, len(digits) - 3) + digits[-3:]


def mask_imsi(imsi: str | None) -> str | None:
    """Keep the MCC/MNC (network, not person); hide the subscriber part."""
    if not imsi:
        return imsi
    return imsi[:5] + "*" * (len(imsi) - 5)
