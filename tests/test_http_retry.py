"""When hlrd asks an HTTP provider again, and when it must not."""

from __future__ import annotations

import pytest

from hlrd.upstream.http.retry import MAX_RETRY_AFTER_S, RetryPolicy, parse_retry_after

POLICY = RetryPolicy(attempts=3, base_delay_s=0.2, max_delay_s=2.0)
NOW = 1_790_000_000.0  # 2026-09-21T14:13:20Z


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504, None])
def test_throttling_server_errors_and_lost_connections_are_tried_again(
    status: int | None,
) -> None:
    assert POLICY.retryable(status)


@pytest.mark.parametrize("status", [400, 401, 402, 403, 404, 409, 422, 501])
def test_answers_about_the_request_itself_are_never_paid_for_twice(status: int) -> None:
    assert not POLICY.retryable(status)


def test_backoff_doubles_with_full_jitter_up_to_its_cap_and_stops_after_the_last() -> None:
    top = [POLICY.delay(a, rand=lambda: 1.0) for a in (1, 2, 3)]
    bottom = POLICY.delay(1, rand=lambda: 0.0)
    assert top == [0.2, 0.4, None]  # three attempts in all: no fourth
    assert bottom == 0.0
    assert RetryPolicy(attempts=10).delay(9, rand=lambda: 1.0) == 2.0  # capped


@pytest.mark.parametrize(
    ("header", "wait"),
    [
        ("3", 3.0),
        (" 0 ", 0.0),
        ("Mon, 21 Sep 2026 14:13:25 GMT", 5.0),
        ("Mon, 21 Sep 2026 14:13:00 GMT", 0.0),  # already past: at once
    ],
)
def test_retry_after_in_seconds_or_as_a_date_replaces_the_backoff(header: str, wait: float) -> None:
    assert parse_retry_after(header, NOW) == wait
    assert POLICY.delay(1, header, NOW, rand=lambda: 1.0) == wait


@pytest.mark.parametrize("header", ["soon", "-5", "1.5", "", "Mon, 21 Sep 2026 14:13:25"])
def test_an_unreadable_retry_after_falls_back_to_the_backoff(header: str) -> None:
    assert POLICY.delay(1, header, NOW, rand=lambda: 0.5) == 0.1


def test_a_retry_after_longer_than_a_lookup_can_wait_ends_the_retries() -> None:
    assert POLICY.delay(1, str(int(MAX_RETRY_AFTER_S) + 1), NOW) is None
    assert POLICY.delay(1, str(int(MAX_RETRY_AFTER_S)), NOW) == MAX_RETRY_AFTER_S
