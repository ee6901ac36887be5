"""The durable queue of batch questions: one Redis Stream, read through one consumer group.

A worker takes an entry (XREADGROUP), answers it, and only then acknowledges and deletes it.
An entry taken by a worker that died stays pending in the group, and another worker takes it
over once it has been idle for ``claim_idle_s`` (XAUTOCLAIM): nothing is lost to a crash.
What makes each question answered once is the result store's write-once results, not the
queue: a question answered just before a crash is acknowledged, not answered, when taken over.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import redis.asyncio as redis

from ragplane.query.batches.model import BatchItem, work_from_json, work_to_json
from ragplane.runtime.redis_client import SharedRedis

STREAM = "ragplane:batches:items"
GROUP = "ragplane-batch-workers"


@dataclass(frozen=True)
class Taken:
    """An entry a worker holds until it acknowledges it."""

    entry_id: bytes
    item: BatchItem


def _item(fields: dict[bytes, bytes]) -> BatchItem:
    return BatchItem(
        fields[b"batch"].decode(),
        fields[b"tenant"].decode(),
        int(fields[b"index"]),
        work_from_json(fields[b"work"]),
    )


class BatchQueue:
    def __init__(self, shared: SharedRedis, consumer: str, claim_idle_s: float) -> None:
        self._shared = shared
        self._consumer = consumer
        self._claim_idle_ms = int(claim_idle_s * 1000)

    async def ensure_group(self) -> None:
        """Create the stream and its group unless they exist (every worker does, at start)."""

        async def create(client: redis.Redis) -> None:
            try:
                await client.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
            except redis.ResponseError as error:
                if "BUSYGROUP" not in str(error):
                    raise

        await self._shared.run(create)

    @staticmethod
    def add_in(pipe: redis.client.Pipeline, items: Sequence[BatchItem]) -> None:
        """Queue ``items`` inside the caller's transaction (the batch is created in the same)."""
        for item in items:
            fields = {
                "batch": item.batch_id,
                "tenant": item.tenant,
                "index": str(item.index),
                "work": work_to_json(item.work),
            }
            pipe.xadd(STREAM, fields)  # type: ignore[arg-type]

    async def take(self) -> Taken | None:
        """An entry abandoned by a dead worker first, else a new one; None when there is none."""
        return await self._claim_abandoned() or await self._read_new()

    async def _claim_abandoned(self) -> Taken | None:
        reply = await self._shared.run(
            lambda client: client.xautoclaim(
                STREAM, GROUP, self._consumer, self._claim_idle_ms, start_id="0-0", count=1
            )
        )
        claimed = reply[1]
        return _taken(claimed[0]) if claimed else None

    async def _read_new(self) -> Taken | None:
        reply = await self._shared.run(
            lambda client: client.xreadgroup(GROUP, self._consumer, {STREAM: ">"}, count=1)
        )
        # RESP2: [[stream, [entry, ...]]], or nothing when no entry is new.
        streams = cast(list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]], reply or [])
        entries = streams[0][1] if streams else []
        return _taken(entries[0]) if entries else None

    async def done(self, taken: Taken) -> None:
        """Acknowledge and drop the entry: its question is answered, failed or cancelled."""

        async def ack(client: redis.Redis) -> None:
            async with client.pipeline(transaction=True) as pipe:
                pipe.xack(STREAM, GROUP, taken.entry_id)
                pipe.xdel(STREAM, taken.entry_id)
                await pipe.execute()

        await self._shared.run(ack)


def _taken(entry: tuple[bytes, dict[bytes, bytes]]) -> Taken:
    entry_id, fields = entry
    return Taken(entry_id, _item(fields))
