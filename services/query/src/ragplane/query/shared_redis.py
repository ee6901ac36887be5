"""The Redis every query replica shares, behind a circuit breaker and an availability gauge.

Caches, index generations, rate limits and spend all live here. When Redis fails, calls raise
RedisDown at once for a while (the breaker is open) instead of each waiting for a timeout, and
the gauge says so.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import pybreaker
import redis.asyncio as redis
import structlog

from ragplane.query import metrics
from ragplane.runtime.redis_client import connect_redis

log = structlog.get_logger(__name__)

_T = TypeVar("_T")
_REDIS_ERRORS = (redis.RedisError, OSError, pybreaker.CircuitBreakerError)


class RedisDown(Exception):
    """Redis could not be used for this call; the message says why."""


class SharedRedis:
    def __init__(self, client: redis.Redis, fail_max: int, retry_after_s: float) -> None:
        self.client = client
        self._breaker = pybreaker.CircuitBreaker(
            fail_max=fail_max, reset_timeout=retry_after_s, name="query-redis"
        )
        metrics.REDIS_AVAILABLE.set(1)

    @classmethod
    def connect(
        cls, url: str, timeout_s: float, fail_max: int, retry_after_s: float
    ) -> SharedRedis:
        return cls(connect_redis(url, timeout_s), fail_max, retry_after_s)

    async def run(self, operation: Callable[[redis.Redis], Awaitable[_T]]) -> _T:
        """Run one Redis operation; RedisDown when Redis fails or is being left alone."""
        try:
            # pybreaker's decorator cannot see a coroutine fail; drive the breaker around the await.
            with self._breaker.calling():
                result = await operation(self.client)
        except _REDIS_ERRORS as error:
            metrics.REDIS_AVAILABLE.set(0)
            if not isinstance(error, pybreaker.CircuitBreakerError):
                log.warning("redis call failed", error=str(error))
            raise RedisDown(f"Redis is unavailable ({type(error).__name__})") from error
        metrics.REDIS_AVAILABLE.set(1)
        return result

    async def close(self) -> None:
        await self.client.aclose()
