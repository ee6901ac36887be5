"""The one way a ragplane service uses Redis: one client, behind one circuit breaker.

Caches, index versions, rate limits and spend live in Redis, and each of them is worth less
than the request it serves: when Redis fails, calls raise RedisDown at once for a while (the
breaker is open) instead of each waiting for a timeout, and the caller decides what "down"
means for it (skip the cache, fail open, refuse).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import redis.asyncio as redis
import structlog
from prometheus_client import Gauge
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from ragplane.runtime.resilience import AsyncBreaker, CircuitOpen
from ragplane.runtime.settings import RedisSettings

log = structlog.get_logger(__name__)

_T = TypeVar("_T")
_REDIS_ERRORS = (redis.RedisError, OSError)


class RedisDown(Exception):
    """Redis could not be used for this call; the message says why."""


def _is_redis_failure(error: BaseException) -> bool:
    return isinstance(error, _REDIS_ERRORS)


def connect_redis(url: str, timeout_s: float) -> redis.Redis:
    """An async client that fails within ``timeout_s`` instead of waiting on a dead Redis.

    One immediate retry replaces a connection that a Redis restart broke; redis-py's default
    (three retries with exponential backoff) would hold a request for seconds while Redis is
    down, where the caller's own fallback should answer at once.
    """
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 1),
    )


class SharedRedis:
    """A Redis client whose every operation runs through a circuit breaker."""

    def __init__(
        self, client: redis.Redis, breaker: AsyncBreaker, available: Gauge | None = None
    ) -> None:
        self.client = client
        self._breaker = breaker
        self._available = available
        if available is not None:
            available.set(1)

    @classmethod
    def connect(
        cls, name: str, settings: RedisSettings, available: Gauge | None = None
    ) -> SharedRedis:
        """The service's Redis; call only when ``settings.redis_enabled``."""
        breaker = AsyncBreaker(
            name, settings.redis_fail_max, settings.redis_retry_after_s, _is_redis_failure
        )
        client = connect_redis(settings.redis_url, settings.redis_timeout_s)
        return cls(client, breaker, available)

    async def run(self, operation: Callable[[redis.Redis], Awaitable[_T]]) -> _T:
        """Run one Redis operation; RedisDown when Redis fails or is being left alone."""
        try:
            result = await self._breaker.call(lambda: operation(self.client))
        except (*_REDIS_ERRORS, CircuitOpen) as error:
            if self._available is not None:
                self._available.set(0)
            if not isinstance(error, CircuitOpen):
                log.warning("redis call failed", redis=self._breaker.name, error=str(error))
            raise RedisDown(f"Redis is unavailable ({type(error).__name__})") from error
        if self._available is not None:
            self._available.set(1)
        return result

    async def close(self) -> None:
        await self.client.aclose()
