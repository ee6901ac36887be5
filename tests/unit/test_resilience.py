"""The shared resilience module: breakers around awaited calls, deadlines, backoff."""

from __future__ import annotations

import asyncio

import pytest

from ragplane.runtime.errors import DeadlineExceeded, Unavailable
from ragplane.runtime.resilience import OPEN, AsyncBreaker, Backoff, CircuitOpen, Deadline


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_deadline_counts_down_on_the_given_clock() -> None:
    clock = _Clock()
    deadline = Deadline(5.0, clock=clock)
    clock.now = 103.0
    assert deadline.seconds_left() == pytest.approx(2.0)
    assert deadline.allows(2.0)
    assert not deadline.allows(2.5)
    assert Deadline(None).allows(1e9)


def test_a_stage_gets_its_cap_less_what_later_stages_are_promised() -> None:
    deadline = Deadline(2.0, clock=_Clock())
    assert deadline.for_stage(1.0, 0.5, 0.1) == pytest.approx(1.0)
    assert deadline.for_stage(10.0, 0.5, 0.1) == pytest.approx(1.5)


def test_a_promise_that_leaves_a_stage_nothing_shrinks_to_the_essential_reserve() -> None:
    deadline = Deadline(2.0, clock=_Clock())
    assert deadline.for_stage(10.0, 5.0, 0.5) == pytest.approx(1.5)
    assert deadline.for_stage(10.0, 5.0, 3.0) == 0.0


def test_a_passed_deadline_has_no_time_for_any_stage() -> None:
    clock = _Clock()
    deadline = Deadline(0.01, clock=clock)
    clock.now += 0.02
    assert deadline.for_stage(1.0, 0.0, 0.0) == 0.0
    with pytest.raises(DeadlineExceeded, match="before generation"):
        deadline.require("generation")


async def _fail_with(error: Exception) -> None:
    await asyncio.sleep(0)  # the failure happens after a real suspension point
    raise error


async def test_the_breaker_opens_on_awaited_failures_and_then_skips_the_call() -> None:
    breaker = AsyncBreaker("unit-test-a", 2, 60, lambda error: True)
    calls = 0

    async def unavailable() -> None:
        nonlocal calls
        calls += 1
        await _fail_with(Unavailable("refused"))

    for _ in range(2):
        with pytest.raises(Unavailable, match="refused"):
            await breaker.call(unavailable)
    assert breaker.state_value() == OPEN
    with pytest.raises(CircuitOpen, match="circuit breaker is open") as caught:
        await breaker.call(unavailable)
    assert caught.value.retry_after_s == 60
    assert calls == 2  # the third call never reached the dependency


async def test_errors_the_rule_excludes_never_open_the_breaker() -> None:
    breaker = AsyncBreaker("unit-test-b", 1, 60, lambda error: isinstance(error, Unavailable))
    for _ in range(3):
        with pytest.raises(ValueError, match="caller's mistake"):
            await breaker.call(lambda: _fail_with(ValueError("caller's mistake")))
    assert not breaker.is_open


def test_full_jitter_stays_under_the_exponential_cap() -> None:
    seen: list[tuple[float, float]] = []

    def upper(low: float, high: float) -> float:
        seen.append((low, high))
        return high

    backoff = Backoff(base_delay_s=0.1, max_delay_s=0.5, uniform=upper)
    assert [backoff.delay(n) for n in range(4)] == pytest.approx([0.1, 0.2, 0.4, 0.5])
    assert all(low == 0.0 for low, _ in seen)


def test_retry_after_is_a_floor_for_the_wait() -> None:
    backoff = Backoff(base_delay_s=0.1, max_delay_s=0.5, uniform=lambda low, high: high)
    assert backoff.delay(0, retry_after_s=2.0) == 2.0
    assert backoff.delay(3, retry_after_s=0.01) == 0.5
