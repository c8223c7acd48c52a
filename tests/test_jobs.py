"""Washing a calling list through a running daemon: upload, preview before anything
is spent, run, watch the progress, download results that agree with the API's own
checks of the same numbers."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import hmac
import io
import json
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from hlrd.compliance.policy import CallPolicy
from hlrd.jobs.csv_input import Row
from hlrd.jobs.washer import Washer
from simulator.controller import Simulator

from .child_process import Child
from .conftest import ROOT
from .daemon_harness import running_daemon

DEMO_CALLS = ROOT / "config" / "demo-calls.csv"
POLICY = CallPolicy()  # the default policy
LISTED = "48600000007"
CALLS = (
    "Imię;Nazwisko;Numer telefonu;Uwagi\r\n"
    'Anna;Nowak;+48 600 000 001;"w domu; dzwonić"\r\n'  # at home: allow
    "Jan;Kowalski;0048600000003;roaming in Egypt\r\n"  # roaming outside the EEA: block
    "Ewa;Wiśniewska;600000001;the same number again\r\n"  # a duplicate
    "Piotr;Zieliński;12;not a number\r\n"  # invalid
    f"Maria;Lewandowska;+{LISTED};on the own list\r\n"  # listed: no lookup
    "Ola;Mazur;+48600000005;phone off\r\n"  # absent: block
)


async def _events(http: aiohttp.ClientSession, job: str) -> list[dict[str, Any]]:
    """The job's progress events until it stops moving (the stream ends then)."""
    events = []
    async with http.get(f"/v1/jobs/{job}/events") as r:
        assert r.headers["Content-Type"].startswith("text/event-stream")
        async for line in r.content:
            if line.startswith(b"data: "):
                events.append(json.loads(line[6:]))
    return events


async def test_a_list_is_previewed_washed_and_downloaded(sim: Simulator) -> None:
    async with running_daemon(sim) as (_, http):
        async with http.put(f"/v1/dnc/{LISTED}", json={"reason": "complaint"}) as r:
            assert r.status == 200
        submits = sim.stats.submits
        async with http.post(
            "/v1/jobs?name=december", data=CALLS.encode(), headers={"Idempotency-Key": "k1"}
        ) as r:
            assert r.status == 201, await r.text()
            job = await r.json()
        async with http.post(
            "/v1/jobs?name=december", data=CALLS.encode(), headers={"Idempotency-Key": "k1"}
        ) as r:
            again = (r.status, (await r.json())["id"])
        previewed = await _events(http, job["id"])
        async with http.get(f"/v1/jobs/{job['id']}") as r:
            ready = await r.json()
        spent_on_preview = sim.stats.submits - submits
        async with http.post(f"/v1/jobs/{job['id']}/start") as r:
            assert r.status == 202
        progress = await _events(http, job["id"])
        async with http.get(f"/v1/jobs/{job['id']}") as r:
            done = await r.json()
        files = {}
        for name in ("annotated.csv", "clean.csv", "dnc.txt"):
            async with http.get(f"/v1/jobs/{job['id']}/files/{name}") as r:
                files[name] = await r.text()
        direct = {}
        for n in ("48600000001", "48600000003", LISTED, "48600000005"):
            async with http.get(f"/v1/check/{n}") as r:
                direct[n] = (await r.json())["decision"]
    assert again == (200, job["id"])
    assert job["layout"]["phone_column_name"] == "Numer telefonu"
    assert previewed[-1]["state"] == "ready" and spent_on_preview == 0
    preview = ready["preview"]
    assert (preview["rows"], preview["valid"], preview["duplicates"]) == (6, 5, 1)
    assert (preview["blocked_by_lists"], sum(preview["invalid"].values())) == (1, 1)
    assert preview["cached"] + preview["to_look_up"] == 3
    assert progress[-1] == {"state": "done", "rows_done": 6, "rows_total": 6, "percent": 100.0}
    rows = list(csv.reader(io.StringIO(files["annotated.csv"]), delimiter=";"))
    assert rows[0][:4] == ["Imię", "Nazwisko", "Numer telefonu", "Uwagi"]
    assert rows[1][3] == "w domu; dzwonić"  # every original column, as it was
    decisions = [r[4] for r in rows[1:]]
    assert decisions == [
        direct["48600000001"],
        direct["48600000003"],
        direct["48600000001"],
        "block",
        direct[LISTED],
        direct["48600000005"],
    ]
    assert rows[4][6] == "invalid_number:too_short" or rows[4][6].startswith("invalid_number")
    clean = list(csv.reader(io.StringIO(files["clean.csv"]), delimiter=";"))
    assert [r[0] for r in clean] == ["Imię", "Anna", "Ewa"]
    assert files["dnc.txt"].split() == ["48600000003", LISTED, "48600000005"]
    summary = done["summary"]
    assert summary["by_decision"] == {"allow": 2, "block": 3, "invalid": 1}
    assert summary["by_reason"]["listed"] == 1


