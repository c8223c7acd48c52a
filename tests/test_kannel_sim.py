"""Kannel, a gateway we did not write, binds to the simulator and gets usable DLRs.

If Kannel matches the simulator's receipts to its own submits and hands the receipt
text back intact, the HLR fields survive a real ESME, not only the ones we wrote.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from simulator.controller import Simulator
from tests.kannel_harness import (
    DLR_DELIVERED,
    DLR_FAILED,
    SMSC_ID,
    Kannel,
    KannelBinaries,
    KannelSettings,
)


# The simulator answers submit_sm with 8 uppercase hex digits ("0000000A") and writes
# the same string in the receipt text and the receipted_message_id TLV, so both ids
# are hex: 0x03. Kannel then files and matches each DLR under the id's decimal value
# (10), which also survives an SMSC that drops leading zeros or changes case in the
# receipt. Leaving msg-id-type unset matches the two strings verbatim, which works as
# well because they are identical. A mixed value is the trap: with 0x01 the receipt
# "00000010" is read as decimal 10 while its submit was filed as 16, so the DLR is
# lost (or, worse, lands on message 10); ids 1-9 read the same either way, so only a
# run with at least 16 submits would notice.
@pytest.fixture(params=[0x03, None], ids=["msg-id-type=3", "msg-id-type=unset"])
async def kannel(
    request: pytest.FixtureRequest,
    kannel_binaries: KannelBinaries,
    sim: Simulator,  # conftest: the demo scenario, in-process on 127.0.0.1
    tmp_path: Path,
) -> AsyncIterator[Kannel]:
    settings = KannelSettings(
        smpp_port=sim.smpp_port,
        system_id="hlrd",
        password="secret",
        msg_id_type=request.param,
    )
    async with Kannel(kannel_binaries, settings, tmp_path) as k:
        yield k


def receipt_id(answer: str) -> str:
    m = re.match(r"id:(\S+) ", answer)
    assert m, answer
    return m.group(1)


async def test_kannel_turns_hlr_receipts_into_dlrs(kannel: Kannel, sim: Simulator) -> None:
    await kannel.send("48600000003", ref="roaming")
    await kannel.send("48600000005", ref="absent")

    dlrs = await kannel.collect_dlrs(2)

    roaming = dlrs["roaming"]
    assert roaming.type == DLR_DELIVERED
    assert "stat:DELIVRD" in roaming.answer
    assert "roaming:yes" in roaming.answer
    assert "roaming_country:EG" in roaming.answer
    assert "serving_mccmnc:60201" in roaming.answer
    assert roaming.phone == "48600000003"
    assert roaming.smsc_id == SMSC_ID

    absent = dlrs["absent"]
    assert absent.type == DLR_FAILED
    assert "stat:UNDELIV" in absent.answer
    assert "err:027" in absent.answer
    assert absent.phone == "48600000005"

    for dlr in (roaming, absent):
        sim_id = receipt_id(dlr.answer)
        assert re.fullmatch(r"[0-9A-F]{8}", sim_id)
        # %F shows the key Kannel matched on: the decimal value, or the string as sent.
        expected = sim_id if kannel.settings.msg_id_type is None else str(int(sim_id, 16))
        assert dlr.foreign_id == expected
    assert sim.stats.binds == 1  # one transceiver bind carries both submits and receipts
    assert sim.stats.submits == 2
