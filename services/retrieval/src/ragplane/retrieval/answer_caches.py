"""The query service's answer caches, as far as tenant changes here must invalidate them."""

from __future__ import annotations

from ragplane.runtime.errors import Unavailable
from ragplane.runtime.index_versions import bump_index_version
from ragplane.runtime.redis_client import RedisDown, SharedRedis


class AnswerCaches:
    """Bumps a tenant's index version in the shared Redis; without Redis there is nothing to do."""

    def __init__(self, redis: SharedRedis | None) -> None:
        self._redis = redis

    async def invalidate(self, tenant: str, change: str) -> None:
        """Called before the change, so that no cached answer outlives it; UNAVAILABLE if not."""
        if self._redis is None:
            return
        try:
            await self._redis.run(lambda client: bump_index_version(client, tenant))
        except RedisDown as error:
            raise Unavailable(
                f"Redis is unavailable, so the cached answers of tenant {tenant!r} cannot be "
                f"invalidated; the tenant was not {change}: try again later"
            ) from error

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.close()
