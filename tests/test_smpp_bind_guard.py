"""Failed-bind tracking per address: lockout, its window, and the bound on memory."""

from __future__ import annotations

from hlrd.frontends.bind_guard import BindGuard, address_key


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_failure_that_reaches_the_limit_locks_out_for_the_window() -> None:
    clock = Clock()
    guard = BindGuard(max_failures=3, window_s=60, clock=clock)
    assert [guard.failed("10.0.0.1") for _ in range(3)] == [False, False, True]
    assert guard.locked("10.0.0.1")
    assert not guard.locked("10.0.0.2")
    clock.now = 59.999
    assert guard.locked("10.0.0.1")
    clock.now = 60.0
    assert not guard.locked("10.0.0.1")
    assert not guard.failed("10.0.0.1")  # the count started again after the lockout


def test_failures_older_than_the_window_are_forgotten() -> None:
    clock = Clock()
    guard = BindGuard(max_failures=3, window_s=60, clock=clock)
    guard.failed("10.0.0.1")
    clock.now = 30
    guard.failed("10.0.0.1")
    clock.now = 61  # the first has left the window
    assert not guard.failed("10.0.0.1")
    assert guard.failed("10.0.0.1")


def test_failures_while_locked_out_do_not_extend_the_lockout() -> None:
    clock = Clock()
    guard = BindGuard(max_failures=1, window_s=10, clock=clock)
    assert guard.failed("10.0.0.1")
    clock.now = 9
    assert not guard.failed("10.0.0.1")
    clock.now = 10
    assert not guard.locked("10.0.0.1")


def test_the_map_is_bounded_least_recently_failed_first() -> None:
    guard = BindGuard(max_failures=3, window_s=60, clock=Clock(), max_addresses=3)
    for i in range(10):
        guard.failed(f"10.0.0.{i}")
    assert len(guard) == 3
    assert not guard.failed("10.0.0.7")  # its second, and now the most recent
    guard.failed("10.0.0.0")
    assert guard.failed("10.0.0.7")  # its third: the first two were kept
    assert not guard.failed("10.0.0.8")  # evicted by 10.0.0.0: counted afresh


def test_ipv6_is_counted_per_64_and_mapped_ipv4_as_ipv4() -> None:
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:bbbb::2")
    assert address_key("2001:db8:1:2::1") != address_key("2001:db8:1:3::1")
    assert address_key("::ffff:10.0.0.1") == "10.0.0.1"
    assert address_key("not an address") == "not an address"
    guard = BindGuard(max_failures=2, window_s=60, clock=Clock())
    guard.failed("2001:db8::1")
    assert guard.failed("2001:db8::2")
    assert guard.locked("2001:db8::ffff")
