"""Index version per tenant: a counter in Redis that every change of the tenant's documents bumps.

It is part of every answer cache key, so a bump invalidates the tenant's cached answers at once,
on every replica, and leaves other tenants' caches alone. The query service bumps it after
Ingest and DeleteDocuments; the retrieval service after DeleteTenant and DeactivateTenant (a
tenant deleted and created again must not inherit its predecessor's answers).

A counter Redis lost (restart without persistence) starts again from the current time in
milliseconds, not from 0, so that it never returns to a value that semantic cache entries of the
past (kept in Weaviate) still carry. Only tenants that exist get a counter: reading never
creates one.
"""

from __future__ import annotations

import time

import redis.asyncio as redis

KEY_PREFIX = "ragplane:index-version:"

# KEYS[1]: the counter; ARGV[1]: the start value when it is missing. Returns the new value.
_BUMP = """
if redis.call('EXISTS', KEYS[1]) == 1 then return tostring(redis.call('INCR', KEYS[1])) end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
"""
# Create the counter if it is missing; returns it and whether this call created it.
_ENSURE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX') then return {ARGV[1], 1} end
return {redis.call('GET', KEYS[1]), 0}
"""


def index_version_key(tenant: str) -> str:
    return f"{KEY_PREFIX}{tenant}"


def _start_value() -> int:
    return int(time.time() * 1000)


async def current_index_version(client: redis.Redis, tenant: str) -> int | None:
    """The tenant's index version; None when it has none yet (nothing cached can match)."""
    value = await client.get(index_version_key(tenant))
    return None if value is None else int(value)


async def ensure_index_version(client: redis.Redis, tenant: str) -> tuple[int, bool]:
    """The tenant's index version, created when missing; and whether this call created it."""
    value, created = await client.eval(_ENSURE, 1, index_version_key(tenant), _start_value())
    return int(value), bool(created)


async def bump_index_version(client: redis.Redis, tenant: str) -> int:
    """Invalidate the tenant's cached answers; returns the new version."""
    value = await client.eval(_BUMP, 1, index_version_key(tenant), _start_value())
    return int(value)
