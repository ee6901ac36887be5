"""Which failures count against the query service's dependencies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import pytest

from ragplane.query.dependencies import Dependency, DependencyTimedOut
from ragplane.runtime.errors import DeadlineExceeded, NotFound, Unavailable
from ragplane.runtime.resilience import CircuitOpen
from ragplane.runtime.settings import BreakerSettings


def _breakers(fail_max: int) -> BreakerSettings:
    return BreakerSettings(breaker_fail_max=fail_max, breaker_reset_timeout_s=60)


async def _fail_with(error: Exception) -> None:
    await asyncio.sleep(0)
    raise error


def test_caller_mistakes_and_short_deadlines_do_not_count_against_a_dependency() -> None:
    dependency = Dependency("unit-test-b", _breakers(1))

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
    dependency = Dependency("unit-test-c", _breakers(1))

    async def broken_stream(timeout_s: float) -> AsyncGenerator[str, None]:
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
