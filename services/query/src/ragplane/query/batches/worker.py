"""The batch worker: takes queued questions and answers them as an interactive query would.

Each question goes through the same guard (rate limit, caches, budget) and pipeline as an
interactive one, so the tenant's limits apply. The worker starts no question while
interactive queries are in flight (InteractiveLoad), pauses a batch whose tenant is over its
rate limit or budget (the question waits, it does not fail), tries a failed question again
``retries`` times before reporting it failed, and drops the question being answered within
``poll_s`` of its batch being cancelled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from contextlib import suppress
from dataclasses import dataclass
from typing import TypeVar

import structlog

from ragplane.query.batches import metrics
from ragplane.query.batches.load import InteractiveLoad
from ragplane.query.batches.model import BatchItem, ItemResult, ItemStatus, Work
from ragplane.query.batches.queue import BatchQueue, Taken
from ragplane.query.batches.store import BatchStore
from ragplane.query.config import BatchSettings
from ragplane.query.domain import Answer, Passage, Question, SourceDocument
from ragplane.query.guard import Admission, QueryGuard
from ragplane.query.ingestion import Ingestor
from ragplane.query.pipeline import QueryPipeline
from ragplane.query.timings import Stage
from ragplane.runtime.errors import ResourceExhausted, ServiceError
from ragplane.runtime.redis_client import RedisDown
from ragplane.runtime.resilience import Backoff, Deadline

log = structlog.get_logger(__name__)

_T = TypeVar("_T")


class ItemFailed(Exception):
    """One attempt at a question failed; the message says why."""


@dataclass(frozen=True)
class BatchWorker:
    queue: BatchQueue
    store: BatchStore
    guard: QueryGuard
    pipeline: QueryPipeline
    ingestor: Ingestor
    load: InteractiveLoad
    settings: BatchSettings
    snippet_chars: int

    @property
    def _backoff(self) -> Backoff:
        # Each retry of a question may wait longer, up to 8 times the first delay.
        return Backoff(self.settings.retry_delay_s, self.settings.retry_delay_s * 8)

    async def run(self) -> None:
        """Answer queued questions, ``concurrency`` at a time, until cancelled."""
        await self._group_ready()
        async with asyncio.TaskGroup() as lanes:
            for _ in range(self.settings.concurrency):
                lanes.create_task(self._lane())

    async def _group_ready(self) -> None:
        while True:
            try:
                await self.queue.ensure_group()
                return
            except RedisDown as error:
                log.warning("batch worker waits for Redis", error=str(error))
                await asyncio.sleep(self.settings.poll_s)

    async def _lane(self) -> None:
        while True:
            await self.load.room()
            try:
                taken = await self.queue.take()
                if taken is None:
                    await asyncio.sleep(self.settings.poll_s)
                    continue
                await self._work_on(taken)
            except RedisDown as error:
                log.warning("batch worker waits for Redis", error=str(error))
                await asyncio.sleep(self.settings.poll_s)
            except Exception:
                # A bug met by one question must not stop batch mode: the question stays
                # pending (taken over again later) and this lane goes on with the next.
                log.exception("batch question not handled")
                await asyncio.sleep(self.settings.poll_s)

    async def _work_on(self, taken: Taken) -> None:
        item = taken.item
        # Answered already: its worker died between storing the answer and acknowledging.
        if await self.store.cancelled(item.batch_id) or await self.store.answered(item):
            await self.queue.done(taken)
            return
        await self.store.started(item)
        with metrics.RUNNING.track_inprogress():
            result = await self._unless_cancelled(item.batch_id, self._answer(item))
        if result is not None and await self.store.record(item.batch_id, result):
            metrics.ITEMS.labels(result.status.value).inc()
            metrics.COST_USD.inc(result.cost_usd)
            metrics.SAVED_USD.inc(result.interactive_cost_usd - result.cost_usd)
        await self.queue.done(taken)

    async def _unless_cancelled(self, batch_id: str, work: Awaitable[_T]) -> _T | None:
        """``work``'s result; None when the batch was cancelled first (``work`` is stopped)."""
        task = asyncio.ensure_future(work)
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=self.settings.poll_s)
                if done:
                    return task.result()
                if await self.store.cancelled(batch_id):
                    return None
        finally:
            if not task.done():
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task

    async def _answer(self, item: BatchItem) -> ItemResult:
        """The item's result, after at most ``retries`` further attempts."""
        attempts = 0
        while True:
            attempts += 1
            try:
                return await self._attempt(item, attempts)
            except ItemFailed as failure:
                if attempts > self.settings.retries:
                    log.info("batch item failed", batch=item.batch_id, index=item.index)
                    return ItemResult(
                        item.index,
                        ItemStatus.FAILED,
                        _query_of(item.work),
                        error=str(failure),
                        attempts=attempts,
                        document_id=_document_id_of(item.work),
                    )
                metrics.RETRIES.inc()
                await asyncio.sleep(self._backoff.delay(attempts - 1))

    async def _attempt(self, item: BatchItem, attempts: int) -> ItemResult:
        if isinstance(item.work, SourceDocument):
            chunks = await self._ingest(item.tenant, item.work)
            return ItemResult(
                item.index,
                ItemStatus.DONE,
                "",
                attempts=attempts,
                document_id=item.work.document_id,
                chunks=chunks,
            )
        answer, interactive_usd = await self._ask(item, item.work)
        return self._result(item, item.work, answer, interactive_usd, attempts)

    async def _ingest(self, tenant: str, document: SourceDocument) -> int:
        """Index the document as Ingest would (cached answers invalidated); its chunk count."""
        deadline = Deadline(self.settings.item_timeout_s)
        try:
            [outcome] = await self.ingestor.ingest(tenant, [document], deadline)
        except ServiceError as error:
            raise ItemFailed(error.message) from error
        finally:
            await self.guard.documents_changed(tenant)
        if not outcome.indexed:
            raise ItemFailed(outcome.error)
        return len(outcome.chunks)

    async def _ask(self, item: BatchItem, question: Question) -> tuple[Answer, float]:
        """The answer (its cost at the batch price) and its cost at the interactive price."""
        admission, deadline = await self._admitted(item, question)
        if admission.cached is not None:
            return admission.cached.as_answer(deadline.total_s or 0.0, 0.0), 0.0
        try:
            answer = await self.pipeline.answer(admission.question, deadline, admission.embedding)
        except ServiceError as error:
            raise ItemFailed(error.message) from error
        if answer.citations and not answer.provider:
            # Passages were found and no LLM answered (the extractive fallback): a batch can
            # wait for a real answer, so this attempt failed.
            reasons = [d.reason for d in answer.degradations if d.stage is Stage.GENERATION]
            raise ItemFailed("; ".join(reasons) or "no LLM answered")
        interactive_usd = answer.cost_usd
        answer.cost_usd = interactive_usd * self.settings.price_factor
        await self.guard.settle(admission, answer)
        return answer, interactive_usd

    async def _admitted(self, item: BatchItem, question: Question) -> tuple[Admission, Deadline]:
        """Through the guard; while the tenant is over its rate limit or budget, the batch is
        paused and the question waits."""
        paused = False
        while True:
            deadline = Deadline(self.settings.item_timeout_s)
            try:
                admission = await self.guard.admit(question, deadline)
            except ResourceExhausted as limit:
                if not paused:
                    metrics.PAUSES.inc()
                    await self.store.pause(item.batch_id, limit.message)
                    paused = True
                wait_s = limit.retry_after_s or self.settings.poll_s
                await asyncio.sleep(min(wait_s, self.settings.pause_max_s))
                continue
            except ServiceError as error:
                raise ItemFailed(error.message) from error
            if paused:
                await self.store.resume(item.batch_id)
            return admission, deadline

    def _result(
        self,
        item: BatchItem,
        question: Question,
        answer: Answer,
        interactive_usd: float,
        attempts: int,
    ) -> ItemResult:
        return ItemResult(
            index=item.index,
            status=ItemStatus.DONE,
            query=question.text,
            answer=answer.text,
            citations=tuple(
                Passage(p.document_id, p.chunk_id, p.text[: self.snippet_chars], p.score)
                for p in answer.citations
            ),
            provider=answer.provider,
            model=answer.model,
            input_tokens=answer.input_tokens,
            output_tokens=answer.output_tokens,
            cost_usd=answer.cost_usd,
            interactive_cost_usd=interactive_usd,
            attempts=attempts,
            degradations=tuple(answer.degradations),
        )


def _query_of(work: Work) -> str:
    return work.text if isinstance(work, Question) else ""


def _document_id_of(work: Work) -> str:
    return work.document_id if isinstance(work, SourceDocument) else ""
