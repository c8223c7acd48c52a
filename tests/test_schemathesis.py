"""schemathesis against a live daemon bound to the simulator, as CI's contract check.

The `st` CLI runs as a child process against what the daemon serves at
/openapi.json, for every operation: the parameters' examples, then generated
requests (positive and negative: bad numbers, bad parameters, odd headers), at most
MAX_EXAMPLES per operation and phase, from a fixed seed so a failure replays. Every
answer must fit the document: no 5xx, a documented status and media type, a body
that validates, and the documented headers. Once without tokens and once with tokens
configured (then also: without the token every /v1 operation answers 401).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from simulator.controller import Simulator

from .daemon_harness import running_daemon

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
)
MAX_EXAMPLES = 50  # per operation and phase; the run with tokens, about auth, takes fewer
SEED = 20261128
TOKEN = "tok-schemathesis-Qv"
RUN_TIMEOUT_S = 240.0  # a pass takes ~15 s on 2 busy cores


class Run:
    """One `st run`: its exit code, its output, and its JUnit report by operation."""

    def __init__(self, code: int, output: str, report: Path, seconds: float) -> None:
        self.code = code
        self.output = output
        self.seconds = seconds
        self.cases: dict[str, list[str]] = {}  # operation -> problems (failure, error, skip)
        if report.exists():
            for case in ET.parse(report).iter("testcase"):
                self.cases[case.attrib["name"]] = [child.tag for child in case]


async def schemathesis(
    spec: Path,
    base_url: str,
    workdir: Path,
    *options: str,
    checks: tuple[str, ...] = CHECKS,
    max_examples: int = MAX_EXAMPLES,
) -> Run:
    report = workdir / "junit.xml"
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        str(spec),
        "--url",
        base_url,
        "--checks",
        ",".join(checks),
        "--max-examples",
        str(max_examples),
        "--seed",
        str(SEED),
        "--generation-database",
        "none",  # nothing kept between runs: every run is the seed's
        "--workers",
        "1",
        "--request-timeout",
        "20",
        "--no-color",
        "--report",
        "junit",
        "--report-junit-path",
        str(report),
        *options,
    ]
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *command,
        cwd=workdir,  # its .hypothesis and report directories go there
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_TELEMETRY": "false"},
    )
    try:
        async with asyncio.timeout(RUN_TIMEOUT_S):
            out, _ = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return Run(proc.returncode, out.decode(errors="replace"), report, time.monotonic() - started)


def _operations(spec: dict[str, object]) -> set[str]:
    paths = spec["paths"]
    assert isinstance(paths, dict)
    return {f"{method.upper()} {path}" for path, item in paths.items() for method in item}


@pytest.mark.parametrize("tokens", [False, True], ids=["open", "with_tokens"])
async def test_schemathesis_finds_no_answer_outside_the_document(
    sim: Simulator, tmp_path: Path, tokens: bool
) -> None:
    http = {"auth_tokens": [TOKEN]} if tokens else {}
    async with running_daemon(sim, http=http) as (daemon, client):
        async with client.get("/openapi.json") as r:
            served = await r.read()
        spec_file = tmp_path / "openapi.json"
        spec_file.write_bytes(served)  # what the daemon serves, not the source tree's
        # With tokens the point is auth: the coverage phase's boundary cases ran open.
        options = (
            ["--header", f"Authorization: Bearer {TOKEN}", "--phases", "examples,fuzzing"]
            if tokens
            else []
        )
        checks = (*CHECKS, "ignored_auth") if tokens else CHECKS
        run = await schemathesis(
            spec_file,
            f"http://127.0.0.1:{daemon.http_port}",
            tmp_path,
            *options,
            checks=checks,
            max_examples=20 if tokens else MAX_EXAMPLES,
        )
    print(f"schemathesis: {run.seconds:.1f} s")
    assert run.code == 0, run.output[-6000:]
    # Every operation was run, and none failed, errored or was skipped.
    # (Stateful tests: one case more, the sequences schemathesis follows along links.)
    assert set(run.cases) - {"Stateful tests"} == _operations(json.loads(served)), run.output[
        -3000:
    ]
    assert {op: problems for op, problems in run.cases.items() if problems} == {}
    counts = re.search(r"(\d+) generated, (\d+) passed", run.output)
    assert counts is not None, run.output[-3000:]
    assert int(counts[1]) == int(counts[2]) > 10 * len(run.cases)


async def test_a_schemathesis_run_fails_on_an_answer_the_document_does_not_allow(
    sim: Simulator, tmp_path: Path
) -> None:
    """The check above can fail: against a document that says /healthz answers
    `{"status": "fine"}`, the daemon's real `{"status": "ok"}` is reported."""
    async with running_daemon(sim) as (daemon, client):
        async with client.get("/openapi.json") as r:
            spec = await r.json()
        spec["components"]["schemas"]["Health"]["properties"]["status"] = {"const": "fine"}
        spec_file = tmp_path / "openapi.json"
        spec_file.write_text(json.dumps(spec))
        run = await schemathesis(
            spec_file,
            f"http://127.0.0.1:{daemon.http_port}",
            tmp_path,
            "--include-operation-id",
            "healthz",
            "--phases",
            "coverage",
        )
    assert run.code != 0, run.output[-3000:]
    assert "Response violates schema" in run.output, run.output[-3000:]
    assert run.cases == {"GET /healthz": ["failure"]}
