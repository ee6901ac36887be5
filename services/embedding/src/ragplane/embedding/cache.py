"""Embedding cache in Redis: key = hash(model, text), value = the float32 vector.

The cache only ever saves work: when Redis is slow or down, lookups count as errors, the texts
go to the model, and the shared Redis' circuit breaker keeps further calls off Redis until it
recovers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import cast

import numpy as np
import redis.asyncio as redis
import structlog
from numpy.typing import NDArray

from ragplane.embedding import metrics
from ragplane.runtime.redis_client import RedisDown, SharedRedis

log = structlog.get_logger(__name__)


def cache_key(model: str, text: str) -> str:
    digest = hashlib.sha256(f"{model}\x00{text}".encode()).hexdigest()
    return f"ragplane:embedding:{digest}"


class EmbeddingCache:
    def __init__(self, redis: SharedRedis, model: str, ttl_s: int) -> None:
        self._redis = redis
        self._model = model
        self._ttl_s = ttl_s

    async def get_many(self, texts: Sequence[str]) -> list[NDArray[np.float32] | None]:
        """The cached vector of each text, or None where there is none (or Redis failed)."""
        keys = [cache_key(self._model, text) for text in texts]
        try:
            values = await self._redis.run(lambda client: client.mget(keys))
        except RedisDown as error:
            metrics.CACHE_LOOKUPS.labels("error").inc(len(texts))
            log.warning("embedding cache lookup failed", error=str(error))
            return [None] * len(texts)
        vectors = [
            None if value is None else np.frombuffer(cast(bytes, value), dtype=np.float32)
            for value in values
        ]
        hits = sum(vector is not None for vector in vectors)
        metrics.CACHE_LOOKUPS.labels("hit").inc(hits)
        metrics.CACHE_LOOKUPS.labels("miss").inc(len(texts) - hits)
        return vectors

    async def put_many(self, texts: Sequence[str], vectors: Sequence[NDArray[np.float32]]) -> None:
        async def store(client: redis.Redis) -> None:
            async with client.pipeline(transaction=False) as pipe:
                for text, vector in zip(texts, vectors, strict=True):
                    value = np.asarray(vector, dtype=np.float32).tobytes()
                    pipe.set(cache_key(self._model, text), value, ex=self._ttl_s)
                await pipe.execute()

        try:
            await self._redis.run(store)
        except RedisDown as error:
            log.warning("embedding cache store failed", error=str(error))

    async def close(self) -> None:
        await self._redis.close()
