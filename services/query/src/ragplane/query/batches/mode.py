"""Batch mode as the query service runs it: the store, the load it yields to, the worker."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from contextlib import suppress
from dataclasses import dataclass, field

from ragplane.query.batches.load import InteractiveLoad
from ragplane.query.batches.queue import BatchQueue
from ragplane.query.batches.store import BatchStore
from ragplane.query.batches.worker import BatchWorker
from ragplane.query.config import BatchSettings, GuardSettings, QuerySettings
from ragplane.query.guard import QueryGuard
from ragplane.query.ingestion import Ingestor
from ragplane.query.pipeline import QueryPipeline
from ragplane.runtime.redis_client import SharedRedis


@dataclass
class BatchMode:
    settings: BatchSettings
    query_settings: QuerySettings
    shared: SharedRedis
    store: BatchStore
    load: InteractiveLoad
    worker: BatchWorker | None
    _running: asyncio.Task[None] | None = field(default=None, init=False)

    @classmethod
    def build(
        cls,
        settings: BatchSettings,
        query_settings: QuerySettings,
        guard_settings: GuardSettings,
        guard: QueryGuard,
        pipeline: QueryPipeline,
        ingestor: Ingestor,
    ) -> BatchMode:
        """Batch mode on its own Redis client and breaker: a Redis hiccup in batch work does
        not open the breaker interactive queries' caches and limits go through."""
        shared = SharedRedis.connect("query-batches", guard_settings)
        store = BatchStore(shared, settings.result_ttl_s)
        load = InteractiveLoad(settings.yield_in_flight)
        worker = None
        if settings.worker_enabled:
            # A name of its own per process: a restarted service takes over its predecessor's
            # questions through XAUTOCLAIM, like any other worker's.
            consumer = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            queue = BatchQueue(shared, consumer, settings.claim_idle_s)
            worker = BatchWorker(
                queue,
                store,
                guard,
                pipeline,
                ingestor,
                load,
                settings,
                query_settings.snippet_chars,
            )
        return cls(settings, query_settings, shared, store, load, worker)

    def start(self) -> None:
        if self.worker is not None:
            self._running = asyncio.create_task(self.worker.run(), name="batch-worker")

    async def close(self) -> None:
        if self._running is not None:
            self._running.cancel()
            with suppress(asyncio.CancelledError):
                await self._running
        await self.shared.close()
