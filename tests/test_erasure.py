"""Erasure (GDPR Art. 17): what hlrd kept of a number goes, from memory and from the
store's files, and one suppression token stays so the person is never called again."""

from __future__ import annotations

import asyncio
import io
import logging
import subprocess
import sys
from pathlib import Path

import structlog

from hlrd.compliance.audit import number_keyer
from hlrd.config import parse_config
from hlrd.logging_setup import configure_logging, flush_logs
from hlrd.store.keys import NumberKeyer, load_key
from simulator.controller import Simulator

from .conftest import ROOT
from .daemon_harness import config_for, running_daemon
from .data_dirs import DATA_ENV

ERASED = "48600000003"  # roaming in Egypt: an IMSI, an MSC, a country kept with it
KEPT = "48600000002"


def _store_files(sim: Simulator) -> tuple[list[Path], NumberKeyer]:
    """The answer store's, the consent records' and the audit trail's files (each
    database with its WAL and journal)."""
    cfg = parse_config(config_for(sim), env=DATA_ENV()).store
    data = Path(cfg.data_dir)
    files = [
        p
        for pattern in ("hlrd.sqlite3*", "consent.sqlite3*", "audit/audit.sqlite3*")
        for p in data.glob(pattern)
        if p.is_file()
    ]
    return files, NumberKeyer(load_key(cfg))


CONSENT = {"channels": ["voice"], "source": "web_form", "text_version": "v1", "evidence": "f-1"}


async def test_an_erased_number_leaves_no_trace_but_its_suppression_token(
    sim: Simulator,
) -> None:
    out = io.StringIO()
    configure_logging("json", "DEBUG", out, cache=False)
    try:
        async with running_daemon(sim) as (daemon, http):
            for n in (ERASED, KEPT):
                async with http.get(f"/v1/lookup/{n}") as r:
                    assert (await r.json())["outcome"] == "ok"
                async with http.post(f"/v1/consent/{n}", json=CONSENT) as r:
                    assert (await r.json())["imsi_recorded"] is True
                async with http.get(f"/v1/check/{n}") as r:  # an audit record of each
                    assert r.status == 200
            await http.put(f"/v1/dnc/{ERASED}", json={"reason": "complaint"})
            assert daemon.store is not None
            await daemon.store.flush()
            async with http.delete(f"/v1/subjects/+{ERASED}") as r:
                receipt = await r.json()
            # Nor the memory of numbers as callers wrote them (until it is asked again).
            remembered = [m.e164 for m in daemon.service._numbers.values()]
            # While the daemon runs, its WAL is there too: no older frame may hold it.
            files, keyer = _store_files(sim)
            live = b"".join(p.read_bytes() for p in files)
            submits = sim.stats.submits
            async with http.get(f"/v1/check/{ERASED}") as r:
                check = await r.json()
            async with http.get(f"/v1/dnc/{ERASED}") as r:
                own = await r.json()
            resubmitted = sim.stats.submits - submits
            async with http.get(f"/v1/audit/numbers/{ERASED}") as r:
                audited = (await r.json())["records"]
            async with http.get(f"/v1/consent/{ERASED}") as r:
                consent = (await r.json())["records"]
            async with http.get("/v1/audit") as r:
                verdicts = [rec["verdict"] for rec in (await r.json())["records"]]
        flush_logs()
    finally:
        structlog.reset_defaults()
        for handler in list(logging.getLogger().handlers):
            logging.getLogger().removeHandler(handler)
    assert receipt == {
        "erased": True,
        "removed": {
            "cached_answers": 1,
            "own_list_entries": 1,
            "consent_records": 1,
            "consent_records_held": 0,
            "held_until": None,
            "audit_records_unlinked": 1,
            "job_rows": 0,
        },
        "suppressed": True,
    }
    # The decisions stay (the check after erasure too), unlinked from the number.
    assert audited == [] and consent == [] and verdicts == ["block", "allow", "block"]
    assert (check["decision"], check["reasons"], check["lookup"]) == ("block", ["erased"], None)
    assert resubmitted == 0 and own["listed"] is False
    assert KEPT in remembered and ERASED not in remembered
    assert any(p.name.endswith("-wal") for p in files)
    files, keyer = _store_files(sim)
    data = b"".join(p.read_bytes() for p in files)
    audit_key = number_keyer(load_key(parse_config(config_for(sim), env=DATA_ENV()).store))
    for scanned in (live, data):
        # The scan finds a kept number's keys in each file (answers, consent, audit)...
        assert scanned.count(keyer.key(KEPT)) >= 2 and audit_key(KEPT) in scanned
        assert keyer.key(ERASED) not in scanned  # ...and not the erased one's
        assert audit_key(ERASED) not in scanned
        assert ERASED.encode() not in scanned
    assert ERASED not in out.getvalue()


async def test_the_suppression_outlives_a_restart(sim: Simulator) -> None:
    async with running_daemon(sim) as (_, http):
        async with http.delete(f"/v1/subjects/{ERASED}") as r:
            assert r.status == 200
    async with running_daemon(sim) as (_, http):
        async with http.get(f"/v1/check/{ERASED}?format=digit") as r:
            digit = await r.text()
    assert digit == "1"


async def test_hlrd_erase_works_on_the_files_without_a_daemon(
    sim: Simulator, tmp_path: Path
) -> None:
    async with running_daemon(sim) as (daemon, http):
        async with http.get(f"/v1/lookup/{ERASED}") as r:
            assert r.status == 200
        assert daemon.store is not None
        await daemon.store.flush()
    config = tmp_path / "hlrd.toml"
    config.write_text('[http]\nport = 1\n\n[[upstream.providers]]\nname = "sim"\n')
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "hlrd", "erase", ERASED, "--config", str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert '"daemon": "not running"' in proc.stdout and '"cached_answers": 1' in proc.stdout
    async with running_daemon(sim) as (_, http):
        async with http.get(f"/v1/check/{ERASED}") as r:
            check = await r.json()
    assert check["reasons"] == ["erased"]
    files, keyer = _store_files(sim)
    assert keyer.key(ERASED) not in b"".join(p.read_bytes() for p in files)


async def test_an_objection_puts_the_number_on_the_own_list_for_good(sim: Simulator) -> None:
    async with running_daemon(sim) as (_, http):
        async with http.post(f"/v1/subjects/{KEPT}/objection") as r:
            objection = await r.json()
        async with http.get(f"/v1/check/{KEPT}") as r:
            check = await r.json()
    entry = objection["entry"]
    assert (entry["reason"], entry["source"], entry["expires_at"]) == (
        "objection (GDPR Art. 21)",
        "api",
        None,
    )
    assert (check["reasons"], check["lookup"]) == (["listed:dnc"], None)
