"""Stage budgets and the circuit breakers on the query service's dependencies."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from ragplane.query.budget import Budget
from ragplane.query.dependencies import CircuitOpen, Dependency, DependencyTimedOut
from ragplane.runtime.errors import DeadlineExceeded, NotFound, Unavailable


def test_a_stage_gets_its_cap_less_what_later_stages_are_promised() -> None:
    budget = Budget(2.0)
    assert budget.for_stage(1.0, 0.5, 0.1) == pytest.approx(1.0, abs=0.01)
    assert budget.for_stage(10.0, 0.5, 0.1) == pytest.approx(1.5, abs=0.01)


def test_a_promise_that_leaves_a_stage_nothing_shrinks_to_the_essential_reserve() -> None:
    budget = Budget(2.0)
    assert budget.for_stage(10.0, 5.0, 0.5) == pytest.approx(1.5, abs=0.01)
    assert budget.for_stage(10.0, 5.0, 3.0) == 0.0


def test_an_expired_budget_has_no_time_for_any_stage() -> None:
    budget = Budget(0.01)
    time.sleep(0.02)
    assert budget.left_s() == 0.0
    with pytest.raises(DeadlineExceeded, match="before generation"):
        budget.remaining("generation")


async def _fail_with(error: Exception) -> None:
    await asyncio.sleep(0)
    raise error


def test_the_breaker_opens_on_awaited_failures_and_then_skips_the_call() -> None:
    dependency = Dependency("unit-test-a", fail_max=2, reset_timeout_s=60)
    calls = 0

    async def unavailable(timeout_s: float) -> None:
        nonlocal calls
        calls += 1
        await _fail_with(Unavailable("refused"))

    async def scenario() -> None:
        for _ in range(2):
            with pytest.raises(Unavailable, match="refused"):
                await dependency.call(unavailable, 1.0, 1.0)
        with pytest.raises(CircuitOpen, match="circuit breaker is open") as caught:
            await dependency.call(unavailable, 1.0, 1.0)
        assert caught.value.retry_after_s == 60

    asyncio.run(scenario())
    assert calls == 2  # the third call never reached the dependency


def test_caller_mistakes_and_short_deadlines_do_not_count_against_a_dependency() -> None:
    dependency = Dependency("unit-test-b", fail_max=1, reset_timeout_s=60)

    async def not_found(timeout_s: float) -> None:
        await _fail_with(NotFound("no such tenant"))

    async def timed_out(timeout_s: float) -> None:
        await _fail_with(DeadlineExceeded("deadline"))

    async def scenario() -> None:
        with pytest.raises(NotFound):
            await dependency.call(not_found, 1.0, 1.0)
        # Given less than its cap (the caller's deadline was short): not its fault.
        with pytest.raises(DeadlineExceeded) as caught:
            await dependency.call(timed_out, 0.2, 1.0)
        assert not isinstance(caught.value, DependencyTimedOut)
        # Given its whole cap and still too slow: counted, and the breaker opens.
        with pytest.raises(DependencyTimedOut):
            await dependency.call(timed_out, 1.0, 1.0)
        with pytest.raises(CircuitOpen):
            await dependency.call(timed_out, 1.0, 1.0)

    asyncio.run(scenario())


def test_a_stream_that_fails_counts_like_a_call() -> None:
    dependency = Dependency("unit-test-c", fail_max=1, reset_timeout_s=60)

    async def broken_stream(timeout_s: float) -> AsyncIterator[str]:
        yield "first"
        raise Unavailable("cut")

    received: list[str] = []

    async def consume() -> None:
        async for item in dependency.stream(broken_stream, 1.0, 1.0):
            received.append(item)

    with pytest.raises(Unavailable, match="cut"):
        asyncio.run(consume())
    with pytest.raises(CircuitOpen):
        asyncio.run(consume())
    assert received == ["first"]
