"""The tenants' index versions (ragplane.runtime.index_versions) through the shared Redis."""

from __future__ import annotations

import structlog

from ragplane.runtime.index_versions import (
    bump_index_version,
    current_index_version,
    ensure_index_version,
)
from ragplane.runtime.redis_client import RedisDown, SharedRedis

log = structlog.get_logger(__name__)


class IndexVersions:
    def __init__(self, shared: SharedRedis) -> None:
        self._shared = shared
        # Tenants whose bump failed (Redis down during an ingest): their cached answers may be
        # stale, so this replica serves them no cached answer until a bump succeeds.
        self._unbumped: set[str] = set()

    async def current(self, tenant: str) -> int | None:
        """The tenant's version, None when it has none; RedisDown also while a bump is pending."""
        if tenant in self._unbumped:
            await self.bump(tenant)
            if tenant in self._unbumped:
                raise RedisDown("the tenant's documents changed while Redis was down")
        return await self._shared.run(lambda client: current_index_version(client, tenant))

    async def for_storing(self, tenant: str, seen: int | None) -> int | None:
        """The version to store a fresh answer under, given the one seen before answering.

        None when the documents changed meanwhile (the answer may be stale: keep it out).
        """
        if seen is not None:
            return seen if await self.current(tenant) == seen else None
        # The tenant had no version: create it, unless an ingest created one meanwhile.
        version, created = await self._shared.run(
            lambda client: ensure_index_version(client, tenant)
        )
        return version if created else None

    async def bump(self, tenant: str) -> int | None:
        """Invalidate the tenant's cached answers and return the new version.

        None when Redis is down: the bump is remembered and retried before the next lookup.
        """
        try:
            value = await self._shared.run(lambda client: bump_index_version(client, tenant))
        except RedisDown as error:
            self._unbumped.add(tenant)
            log.warning("index version not bumped; cache bypassed", tenant=tenant, error=str(error))
            return None
        self._unbumped.discard(tenant)
        return value
