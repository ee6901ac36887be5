"""The query service's calls to its dependencies, each behind a circuit breaker.

A dependency that keeps failing gets its breaker opened, and then costs a query microseconds
instead of a connection attempt or a timeout, until a trial call after reset_timeout succeeds.
pybreaker's decorator never trips on coroutines (it sees an un-awaited coroutine, not the
failure), so the breaker is driven explicitly around each awaited call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import pybreaker
from prometheus_client import Gauge

from ragplane.runtime.breakers import breaker_state_value
from ragplane.runtime.errors import DeadlineExceeded, ResourceExhausted, Unavailable

T = TypeVar("T")

BREAKER_STATE = Gauge(
    "ragplane_query_dependency_breaker_state",
    "Circuit breaker of each dependency of the query service: 0 closed, 1 half-open, 2 open.",
    ["dependency"],
)


class CircuitOpen(Unavailable):
    """The dependency was not called: its breaker is open after repeated failures."""


class DependencyTimedOut(DeadlineExceeded):
    """The dependency did not answer within the whole of its stage's cap.

    Only this kind of timeout counts against the dependency: running out of a short deadline
    the caller chose says nothing about its health.
    """


def _says_dependency_is_unhealthy(error: BaseException) -> bool:
    return isinstance(error, Unavailable | ResourceExhausted | DependencyTimedOut)


@contextmanager
def _blaming_slowness(timeout_s: float, cap_s: float) -> Iterator[None]:
    """A timeout counts against the dependency only when it had the stage's whole cap."""
    try:
        yield
    except DeadlineExceeded as error:
        if timeout_s >= cap_s:
            raise DependencyTimedOut(error.message) from error
        raise


class Dependency:
    def __init__(self, label: str, fail_max: int, reset_timeout_s: float) -> None:
        self.name = f"{label} service"
        self._breaker = pybreaker.CircuitBreaker(
            fail_max=fail_max,
            reset_timeout=reset_timeout_s,
            name=label,
            # pybreaker excludes an error when the callable returns True.
            exclude=[lambda error: not _says_dependency_is_unhealthy(error)],
            throw_new_error_on_trip=False,
        )
        BREAKER_STATE.labels(dependency=label).set_function(
            lambda: breaker_state_value(self._breaker)
        )

    async def call(
        self, make_call: Callable[[float], Awaitable[T]], timeout_s: float, cap_s: float
    ) -> T:
        """``make_call(timeout_s)`` through the breaker; raises CircuitOpen when it is open."""
        try:
            with self._breaker.calling(), _blaming_slowness(timeout_s, cap_s):
                return await make_call(timeout_s)
        except pybreaker.CircuitBreakerError as error:
            raise self._circuit_open() from error

    async def stream(
        self, make_stream: Callable[[float], AsyncIterator[T]], timeout_s: float, cap_s: float
    ) -> AsyncIterator[T]:
        """``make_stream(timeout_s)`` through the breaker: a stream that fails counts."""
        try:
            with self._breaker.calling(), _blaming_slowness(timeout_s, cap_s):
                async for item in make_stream(timeout_s):
                    yield item
        except pybreaker.CircuitBreakerError as error:
            raise self._circuit_open() from error

    def _circuit_open(self) -> CircuitOpen:
        return CircuitOpen(
            f"{self.name}: not called, its circuit breaker is open after "
            f"{self._breaker.fail_max} failures in a row",
            retry_after_s=self._breaker.reset_timeout,
        )


class Dependencies:
    def __init__(self, fail_max: int, reset_timeout_s: float) -> None:
        self.embedding = Dependency("embedding", fail_max, reset_timeout_s)
        self.retrieval = Dependency("retrieval", fail_max, reset_timeout_s)
        self.generation = Dependency("generation", fail_max, reset_timeout_s)
