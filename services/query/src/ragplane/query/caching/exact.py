"""Exact answer cache in Redis: the same normalised question, options and index version."""

from __future__ import annotations

from ragplane.query.caching.answers import CachedAnswer
from ragplane.runtime.redis_client import SharedRedis


class ExactCache:
    def __init__(self, shared: SharedRedis, ttl_s: int) -> None:
        self._shared = shared
        self._ttl_s = ttl_s

    async def get(self, key: str) -> CachedAnswer | None:
        """The cached answer under the key, or None; raises RedisDown."""
        value = await self._shared.run(lambda client: client.get(key))
        return None if value is None else CachedAnswer.from_json(value)

    async def put(self, key: str, answer: CachedAnswer, ttl_s: int | None = None) -> None:
        """``ttl_s`` None: the cache's own."""
        expiry = ttl_s or self._ttl_s
        await self._shared.run(lambda client: client.set(key, answer.to_json(), ex=expiry))
