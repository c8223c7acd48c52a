"""Every log line is masked and bounded, whoever writes it; peers get a log budget."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog
from structlog.testing import capture_logs

from hlrd import logging_setup
from hlrd.frontends.conn_limits import ConnectionLimiter
from hlrd.log_budget import LogBudget
from hlrd.logging_setup import MAX_PENDING_LINES, configure_logging, log_info

NUMBER = "48600000003"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)


def _lines(out: io.StringIO) -> list[dict[str, object]]:
    for handler in logging.getLogger().handlers:
        handler.flush()
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_numbers_anywhere_in_a_line_are_masked_and_lines_are_bounded() -> None:
    out = io.StringIO()
    configure_logging("json", "INFO", out, max_line_bytes=512, cache=False)
    log = structlog.get_logger("t")
    log.info("x", error=f"bad number +48 600-000-003 in {NUMBER}", items=[NUMBER])
    log.info("y", blob="z" * 100_000)  # a peer's input echoed in a value
    log.info("w", **{f"k{i}": "v" * 200 for i in range(20)})  # many long values
    try:
        raise ValueError(f"cannot parse {NUMBER}")
    except ValueError:
        log.exception("boom")
    # aiohttp and asyncio log through the standard library
    logging.getLogger("aiohttp.server").error("Error handling request /v1/check/%s", NUMBER)
    text = out.getvalue()
    lines = _lines(out)
    assert NUMBER not in text
    assert "+48 600-000-003" not in text
    assert lines[0]["error"] == "bad number ********003 in ********003"
    assert all(len(line) <= 512 for line in text.splitlines())
    assert lines[2]["truncated"]  # too long as a whole: cut to what identifies it
    assert "ValueError: cannot parse ********003" in str(lines[3]["exception"])
    assert lines[4]["logger"] == "aiohttp.server"
    assert lines[4]["event"] == "Error handling request /v1/check/********003"


def test_ids_we_generate_are_left_readable() -> None:
    out = io.StringIO()
    configure_logging("json", "INFO", out, cache=False)
    structlog.get_logger("t").info(
        "lookup.done", lookup_id="1234567890abcdef", message_id="1795464740000001"
    )
    structlog.get_logger("t").info(
        "lookup.joined", lookup_id="0123456789abcdef", joined_lookup_id="1234567890abcdef"
    )
    line, joined = _lines(out)
    assert line["lookup_id"] == "1234567890abcdef"
    assert line["message_id"] == "1795464740000001"
    assert joined["joined_lookup_id"] == "1234567890abcdef"


def test_the_per_lookup_fast_path_writes_what_structlog_would() -> None:
    """lookup.done skips structlog's machinery in production; the line must not change:
    same fields, masked, bounded, and a test's capture still sees it."""
    # The cheap "still configured as we left it?" check reads structlog's own config.
    assert hasattr(logging_setup._STRUCTLOG_CONFIG, "default_processors")
    out = io.StringIO()
    configure_logging("json", "INFO", out, max_line_bytes=512, cache=False)
    log = structlog.get_logger("t")

    def fields() -> dict[str, object]:
        return {"lookup_id": "1234567890abcdef", "request_id": f"crm-{NUMBER}", "age_s": 3.5}

    log_info(log, "lookup.done", fields())
    log.info("lookup.done", **fields())
    log_info(log, "lookup.done", {f"k{i}": "v" * 200 for i in range(5)})
    fast, slow, long = _lines(out)
    assert fast.pop("timestamp") and slow.pop("timestamp")
    assert fast == slow
    assert fast["request_id"] == "crm-********003"
    assert long["truncated"] and NUMBER not in out.getvalue()
    with capture_logs() as captured:
        log_info(log, "lookup.done", fields())
    assert [e["event"] for e in captured] == ["lookup.done"]
    assert len(_lines(out)) == 3  # captured, not written


def test_a_log_budget_allows_a_burst_then_reports_what_it_suppressed() -> None:
    now = [0.0]
    budget = LogBudget(burst=2, interval_s=10.0, clock=lambda: now[0])
    assert [budget.take() for _ in range(5)] == [0, 0, None, None, None]
    now[0] = 10.0
    assert budget.take() == 3  # the next line says how many were not written
    assert budget.take() == 0


def test_connection_limiter_caps_total_and_per_address() -> None:
    refused: list[str] = []
    limiter = ConnectionLimiter(max_total=3, max_per_ip=2, on_refuse=refused.append)
    assert limiter.admit("10.0.0.1") is None
    assert limiter.admit("10.0.0.1") is None
    assert limiter.admit("10.0.0.1") == "per_ip"
    assert limiter.admit("10.0.0.2") is None
    assert limiter.admit("10.0.0.3") == "total"
    limiter.release("10.0.0.1")
    assert limiter.admit("10.0.0.3") is None
    limiter.release("10.0.0.9")  # never admitted: no effect
    assert limiter.total == 3
    assert refused == ["per_ip", "total"]


def test_lines_logged_on_a_loop_are_batched_yet_bounded_and_never_stranded() -> None:
    """A loop's lines wait for one write (at most MAX_PENDING_LINES of them); a loop
    that closes before the write leaves them to the next line, not to exit."""
    out = io.StringIO()
    configure_logging("json", "INFO", out, cache=False)
    log = structlog.get_logger("t")

    async def burst(n: int) -> int:
        for i in range(n):
            log_info(log, "lookup.done", {"i": i})
        return len(out.getvalue().splitlines())

    assert asyncio.run(burst(3)) == 0  # pending: one write later, not three now
    assert asyncio.run(burst(MAX_PENDING_LINES)) >= MAX_PENDING_LINES  # a burst goes out
    written = len(out.getvalue().splitlines())
    log.info("outside any loop")  # written at once, with what the closed loop left
    assert len(out.getvalue().splitlines()) == MAX_PENDING_LINES + 3 + 1 > written
    assert [line["i"] for line in _lines(out)[:3]] == [0, 1, 2]  # in order
