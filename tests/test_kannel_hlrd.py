"""Kannel's bearerbox as the call-center platform's ESME, bound to hlrd's SMPP server.

Kannel submits through its sendsms interface, hlrd looks the numbers up through the
simulator, and Kannel must match hlrd's receipts to its submits as DLRs: the proof
that a platform built on a gateway we did not write can switch to hlrd by changing
host, port and password.
"""

from __future__ import annotations

from pathlib import Path

from simulator.controller import Simulator

from .daemon_harness import running_daemon, with_account
from .kannel_harness import (
    DLR_DELIVERED,
    DLR_FAILED,
    Kannel,
    KannelBinaries,
    KannelSettings,
)


# hlrd's message ids are decimal digits, the same string in submit_sm_resp and in the
# receipt, so msg-id-type 0x00 (both decimal) is the setting to document.
async def test_kannel_gets_hlrd_receipts_as_dlrs(
    kannel_binaries: KannelBinaries, sim: Simulator, tmp_path: Path
) -> None:
    server = with_account(system_id="kannel", password="kpass", receipt_format="both")
    async with running_daemon(sim, smpp_server=server) as (daemon, _):
        assert daemon.smpp_server is not None
        settings = KannelSettings(
            smpp_port=daemon.smpp_server.port,
            system_id="kannel",
            password="kpass",
            msg_id_type=0x00,
        )
        async with Kannel(kannel_binaries, settings, tmp_path) as kannel:
            await kannel.send("48600000003", ref="egypt")
            await kannel.send("48600000001", ref="home")
            await kannel.send("48600000005", ref="absent")
            await kannel.send("4822123", ref="invalid")
            dlrs = await kannel.collect_dlrs(4)
        metrics = daemon.metrics.render().decode()

    egypt = dlrs["egypt"]
    assert egypt.type == DLR_DELIVERED
    assert "roaming:yes" in egypt.answer
    assert "roaming_country:EG" in egypt.answer
    home = dlrs["home"]
    assert home.type == DLR_DELIVERED
    assert "roaming:no" in home.answer
    absent = dlrs["absent"]
    assert absent.type == DLR_FAILED
    assert "err:027" in absent.answer
    assert "hlr:absent" in absent.answer
    invalid = dlrs["invalid"]
    assert invalid.type == DLR_FAILED
    assert "err:901" in invalid.answer
    assert 'hlrd_smpp_server_receipts_total{account="kannel",event="acked"} 4.0' in metrics
