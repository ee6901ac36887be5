"""Index generation per tenant: a counter in Redis that every change of the tenant's documents
bumps. It is part of every answer cache key, so a bump invalidates the tenant's cached answers
at once, on every replica, and leaves other tenants' caches alone.

A counter that Redis lost (restart without persistence) starts again from the current time in
milliseconds, not from 0, so that it never returns to a value that semantic cache entries of
the past (kept in Weaviate) still carry.
"""

from __future__ import annotations

import time

import structlog

from ragplane.query.shared_redis import RedisDown, SharedRedis

log = structlog.get_logger(__name__)

# KEYS[1]: the counter; ARGV[1]: the start value when it is missing. Returns the value.
_CURRENT = """
local value = redis.call('GET', KEYS[1])
if value then return value end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
"""
_BUMP = """
if redis.call('EXISTS', KEYS[1]) == 1 then return tostring(redis.call('INCR', KEYS[1])) end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
"""


def generation_key(tenant: str) -> str:
    return f"ragplane:generation:{tenant}"


def _start_value() -> int:
    return int(time.time() * 1000)


class IndexGenerations:
    def __init__(self, shared: SharedRedis) -> None:
        self._shared = shared
        self._current = shared.client.register_script(_CURRENT)
        self._bump = shared.client.register_script(_BUMP)
        # Tenants whose bump failed (Redis down during an ingest): their cached answers may be
        # stale, so this replica serves them no cached answer until a bump succeeds.
        self._unbumped: set[str] = set()

    async def current(self, tenant: str) -> int:
        """The tenant's generation; raises RedisDown, also while an earlier bump is pending."""
        if tenant in self._unbumped:
            await self.bump(tenant)
            if tenant in self._unbumped:
                raise RedisDown("the tenant's documents changed while Redis was down")
        value = await self._shared.run(
            lambda _: self._current(keys=[generation_key(tenant)], args=[_start_value()])
        )
        return int(value)

    async def bump(self, tenant: str) -> int | None:
        """Invalidate the tenant's cached answers and return the new generation.

        None when Redis is down: the bump is remembered and retried before the next lookup.
        """
        try:
            value = await self._shared.run(
                lambda _: self._bump(keys=[generation_key(tenant)], args=[_start_value()])
            )
        except RedisDown as error:
            self._unbumped.add(tenant)
            log.warning(
                "index generation not bumped; cache bypassed", tenant=tenant, error=str(error)
            )
            return None
        self._unbumped.discard(tenant)
        return int(value)
