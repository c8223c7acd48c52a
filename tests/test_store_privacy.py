"""No number and no IMSI in the store's files, in any spelling a disk forensics tool
would try: ASCII, UTF-16, (T)BCD as on the wire, and as a binary integer."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from hlrd.config import StoreConfig
from hlrd.store import open_keyer, open_store

from .store_tools import T0, answer, file_names, store_config

NUMBERS = [
    "48601234567",
    "48790000123",
    "447700900123",
    "4915112345678",
    "393331234567",
    "33612345678",
    "12025550123",
    "380501234567",
]
IMSIS = ["260011234567890", "234159876543210", "262019999999999"]


def _bcd(digits: str, swapped: bool) -> bytes:
    """Two digits a byte; swapped: the low nibble first (TBCD, as in MAP and SMPP)."""
    pairs = [digits[i : i + 2] for i in range(0, len(digits) - 1, 2)]  # whole pairs only
    if swapped:
        return bytes(int(p[1]) << 4 | int(p[0]) for p in pairs)
    return bytes(int(p[0]) << 4 | int(p[1]) for p in pairs)


def spellings(digits: str) -> dict[str, bytes]:
    n = int(digits)
    size = (n.bit_length() + 7) // 8
    return {
        "ascii": digits.encode("ascii"),
        "utf-16-le": digits.encode("utf-16-le"),
        "utf-16-be": digits.encode("utf-16-be"),
        "tbcd": _bcd(digits, swapped=True),
        "bcd": _bcd(digits, swapped=False),
        "int-be": n.to_bytes(size, "big"),
        "int-le": n.to_bytes(size, "little"),
    }


def found(data_dir: Path, secrets: list[str]) -> list[str]:
    """'file: what (spelling)' for every secret found in any file of the directory
    and those below it (lists, the audit trail)."""
    hits = []
    for path in sorted(p for p in data_dir.rglob("*") if p.is_file()):
        blob = path.read_bytes()
        for secret in secrets:
            for name, pattern in spellings(secret).items():
                if pattern in blob:
                    hits.append(f"{path.name}: {secret[-3:]} ({name})")
    return hits


def cache_payload(i: int) -> bytes:
    """What the cache will store: the answer without its number, the IMSI masked."""
    imsi = IMSIS[i % len(IMSIS)]
    return json.dumps(
        {
            "status": "live",
            "zone": "EEA",
            "home": {"mcc": "260", "mnc": "01", "country": "PL"},
            "serving": {"mcc": "262", "mnc": "01", "country": "DE"},
            "imsi": imsi[:5] + "*" * 10,
            "ported": False,
            "msc": "491720*****",
        }
    ).encode()


async def test_no_number_or_imsi_reaches_the_files(tmp_path: Path) -> None:
    cfg = store_config(tmp_path)
    keyer = await open_keyer(cfg)
    store = await open_store(cfg, retention_interval_s=None)
    for round_ in range(3):  # replaced answers leave old row versions in the WAL
        for i, number in enumerate(NUMBERS):
            a = answer(checked_at=T0 + round_, payload=cache_payload(i + round_))
            store.put(dataclasses.replace(a, key=keyer.key(number)))
        await store.flush()
    assert await store.delete(keyer.key(NUMBERS[0])) == 1
    assert await store.get(keyer.key(NUMBERS[1])) is not None
    data_dir = Path(cfg.data_dir)
    assert file_names(data_dir) >= {"hlrd.sqlite3-wal", "hlrd.sqlite3-shm"}
    assert found(data_dir, NUMBERS + IMSIS) == []
    await store.close()
    assert found(data_dir, NUMBERS + IMSIS) == []


async def test_the_scan_finds_a_number_that_is_there(tmp_path: Path) -> None:
    """The scan above is worth something only if it sees what a careless payload leaks."""
    for spelling in ("ascii", "utf-16-le", "tbcd", "int-be"):
        cfg: StoreConfig = store_config(tmp_path / spelling)
        store = await open_store(cfg, retention_interval_s=None)
        leak = spellings(NUMBERS[2])[spelling]
        store.put(answer(payload=b"{..." + leak + b"...}"))
        await store.flush()
        assert any(spelling in hit for hit in found(Path(cfg.data_dir), NUMBERS))
        await store.close()
        assert any(spelling in hit for hit in found(Path(cfg.data_dir), NUMBERS))
