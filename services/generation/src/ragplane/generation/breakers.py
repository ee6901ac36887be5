"""One circuit breaker per provider (ragplane.runtime.resilience.AsyncBreaker), its state
shared by every replica through Redis and kept in local memory while Redis is down."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import pybreaker
import redis.asyncio as aioredis
import structlog

from ragplane.generation.metrics import BREAKER_STATE
from ragplane.generation.providers import ProviderFailure
from ragplane.runtime.redis_client import RedisDown, SharedRedis
from ragplane.runtime.resilience import AsyncBreaker

log = structlog.get_logger(__name__)

Storage = Literal["shared", "local"]


def counts_as_failure(error: BaseException) -> bool:
    """Only failures that say the provider is unhealthy move its breaker towards open."""
    if isinstance(error, ProviderFailure):
        return error.provider_unhealthy
    # A cancelled call (the caller went away) says nothing about the provider.
    return not isinstance(error, asyncio.CancelledError | GeneratorExit)


class SharedBreakerStorage(pybreaker.CircuitBreakerStorage):
    """A provider breaker's state, shared by the replicas through Redis, with no Redis call on
    the request path.

    pybreaker reads and writes its storage synchronously, on the event loop; here those reads
    and writes touch only this replica's memory. ``sync`` (run in the background every
    breaker_sync_interval_s) pushes what happened here to Redis (failures are added, a state
    change or a reset overwrites) and takes back what all replicas did. While Redis is down the
    replica counts in its own memory, from the shared state it last saw (an open breaker stays
    open); once Redis answers again, the shared state applies and what was counted alone is
    dropped (a restarted Redis has lost the keys).
    """

    def __init__(self, provider: str, redis: SharedRedis, namespace: str) -> None:
        super().__init__("redis-snapshot")
        self._redis = redis
        self._key = f"{namespace}:{provider}"
        self._local = pybreaker.CircuitMemoryStorage(pybreaker.STATE_CLOSED)
        self.in_use: Storage = "local"
        # Changes made here since the last sync, to push.
        self._failures = 0
        self._counter_reset = False
        self._state_written = False

    async def sync(self) -> None:
        failures, reset, written = self._failures, self._counter_reset, self._state_written
        self._failures, self._counter_reset, self._state_written = 0, False, False
        state, opened_at = self._local.state, self._local.opened_at
        if self.in_use == "local":
            failures, reset, written = 0, False, False  # counted alone: not pushed
        try:
            shared = await self._redis.run(
                lambda client: self._exchange(client, failures, reset, written, state, opened_at)
            )
        except RedisDown as error:
            if self.in_use == "shared":
                log.warning(
                    "breaker state kept in local memory: redis is unreachable",
                    breaker=self._key,
                    error=str(error),
                )
            self.in_use = "local"
            return
        if self.in_use == "local":
            log.info("breaker state shared through redis", breaker=self._key)
        self.in_use = "shared"
        self._adopt(*shared)

    async def _exchange(
        self,
        client: aioredis.Redis,
        failures: int,
        reset: bool,
        written: bool,
        state: str,
        opened_at: datetime | None,
    ) -> tuple[bytes | None, bytes | None, bytes | None]:
        async with client.pipeline(transaction=True) as pipe:
            if reset:
                pipe.set(f"{self._key}:counter", 0)
            if failures:
                pipe.incrby(f"{self._key}:counter", failures)
            if written:
                pipe.set(f"{self._key}:state", state)
                stamp = "" if opened_at is None else str(opened_at.timestamp())
                pipe.set(f"{self._key}:opened_at", stamp)
            pipe.mget(f"{self._key}:state", f"{self._key}:counter", f"{self._key}:opened_at")
            replies = await pipe.execute()
        shared_state, counter, stamp = replies[-1]
        return shared_state, counter, stamp

    def _adopt(self, state: bytes | None, counter: bytes | None, stamp: bytes | None) -> None:
        """Take the shared state, keeping what happened here while the exchange was in flight."""
        if not self._state_written:
            self._local.state = state.decode() if state else pybreaker.STATE_CLOSED
            if stamp:
                self._local.opened_at = datetime.fromtimestamp(float(stamp), UTC)
        if not self._counter_reset:
            self._local.reset_counter()
            for _ in range(int(counter or 0) + self._failures):
                self._local.increment_counter()

    @property
    def state(self) -> str:
        return str(self._local.state)

    @state.setter
    def state(self, state: str) -> None:
        self._local.state = state
        self._state_written = True

    def increment_counter(self) -> None:
        self._local.increment_counter()
        self._failures += 1

    def reset_counter(self) -> None:
        self._local.reset_counter()
        self._failures = 0
        self._counter_reset = True

    def increment_success_counter(self) -> None:
        self._local.increment_success_counter()

    def reset_success_counter(self) -> None:
        self._local.reset_success_counter()

    @property
    def counter(self) -> int:
        return int(self._local.counter)

    @property
    def success_counter(self) -> int:
        return int(self._local.success_counter)

    @property
    def opened_at(self) -> datetime | None:
        return self._local.opened_at

    @opened_at.setter
    def opened_at(self, now: datetime) -> None:
        self._local.opened_at = now
        self._state_written = True


def new_breaker(
    provider: str,
    fail_max: int,
    reset_timeout_s: float,
    storage: pybreaker.CircuitBreakerStorage | None = None,
) -> AsyncBreaker:
    """A breaker for ``provider``; in this replica's memory unless a storage is given."""
    return AsyncBreaker(
        provider,
        fail_max,
        reset_timeout_s,
        counts_as_failure,
        gauge=BREAKER_STATE.labels(provider=provider),
        storage=storage,
    )


@dataclass(frozen=True)
class BreakerStatus:
    state: int  # CLOSED, HALF_OPEN or OPEN
    failures: int  # failures in a row so far
    storage: Storage


def breaker_status(breaker: AsyncBreaker) -> BreakerStatus:
    state, failures = breaker.state_value(), breaker.breaker.fail_counter
    storage = breaker.breaker._state_storage  # no public accessor in pybreaker 1.4
    in_use: Storage = storage.in_use if isinstance(storage, SharedBreakerStorage) else "local"
    return BreakerStatus(state, failures, in_use)
