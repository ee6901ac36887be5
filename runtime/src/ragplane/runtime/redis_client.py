"""The one way a ragplane service connects to Redis."""

from __future__ import annotations

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff


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
