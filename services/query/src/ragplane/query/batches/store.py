"""Batches and their results in Redis, kept ``result_ttl_s`` after their last activity.

Per batch: a hash of what it is and its running totals, a hash of results by question index,
and the set of questions being answered. A result is written once (HSETNX) together with
the totals it adds to, in one script: a question answered twice (its worker died after
answering, before acknowledging) is counted and charged once.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence

import redis.asyncio as redis

from ragplane.query.batches.model import (
    BatchItem,
    BatchStatus,
    ItemResult,
    ItemStatus,
    Progress,
    Work,
)
from ragplane.query.batches.queue import BatchQueue
from ragplane.runtime.redis_client import SharedRedis

# KEYS: results, batch, running. ARGV: index, result JSON, counter (done|failed), cost,
# interactive cost, TTL (s). Returns 1 when written, 0 when the question had a result already.
_RECORD = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  redis.call('SREM', KEYS[3], ARGV[1])
  return 0
end
redis.call('HINCRBY', KEYS[2], ARGV[3], 1)
redis.call('HINCRBYFLOAT', KEYS[2], 'cost_usd', ARGV[4])
redis.call('HINCRBYFLOAT', KEYS[2], 'interactive_usd', ARGV[5])
redis.call('SREM', KEYS[3], ARGV[1])
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ARGV[6]) end
return 1
"""


def batch_key(batch_id: str) -> str:
    return f"ragplane:batch:{batch_id}"


def _results_key(batch_id: str) -> str:
    return f"{batch_key(batch_id)}:results"


def _running_key(batch_id: str) -> str:
    return f"{batch_key(batch_id)}:running"


def _text(value: bytes | str | None) -> str:
    return value.decode() if isinstance(value, bytes) else value or ""


class BatchStore:
    def __init__(self, shared: SharedRedis, ttl_s: int) -> None:
        self._shared = shared
        self._ttl_s = ttl_s
        self._record = shared.client.register_script(_RECORD)

    async def submit(self, tenant: str, work: Sequence[Work]) -> str:
        """Create the batch and queue its items in one transaction; its id."""
        batch_id = uuid.uuid4().hex
        items = [BatchItem(batch_id, tenant, index, w) for index, w in enumerate(work)]

        async def create(client: redis.Redis) -> None:
            async with client.pipeline(transaction=True) as pipe:
                key = batch_key(batch_id)
                pipe.hset(
                    key,
                    mapping={"tenant": tenant, "total": len(items), "created_at": time.time()},
                )
                pipe.expire(key, self._ttl_s)
                BatchQueue.add_in(pipe, items)
                await pipe.execute()

        await self._shared.run(create)
        return batch_id

    async def tenant_of(self, batch_id: str) -> str | None:
        """The batch's tenant; None when there is no such batch (or it expired)."""
        value = await self._shared.run(lambda c: c.hget(batch_key(batch_id), "tenant"))
        return _text(value) or None

    async def cancelled(self, batch_id: str) -> bool:
        """Cancelled, or gone (expired): either way, nothing more to answer."""
        fields = await self._shared.run(
            lambda c: c.hmget(batch_key(batch_id), ["tenant", "cancelled_at"])
        )
        return fields[0] is None or fields[1] is not None

    async def answered(self, item: BatchItem) -> bool:
        return bool(
            await self._shared.run(
                lambda c: c.hexists(_results_key(item.batch_id), str(item.index))
            )
        )

    async def started(self, item: BatchItem) -> None:
        async def mark(client: redis.Redis) -> None:
            async with client.pipeline(transaction=True) as pipe:
                pipe.sadd(_running_key(item.batch_id), str(item.index))
                pipe.expire(_running_key(item.batch_id), self._ttl_s)
                pipe.hsetnx(batch_key(item.batch_id), "started_at", time.time())
                await pipe.execute()

        await self._shared.run(mark)

    async def record(self, batch_id: str, result: ItemResult) -> bool:
        """Store the result unless the question has one; whether this call stored it."""
        counter = "done" if result.status is ItemStatus.DONE else "failed"
        keys = [_results_key(batch_id), batch_key(batch_id), _running_key(batch_id)]
        args: list[str | int | float] = [
            result.index,
            result.to_json(),
            counter,
            result.cost_usd,
            result.interactive_cost_usd,
            self._ttl_s,
        ]
        written = await self._shared.run(lambda _: self._record(keys=keys, args=args))
        return bool(written)

    async def pause(self, batch_id: str, reason: str) -> None:
        await self._shared.run(lambda c: c.hset(batch_key(batch_id), "paused_reason", reason))

    async def resume(self, batch_id: str) -> None:
        await self._shared.run(lambda c: c.hdel(batch_key(batch_id), "paused_reason"))

    async def cancel(self, batch_id: str) -> None:
        await self._shared.run(lambda c: c.hsetnx(batch_key(batch_id), "cancelled_at", time.time()))

    async def status(self, batch_id: str, with_results: bool) -> BatchStatus | None:
        async def read(client: redis.Redis) -> list[object]:
            async with client.pipeline(transaction=False) as pipe:
                pipe.hgetall(batch_key(batch_id))
                pipe.scard(_running_key(batch_id))
                if with_results:
                    pipe.hvals(_results_key(batch_id))
                return list(await pipe.execute())

        replies = await self._shared.run(read)
        fields: dict[bytes, bytes] = replies[0]  # type: ignore[assignment]
        if not fields:
            return None
        running: int = replies[1]  # type: ignore[assignment]
        values: list[bytes] = replies[2] if with_results else []  # type: ignore[assignment]
        results = sorted((ItemResult.from_json(v) for v in values), key=lambda r: r.index)
        return _status(batch_id, fields, running, results)


def _status(
    batch_id: str, fields: dict[bytes, bytes], running: int, results: list[ItemResult]
) -> BatchStatus:
    def number(name: str) -> float:
        return float(fields.get(name.encode(), b"0"))

    total, done, failed = int(number("total")), int(number("done")), int(number("failed"))
    cancelled = b"cancelled_at" in fields
    # Members of the running set whose worker died stay until the question is taken over.
    running = 0 if cancelled else min(running, total - done - failed)
    left = total - done - failed - running
    paused_reason = _text(fields.get(b"paused_reason"))
    progress = Progress(
        total=total,
        queued=0 if cancelled else left,
        running=running,
        done=done,
        failed=failed,
        cancelled=left if cancelled else 0,
        eta_s=_eta_s(number("started_at"), done + failed, total - done - failed),
    )
    return BatchStatus(
        batch_id=batch_id,
        tenant=_text(fields.get(b"tenant")),
        state=progress.state(cancelled, bool(paused_reason), bool(number("started_at"))),
        progress=progress,
        paused_reason=paused_reason,
        cost_usd=number("cost_usd"),
        interactive_cost_usd=number("interactive_usd"),
        results=results,
    )


def _eta_s(started_at: float, finished: int, left: int) -> float:
    """Seconds left at the pace since the first question started; 0 when unknown."""
    if not started_at or not finished:
        return 0.0
    return (time.time() - started_at) / finished * left
