"""How a ragplane service survives what it depends on: circuit breakers, deadlines, backoff.

One breaker wrapper for every awaited call (a dependency service, Redis, an LLM provider),
one deadline type for every request, one backoff rule for every retry. The clock is
injectable, so tests can move time instead of waiting for it.
"""

from __future__ import annotations

import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pybreaker
from prometheus_client import Gauge

from ragplane.runtime.errors import DeadlineExceeded, Unavailable

T = TypeVar("T")
Clock = Callable[[], float]

CLOSED, HALF_OPEN, OPEN = 0, 1, 2


def breaker_state_value(breaker: pybreaker.CircuitBreaker) -> int:
    """0 closed, 1 half-open, 2 open.

    pybreaker moves open -> half-open only on the next call, but once reset_timeout has passed
    the breaker lets a trial call through, which is what an operator wants to see.
    """
    state = breaker.current_state
    if state == pybreaker.STATE_CLOSED:
        return CLOSED
    if state == pybreaker.STATE_HALF_OPEN:
        return HALF_OPEN
    opened_at = breaker._state_storage.opened_at  # no public accessor in pybreaker 1.4
    if opened_at is not None and datetime.now(UTC) >= opened_at + timedelta(
        seconds=breaker.reset_timeout
    ):
        return HALF_OPEN
    return OPEN


class CircuitOpen(Unavailable):
    """The call was not made: its breaker is open after repeated failures."""


class AsyncBreaker:
    """A pybreaker circuit breaker driven around awaited calls, with its state on a gauge.

    pybreaker's decorator calls the function and inspects the result; for a coroutine function
    that is an un-awaited coroutine, so the failure happens later, outside the breaker, and it
    never trips. Here the await runs inside ``breaker.calling()`` instead. Only errors for which
    ``counts_as_failure`` is true move the breaker towards open.
    """

    def __init__(
        self,
        name: str,
        fail_max: int,
        reset_timeout_s: float,
        counts_as_failure: Callable[[BaseException], bool],
        gauge: Gauge | None = None,
        storage: pybreaker.CircuitBreakerStorage | None = None,
    ) -> None:
        self.name = name
        self.breaker = pybreaker.CircuitBreaker(
            fail_max=fail_max,
            reset_timeout=reset_timeout_s,
            name=name,
            # pybreaker excludes an error when the callable returns True.
            exclude=[lambda error: not counts_as_failure(error)],
            # Keep the call's own error when the breaker trips, so callers see why it failed.
            throw_new_error_on_trip=False,
            state_storage=storage,
        )
        if gauge is not None:
            # Computed at scrape time (see breaker_state_value).
            gauge.set_function(self.state_value)

    def state_value(self) -> int:
        return breaker_state_value(self.breaker)

    @property
    def is_open(self) -> bool:
        return self.state_value() == OPEN

    async def call(self, make_call: Callable[[], Awaitable[T]]) -> T:
        """``await make_call()`` through the breaker; raises CircuitOpen when it is open."""
        try:
            with self.breaker.calling():
                return await make_call()
        except pybreaker.CircuitBreakerError as error:
            raise self._circuit_open() from error

    async def stream(
        self, make_stream: Callable[[], AsyncGenerator[T, None]]
    ) -> AsyncGenerator[T, None]:
        """The items of ``make_stream()`` through the breaker: a stream that fails counts.

        Closing this stream closes the inner one at once (a cancelled call must stop the work
        behind it now, not when the garbage collector gets to it).
        """
        try:
            with self.breaker.calling():
                async with aclosing(make_stream()) as items:
                    async for item in items:
                        yield item
        except pybreaker.CircuitBreakerError as error:
            raise self._circuit_open() from error

    def _circuit_open(self) -> CircuitOpen:
        return CircuitOpen(
            f"{self.name}: not called, its circuit breaker is open after "
            f"{self.breaker.fail_max} failures in a row",
            retry_after_s=self.breaker.reset_timeout,
        )


class Deadline:
    """The time a request may still take, on a monotonic clock; None seconds: unbounded."""

    def __init__(self, seconds: float | None, clock: Clock = time.monotonic) -> None:
        self.total_s = seconds
        self._clock = clock
        self._at = None if seconds is None else clock() + seconds

    def seconds_left(self) -> float | None:
        """Seconds until the deadline (negative once past); None when unbounded."""
        return None if self._at is None else self._at - self._clock()

    def passed(self) -> bool:
        left = self.seconds_left()
        return left is not None and left < 0

    def allows(self, seconds: float) -> bool:
        left = self.seconds_left()
        return left is None or left >= seconds

    def require(self, stage: str) -> float:
        """Seconds left for ``stage``; raises DEADLINE_EXCEEDED when none are."""
        left = self.seconds_left()
        if left is None:
            return float("inf")
        if left <= 0:
            raise DeadlineExceeded(f"the request's deadline passed before {stage}")
        return left

    def for_stage(self, cap_s: float, reserve_s: float, essential_reserve_s: float) -> float:
        """Time a stage may take: its cap, less what the stages after it are promised.

        ``reserve_s`` is kept free when that leaves the stage any time at all; otherwise only
        ``essential_reserve_s`` is (a degraded later stage beats skipping this one).
        """
        seconds_left = self.seconds_left()
        left = cap_s + reserve_s if seconds_left is None else max(0.0, seconds_left)
        wanted = min(cap_s, left - reserve_s)
        if wanted > 0:
            return wanted
        return max(0.0, min(cap_s, left - essential_reserve_s))


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter, bounded by a server's Retry-After."""

    base_delay_s: float
    max_delay_s: float
    uniform: Callable[[float, float], float] = field(default=random.uniform)

    def delay(self, retry: int, retry_after_s: float | None = None) -> float:
        """Wait before retry number ``retry`` (0 for the first retry).

        Full jitter (uniform between 0 and the exponential cap) spreads retries of many callers
        apart; a server's Retry-After is a floor, since retrying earlier only earns another 429.
        """
        cap = min(self.max_delay_s, self.base_delay_s * (2**retry))
        jittered = self.uniform(0.0, cap)
        return max(jittered, retry_after_s) if retry_after_s is not None else jittered
