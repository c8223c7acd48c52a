"""The circuit breaker's states, moved by an injected clock."""

from __future__ import annotations

from hlrd.upstream.breaker import CircuitBreaker, State


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def state(b: CircuitBreaker) -> State:
    """Read through a call: mypy would keep an assert's narrowing past the next call."""
    return b.state


def _breaker(clock: Clock) -> CircuitBreaker:
    return CircuitBreaker(
        failures=3, error_ratio=0.5, window=10, min_calls=6, cooldown_s=30.0, clock=clock
    )


def _probing(clock: Clock) -> CircuitBreaker:
    """A breaker opened by three failures, its cool-down over and its probe let through."""
    b = _breaker(clock)
    for _ in range(3):
        b.failure()
    clock.now += 30
    assert b.allow()
    return b


def test_consecutive_failures_open_it_and_it_stays_open_for_the_cool_down() -> None:
    clock = Clock()
    b = _breaker(clock)
    for _ in range(2):
        assert b.allow()
        b.failure()
    assert state(b) is State.CLOSED
    b.failure()
    assert (state(b), b.allow(), b.opened) == (State.OPEN, False, 1)
    clock.now += 29.9
    assert not b.allow()


def test_after_the_cool_down_one_probe_goes_and_its_success_closes_it() -> None:
    clock = Clock()
    b = _probing(clock)
    assert state(b) is State.HALF_OPEN and not b.allow()  # one probe at a time
    b.success()
    assert state(b) is State.CLOSED and b.allow() and b.allow()


def test_a_failed_probe_opens_it_for_another_cool_down() -> None:
    clock = Clock()
    b = _probing(clock)
    b.failure()
    assert (state(b), b.opened, b.allow()) == (State.OPEN, 2, False)
    clock.now += 30
    assert b.allow()


def test_a_probe_that_ended_without_a_verdict_lets_another_one_go() -> None:
    b = _probing(Clock())
    b.release()  # cancelled, or throttled
    assert b.allow()


def test_a_high_error_ratio_opens_it_without_failures_in_a_row() -> None:
    clock = Clock()
    b = _breaker(clock)
    for i in range(5):  # fail, ok, fail, ok, fail: never 3 in a row
        (b.failure if i % 2 == 0 else b.success)()
    assert state(b) is State.CLOSED  # 5 calls: fewer than min_calls
    b.success()
    b.failure()  # 7 calls, 4 failed
    assert state(b) is State.OPEN


def test_successes_keep_it_closed() -> None:
    b = _breaker(Clock())
    for _ in range(100):
        assert b.allow()
        b.success()
    b.failure()
    b.failure()
    assert state(b) is State.CLOSED


def test_lookups_already_sent_when_it_opened_neither_reopen_nor_close_it() -> None:
    clock = Clock()
    b = _breaker(clock)
    for _ in range(3):
        b.failure()
    clock.now += 20
    for _ in range(10):  # sixteen were in flight; they end failed, one succeeded
        b.failure()
    b.success()
    assert (state(b), b.opened) == (State.OPEN, 1)
    clock.now += 10  # the first cool-down, not restarted by the late verdicts
    assert b.allow() and state(b) is State.HALF_OPEN