RESUME_CONFIG = """
[http]
host = "127.0.0.1"
port = 0

[logging]
format = "json"
level = "INFO"

[[upstream.providers]]
name = "sim"
host = "127.0.0.1"
port = {port}
password = "secret"
binds = 1
window = {window}
tps = 400
"""
WINDOW = 16


def _big_list(rows: int) -> bytes:
    lines = ["id,phone"] + [f"{i},+4866{i:07d}" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


async def _job_of(port: int, body: bytes) -> str:
    async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
        async with http.post("/v1/jobs", data=body) as r:
            job: str = (await r.json())["id"]
        await _events(http, job)  # the preview
        async with http.post(f"/v1/jobs/{job}/start") as r:
            assert r.status == 202
    return job


async def test_a_job_killed_mid_run_resumes_with_no_row_lost_or_doubled(
    sim: Simulator, tmp_path: Path
) -> None:
    rows = 1200
    config = tmp_path / "hlrd.toml"
    config.write_text(RESUME_CONFIG.format(port=sim.smpp_port, window=WINDOW))
    paid: Counter[str] = Counter()
    assert sim.smsc is not None
    sim.smsc.submit_listeners.append(lambda number: paid.update([number]))
    first = Child("-m", "hlrd", "run", "--config", str(config))
    try:
        # In a thread: the simulator runs on this event loop and must answer the binds.
        started = await asyncio.to_thread(first.wait_for, "hlrd.started")
        port = int(started["http"].rsplit(":", 1)[1])
        await asyncio.to_thread(first.wait_for, "hlrd.ready")
        job = await _job_of(port, _big_list(rows))
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
            async with http.get(f"/v1/jobs/{job}/events") as r:
                async for line in r.content:  # kill once a few chunks are recorded
                    if line.startswith(b"data: ") and json.loads(line[6:])["rows_done"] >= 500:
                        break
        first.proc.kill()  # SIGKILL: no shutdown, no last write
        await asyncio.to_thread(first.proc.wait, 30)
    finally:
        if first.proc.poll() is None:
            first.proc.kill()
    second = Child("-m", "hlrd", "run", "--config", str(config))
    try:
        started = await asyncio.to_thread(second.wait_for, "hlrd.started")
        port = int(started["http"].rsplit(":", 1)[1])
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
            events = await _events(http, job)
            async with http.get(f"/v1/jobs/{job}/files/annotated.csv") as r:
                annotated = await r.text()
    finally:
        await asyncio.to_thread(second.stop)
    assert events[-1]["state"] == "done"
    out = list(csv.reader(io.StringIO(annotated)))
    assert [r[0] for r in out[1:]] == [str(i) for i in range(rows)]  # each row once, in order
    assert len(paid) == rows  # every number looked up...
    twice = [n for n, times in paid.items() if times > 1]
    # ...and again only if it was in flight when the process died (at most the window).
    assert len(twice) <= WINDOW, len(twice)


async def test_hlrd_wash_washes_the_demo_list_through_the_daemon(
    sim: Simulator, tmp_path: Path
) -> None:
    async with running_daemon(sim) as (daemon, http):
        config = tmp_path / "hlrd.toml"
        config.write_text(
            f'[http]\nport = {daemon.http_port}\n\n[[upstream.providers]]\nname = "s"\n'
        )
        out = tmp_path / "washed.csv"
        done = await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable,
                "-m",
                "hlrd",
                "wash",
                str(DEMO_CALLS),
                "-o",
                str(out),
                "--config",
                str(config),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        async with http.get("/v1/check/48600000003") as r:
            egypt = (await r.json())["decision"]
    assert done.returncode == 0, done.stderr
    assert "100.0%" in done.stderr and "telefon" in done.stderr  # the bar; the column found
    summary = json.loads(done.stdout)
    source = list(csv.reader(DEMO_CALLS.open(encoding="utf-8"), delimiter=";"))
    washed = list(csv.reader(out.open(encoding="utf-8"), delimiter=";"))
    assert len(washed) == len(source) and summary["rows"] == len(source) - 1
    assert [r[:6] for r in washed] == source  # every original column, in order
    by_id = {r[0]: r for r in washed[1:]}
    egypt_rows = [r for r in washed[1:] if r[5] == "roaming in Egypt"]
    assert egypt_rows and all(r[6] == egypt == "block" for r in egypt_rows)
    assert all(r[6] == "block" for r in washed[1:] if r[5] == "not a mobile number")
    assert sum(summary["by_decision"].values()) == len(by_id)


async def test_an_erasure_takes_the_persons_rows_out_of_every_jobs_files(
    sim: Simulator,
) -> None:
    erased, national = "48600000003", "600 000 003"
    async with running_daemon(sim) as (daemon, http):
        async with http.post("/v1/jobs", data=CALLS.encode()) as r:
            job = (await r.json())["id"]
        await _events(http, job)
        async with http.post(f"/v1/jobs/{job}/start") as r:
            assert r.status == 202
        await _events(http, job)
        async with http.delete(f"/v1/subjects/{erased}") as r:
            receipt = await r.json()
        files = {}
        for name in ("annotated.csv", "clean.csv", "dnc.txt"):
            async with http.get(f"/v1/jobs/{job}/files/{name}") as r:
                files[name] = await r.text()
        directory = Path(daemon.config.store.data_dir) / "jobs" / job
        on_disk = b"".join(p.read_bytes() for p in directory.iterdir() if p.is_file())
    assert receipt["removed"]["job_rows"] == 1
    rows = list(csv.reader(io.StringIO(files["annotated.csv"]), delimiter=";"))
    assert [r[1] for r in rows[1:]] == ["Nowak", "Wiśniewska", "Zieliński", "Lewandowska", "Mazur"]
    assert files["dnc.txt"].split() == ["48600000005"]  # 003 was on it before
    for spelling in (erased, "0048600000003", national):
        assert spelling.encode() not in on_disk
    assert b"Kowalski" not in on_disk  # the rest of the person's row went with it


async def test_an_erasure_reaches_a_job_that_has_not_run(sim: Simulator) -> None:
    async with running_daemon(sim) as (_, http):
        async with http.post("/v1/jobs", data=CALLS.encode()) as r:
            job = (await r.json())["id"]
        await _events(http, job)  # previewed, never started: no outputs yet
        async with http.delete("/v1/subjects/48600000003") as r:
            receipt = (r.status, await r.json())
        await _events(http, job)  # previewed again, without the row
        async with http.get(f"/v1/jobs/{job}") as r:
            preview = (await r.json())["preview"]
    assert receipt[0] == 200 and receipt[1]["removed"]["job_rows"] == 1
    assert preview["rows"] == 5


@asynccontextmanager
async def _receiver(
    receive: Callable[[web.Request], Awaitable[web.Response]],
) -> AsyncIterator[str]:
    """A webhook receiver on 127.0.0.1; its URL."""
    app = web.Application()
    app.router.add_post("/hook", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    finally:
        await runner.cleanup()


async def test_the_completion_webhook_is_signed_and_retried_until_taken(sim: Simulator) -> None:
    secret = "whsec-test"
    deliveries: list[tuple[dict[str, str], bytes]] = []
    taken = asyncio.Event()

    async def receive(request: web.Request) -> web.Response:
        deliveries.append((dict(request.headers), await request.read()))
        if len(deliveries) == 1:
            return web.Response(status=503)  # the receiver is down the first time
        taken.set()
        return web.Response(status=204)

    daemon_of = running_daemon(sim, jobs={"webhook_secret": secret})
    async with _receiver(receive) as url, daemon_of as (daemon, http):
        assert daemon.jobs is not None
        daemon.jobs.webhook_backoff_s = (0.0, 0.01)
        async with http.post(f"/v1/jobs?webhook={url}", data=CALLS.encode()) as r:
            job = (await r.json())["id"]
        async with http.post("/v1/jobs?webhook=ftp://x/y", data=CALLS.encode()) as r:
            refused = (r.status, (await r.json())["error"]["field"])
        await _events(http, job)
        async with http.post(f"/v1/jobs/{job}/start") as r:
            assert r.status == 202
        await asyncio.wait_for(taken.wait(), 30)
    assert refused == (400, "webhook")
    assert len(deliveries) == 2  # the 503, then the retry that was taken
    headers, body = deliveries[1]
    stamp = headers["X-Hlrd-Timestamp"]
    expected = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256)
    assert headers["X-Hlrd-Signature"] == "sha256=" + expected.hexdigest()
    assert headers["X-Hlrd-Attempt"] == "2"
    summary = json.loads(body)
    assert (summary["job"], summary["state"], summary["rows"]) == (job, "done", 6)


async def test_a_job_decides_a_number_once_until_the_lists_change(sim: Simulator) -> None:
    """Duplicates take the decision the job made for their number (one audit record,
    one lookup) — but a number listed while the job runs is blocked from then on."""
    calls = "name,phone\nA,+48600000001\nB,0048 600 000 001\nC,600000001\n"
    async with running_daemon(sim) as (daemon, http):
        async with http.post("/v1/jobs", data=calls.encode()) as r:
            job = await r.json()
        await _events(http, job["id"])
        async with http.post(f"/v1/jobs/{job['id']}/start") as r:
            assert r.status == 202
        await _events(http, job["id"])
        async with http.get(f"/v1/jobs/{job['id']}/files/annotated.csv") as r:
            annotated = list(csv.reader(io.StringIO(await r.text())))
        async with http.get(f"/v1/jobs/{job['id']}") as r:
            summary = (await r.json())["summary"]
        assert daemon.checker.audit is not None
        await asyncio.to_thread(daemon.checker.audit.flush)
        async with http.get("/v1/audit/numbers/+48600000001") as r:
            records = [x for x in (await r.json())["records"] if x["source"] == "job"]
        # The washer itself, between two chunks, with the number listed in between.
        assert daemon.jobs is not None
        state = daemon.jobs.get(job["id"])
        washer = Washer(daemon.checker, daemon.jobs.dir_of(job["id"]), state, POLICY)
        first = await washer._check([Row(1, ("A",), "+48600000001")])
        async with http.put("/v1/dnc/48600000001", json={"reason": "complaint"}) as r:
            assert r.status == 200
        second = await washer._check([Row(2, ("A",), "+48600000001")])
    assert [row[2:5] for row in annotated[1:]] == [["allow", "1", ""]] * 3
    assert len({row[11] for row in annotated[1:]}) == 1  # decided once: one time
    assert len(records) == 1
    assert summary["cache"] == {"lookup": 1, "duplicate": 2}  # paid once, not three times
    assert summary["by_decision"] == {"allow": 3}
    assert (first[0].call, second[0].call, second[0].never_call) == (True, False, True)
    assert "listed:dnc" in second[0].annotations[2]


async def test_a_webhook_still_owed_is_sent_after_a_restart(sim: Simulator) -> None:
    """The daemon stops while it waits to retry a refused webhook: the next start
    sends it (once taken, never again)."""
    refused, taken = asyncio.Event(), asyncio.Event()
    bodies: list[bytes] = []

    async def receive(request: web.Request) -> web.Response:
        bodies.append(await request.read())
        if not refused.is_set():
            refused.set()
            return web.Response(status=503)
        taken.set()
        return web.Response(status=200)

    jobs = {"webhook_secret": "whsec-test"}
    async with _receiver(receive) as url:
        async with running_daemon(sim, jobs=jobs) as (daemon, http):
            assert daemon.jobs is not None
            daemon.jobs.webhook_backoff_s = (0.0, 3600.0)  # the retry would come in an hour
            async with http.post(f"/v1/jobs?webhook={url}", data=CALLS.encode()) as r:
                job = (await r.json())["id"]
            await _events(http, job)
            async with http.post(f"/v1/jobs/{job}/start") as r:
                assert r.status == 202
            await asyncio.wait_for(refused.wait(), 30)
        async with running_daemon(sim, jobs=jobs) as (daemon, http):
            await asyncio.wait_for(taken.wait(), 30)
            assert daemon.jobs is not None
            await asyncio.gather(*daemon.jobs._tasks.values())  # its outcome saved
            async with http.get(f"/v1/jobs/{job}") as r:
                shown = await r.json()
        async with running_daemon(sim, jobs=jobs) as (daemon, http):
            assert daemon.jobs is not None
            pending = list(daemon.jobs._tasks.values())
    assert len(bodies) == 2 and bodies[0] == bodies[1]
    assert json.loads(bodies[1])["job"] == job
    assert shown["webhook_delivered"] is True
    assert pending == []  # delivered: not sent a third time


async def test_a_paused_job_stops_after_the_chunks_in_hand_and_resumes_without_paying_twice(
    sim: Simulator,
) -> None:
    rows = 3000
    paid: Counter[str] = Counter()
    job_id: list[str] = []
    async with running_daemon(sim) as (daemon, http):
        assert daemon.jobs is not None and sim.smsc is not None
        jobs = daemon.jobs

        def first_submit_pauses(number: str) -> None:
            if not paid:
                jobs.pause(job_id[0])  # while the first chunk's lookups are in flight
            paid.update([number])

        sim.smsc.submit_listeners.append(first_submit_pauses)
        async with http.post("/v1/jobs", data=_big_list(rows)) as r:
            job_id.append((await r.json())["id"])
        await _events(http, job_id[0])
        async with http.post(f"/v1/jobs/{job_id[0]}/start") as r:
            assert r.status == 202
        paused = (await _events(http, job_id[0]))[-1]
        async with http.get(f"/v1/jobs/{job_id[0]}/files/annotated.csv") as r:
            not_yet = r.status
        async with http.post(f"/v1/jobs/{job_id[0]}/resume") as r:
            assert r.status == 202
        done = (await _events(http, job_id[0]))[-1]
        async with http.get(f"/v1/jobs/{job_id[0]}/files/annotated.csv") as r:
            annotated = list(csv.reader(io.StringIO(await r.text())))
    assert paused["state"] == "paused"
    assert 0 < paused["rows_done"] < rows and paused["rows_done"] % 500 == 0
    assert not_yet == 409  # the files come when the job is done
    assert done["state"] == "done" and done["rows_done"] == rows
    assert [r[0] for r in annotated[1:]] == [str(i) for i in range(rows)]  # each row once
    assert len(paid) == rows and set(paid.values()) == {1}  # each number paid once
