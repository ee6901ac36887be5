"""One pybreaker circuit breaker per provider, driven explicitly around awaited calls, its state
shared by every replica through Redis and kept in local memory while Redis is down.

pybreaker's decorator calls the function and inspects the result; for a coroutine function the
result is an un-awaited coroutine, so the failure happens later, outside the breaker, and it
never trips. ``with breaker.calling(): await ...`` runs the await inside the breaker instead.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar

import pybreaker
import redis
import structlog

from ragplane.generation.metrics import BREAKER_STATE
from ragplane.generation.providers import ProviderFailure
from ragplane.runtime.breakers import breaker_state_value

log = structlog.get_logger(__name__)

Storage = Literal["shared", "local"]
T = TypeVar("T")


def counts_as_failure(error: BaseException) -> bool:
    """Only failures that say the provider is unhealthy move its breaker towards open."""
    if isinstance(error, ProviderFailure):
        return error.provider_unhealthy
    # A cancelled call (the caller went away) says nothing about the provider.
    return not isinstance(error, asyncio.CancelledError | GeneratorExit)


class SharedStateUnavailable(Exception):
    """Redis failed; deliberately not a RedisError, which pybreaker would swallow and log."""


class FailFastRedis(redis.Redis):
    """A Redis client whose failures escape pybreaker's CircuitRedisStorage.

    CircuitRedisStorage catches RedisError, logs it and answers a fixed fallback (closed, no
    failures): a replica would forget an open breaker and hammer a dead provider. Raised as
    SharedStateUnavailable instead, the failure reaches FailoverStorage, which switches to the
    replica's own memory.
    """

    def execute_command(self, *args: Any, **options: Any) -> Any:
        try:
            return super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        except (redis.RedisError, OSError) as error:
            raise SharedStateUnavailable(str(error)) from error

    def transaction(self, *args: Any, **kwargs: Any) -> Any:
        # pybreaker sets opened_at in a WATCH/MULTI transaction, which bypasses execute_command.
        try:
            return super().transaction(*args, **kwargs)
        except (redis.RedisError, OSError) as error:
            raise SharedStateUnavailable(str(error)) from error


def redis_client(url: str, timeout_s: float) -> FailFastRedis:
    # Short timeouts: breaker state is read on the request path, in the event loop.
    pool = redis.ConnectionPool.from_url(
        url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
    )
    return FailFastRedis(connection_pool=pool)


class FailoverStorage(pybreaker.CircuitBreakerStorage):
    """Breaker state in Redis (pybreaker's CircuitRedisStorage) while Redis answers, else in
    this replica's memory; Redis is tried again ``retry_s`` after it failed.

    The local state starts from the shared state last seen (an open breaker stays open) and
    then counts this replica's own failures, so a dead provider is still skipped after
    fail_max of them. Once Redis is back, the shared state applies again.
    """

    def __init__(
        self,
        provider: str,
        client: FailFastRedis,
        namespace: str,
        retry_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__("redis-or-local")
        self._provider = provider
        self._client = client
        self._namespace = f"{namespace}:{provider}"
        self._retry_s = retry_s
        self._clock = clock
        self._local = pybreaker.CircuitMemoryStorage(pybreaker.STATE_CLOSED)
        self._shared: pybreaker.CircuitRedisStorage | None = None
        # Whether the last call to Redis answered; when it did not, Redis is left alone until
        # retry_at, so that a dead Redis costs one timeout per retry_s, not one per request.
        self._redis_answered = True
        self._retry_at = 0.0
        # The shared state last read, to start the local one from: a replica that saw the
        # breaker open must not forget it because Redis went away.
        self._seen_state = pybreaker.STATE_CLOSED
        self._seen_opened_at: datetime | None = None

    @property
    def in_use(self) -> Storage:
        return "shared" if self._redis_answered else "local"

    def _use(self, operation: Callable[[pybreaker.CircuitBreakerStorage], T]) -> T:
        if self._redis_answered or self._clock() >= self._retry_at:
            try:
                result = operation(self._shared_storage())
            except SharedStateUnavailable as error:
                self._redis_failed(error)
            else:
                if not self._redis_answered:
                    log.info("breaker state shared through redis again", provider=self._provider)
                    self._redis_answered = True
                return result
        return operation(self._local)

    def _redis_failed(self, error: SharedStateUnavailable) -> None:
        if self._redis_answered:
            log.warning(
                "breaker state kept in local memory: redis is unreachable",
                provider=self._provider,
                error=str(error),
                state=self._seen_state,
                retry_in_s=self._retry_s,
            )
            self._local.state = self._seen_state
            if self._seen_opened_at is not None:
                self._local.opened_at = self._seen_opened_at
        self._redis_answered = False
        self._retry_at = self._clock() + self._retry_s
        self._shared = None  # rebuilt on return: a restarted Redis has lost the keys

    def _shared_storage(self) -> pybreaker.CircuitRedisStorage:
        if self._shared is None:
            # Its constructor writes the initial state (SETNX), so Redis must answer here.
            self._shared = pybreaker.CircuitRedisStorage(
                pybreaker.STATE_CLOSED, self._client, namespace=self._namespace
            )
        return self._shared

    @property
    def state(self) -> str:
        state = self._use(lambda storage: storage.state)
        if self._redis_answered:
            self._seen_state = state
        return state

    @state.setter
    def state(self, state: str) -> None:
        def write(storage: pybreaker.CircuitBreakerStorage) -> None:
            storage.state = state

        self._use(write)

    def increment_counter(self) -> None:
        self._use(lambda storage: storage.increment_counter())

    def reset_counter(self) -> None:
        self._use(lambda storage: storage.reset_counter())

    def increment_success_counter(self) -> None:
        self._use(lambda storage: storage.increment_success_counter())

    def reset_success_counter(self) -> None:
        self._use(lambda storage: storage.reset_success_counter())

    @property
    def counter(self) -> int:
        return self._use(lambda storage: storage.counter)

    @property
    def success_counter(self) -> int:
        return self._use(lambda storage: storage.success_counter)

    @property
    def opened_at(self) -> datetime | None:
        opened_at = self._use(lambda storage: storage.opened_at)
        if self._redis_answered:
            self._seen_opened_at = opened_at
        return opened_at

    @opened_at.setter
    def opened_at(self, now: datetime) -> None:
        def write(storage: pybreaker.CircuitBreakerStorage) -> None:
            storage.opened_at = now

        self._use(write)


def new_breaker(
    provider: str,
    fail_max: int,
    reset_timeout_s: float,
    storage: pybreaker.CircuitBreakerStorage | None = None,
) -> pybreaker.CircuitBreaker:
    """A breaker for ``provider``; in this replica's memory unless a storage is given."""
    breaker = pybreaker.CircuitBreaker(
        fail_max=fail_max,
        reset_timeout=reset_timeout_s,
        name=provider,
        # pybreaker excludes an error when the callable returns True.
        exclude=[lambda error: not counts_as_failure(error)],
        # Keep the provider's own error when the breaker trips, so callers see why it failed.
        throw_new_error_on_trip=False,
        state_storage=storage,
    )
    # Computed at scrape time: pybreaker moves open -> half-open only on the next call, but
    # once reset_timeout has passed the breaker lets a trial call through, which is what an
    # operator wants to see.
    BREAKER_STATE.labels(provider=provider).set_function(lambda: breaker_state_value(breaker))
    return breaker


@dataclass(frozen=True)
class BreakerStatus:
    state: int  # CLOSED, HALF_OPEN or OPEN
    failures: int  # failures in a row so far
    storage: Storage


def breaker_status(breaker: pybreaker.CircuitBreaker) -> BreakerStatus:
    state, failures = breaker_state_value(breaker), breaker.fail_counter
    # Asked after reading the state: the reads are what finds Redis gone, or back.
    storage = breaker._state_storage  # no public accessor in pybreaker 1.4
    in_use: Storage = storage.in_use if isinstance(storage, FailoverStorage) else "local"
    return BreakerStatus(state, failures, in_use)
