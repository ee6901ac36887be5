"""The query service's answer caches, as far as tenant changes here must invalidate them."""

from __future__ import annotations

import redis.asyncio as redis
import structlog

from ragplane.runtime.errors import Unavailable
from ragplane.runtime.index_versions import bump_index_version

log = structlog.get_logger(__name__)


class AnswerCaches:
    """Bumps a tenant's index version in the shared Redis; without Redis there is nothing to do."""

    def __init__(self, client: redis.Redis | None) -> None:
        self._client = client

    async def invalidate(self, tenant: str, change: str) -> None:
        """Called before the change, so that no cached answer outlives it; UNAVAILABLE if not."""
        if self._client is None:
            return
        try:
            await bump_index_version(self._client, tenant)
        except (redis.RedisError, OSError) as error:
            log.warning("index version not bumped", tenant=tenant, error=str(error))
            raise Unavailable(
                f"Redis is unavailable, so the cached answers of tenant {tenant!r} cannot be "
                f"invalidated; the tenant was not {change}: try again later"
            ) from error

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
