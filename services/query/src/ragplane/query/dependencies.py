"""The query service's calls to the services it depends on, each behind a circuit breaker.

A dependency that keeps failing gets its breaker opened, and then costs a query microseconds
instead of a connection attempt or a timeout, until a trial call after the reset timeout
succeeds. Only failures that say the dependency is unhealthy count: running out of a short
deadline the caller chose says nothing about its health.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator, Sequence
from contextlib import aclosing, contextmanager
from typing import TypeVar

from ragplane.query.backends import Backends
from ragplane.query.metrics import DEPENDENCY_BREAKER_STATE
from ragplane.runtime.errors import DeadlineExceeded, ResourceExhausted, Unavailable
from ragplane.runtime.resilience import AsyncBreaker
from ragplane.runtime.settings import BreakerSettings

T = TypeVar("T")


class DependencyTimedOut(DeadlineExceeded):
    """The dependency did not answer within the whole of its stage's cap."""


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
    def __init__(self, label: str, settings: BreakerSettings) -> None:
        self.name = f"{label} service"
        self._breaker = AsyncBreaker(
            self.name,
            settings.breaker_fail_max,
            settings.breaker_reset_timeout_s,
            _says_dependency_is_unhealthy,
            gauge=DEPENDENCY_BREAKER_STATE.labels(dependency=label),
        )

    async def call(
        self, make_call: Callable[[float], Awaitable[T]], timeout_s: float, cap_s: float
    ) -> T:
        """``make_call(timeout_s)`` through the breaker; raises CircuitOpen when it is open."""

        async def timed() -> T:
            with _blaming_slowness(timeout_s, cap_s):
                return await make_call(timeout_s)

        return await self._breaker.call(timed)

    async def stream(
        self,
        make_stream: Callable[[float], AsyncGenerator[T, None]],
        timeout_s: float,
        cap_s: float,
    ) -> AsyncGenerator[T, None]:
        """``make_stream(timeout_s)`` through the breaker: a stream that fails counts."""

        async def timed() -> AsyncGenerator[T, None]:
            with _blaming_slowness(timeout_s, cap_s):
                async with aclosing(make_stream(timeout_s)) as items:
                    async for item in items:
                        yield item

        async with aclosing(self._breaker.stream(timed)) as items:
            async for item in items:
                yield item


class Dependencies:
    """The three dependencies, and the one embedding call both the pipeline and the semantic
    cache make (same cap, same breaker)."""

    def __init__(
        self, backends: Backends, settings: BreakerSettings, embed_timeout_s: float
    ) -> None:
        self.backends = backends
        self.embedding = Dependency("embedding", settings)
        self.retrieval = Dependency("retrieval", settings)
        self.generation = Dependency("generation", settings)
        self._embed_timeout_s = embed_timeout_s

    async def embed(self, texts: Sequence[str], timeout_s: float) -> list[list[float]]:
        """Vectors of ``texts`` within ``timeout_s``, never more than the embedding stage's cap:
        a slow or dead embedding service must not spend a query's deadline."""
        cap_s = self._embed_timeout_s
        return await self.embedding.call(
            lambda t: self.backends.embed(texts, t), min(timeout_s, cap_s), cap_s
        )
