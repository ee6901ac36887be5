"""Dynamic micro-batching with a bounded queue, after text-embeddings-inference.

Calls put their texts in one FIFO queue. A single loop takes texts from its head into a batch
until the batch holds ``max_batch_size`` texts or ``max_batch_tokens`` padded tokens, waiting at
most ``max_wait`` for more to arrive while the model is idle, sorts the batch by length to cut
padding, and runs the model on a worker thread. While the model runs, the next batch fills up.
Admission is bounded by queued calls and queued tokens; past either, a call is refused at once.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import structlog
from numpy.typing import NDArray

from ragplane.embedding import metrics
from ragplane.runtime.errors import DeadlineExceeded, ResourceExhausted, Unavailable
from ragplane.runtime.resilience import Deadline

log = structlog.get_logger(__name__)

Encode = Callable[[list[str]], NDArray[np.float32]]


@dataclass(frozen=True)
class BatchLimits:
    max_batch_size: int
    max_batch_tokens: int
    max_wait_s: float
    max_queued_requests: int
    max_queued_tokens: int


@dataclass(frozen=True)
class BatchedVectors:
    vectors: list[NDArray[np.float32]]
    # Longest time one of the call's texts waited for its batch to start.
    queue_s: float
    # Time of the model invocations that carried the call's texts.
    inference_s: float


@dataclass(eq=False)
class _Call:
    texts: list[str]
    tokens: list[int]
    deadline: Deadline
    future: asyncio.Future[None]
    enqueued_at: float = field(default_factory=time.perf_counter)
    vectors: list[NDArray[np.float32] | None] = field(init=False)
    waiting: int = field(init=False)  # texts still in the queue
    unfinished: int = field(init=False)  # texts without a vector yet
    queue_s: float = 0.0
    inference_s: float = 0.0

    def __post_init__(self) -> None:
        self.vectors = [None] * len(self.texts)
        self.waiting = self.unfinished = len(self.texts)

    @property
    def ended(self) -> bool:
        """The caller no longer waits: it was cancelled, or the call failed."""
        return self.future.done()


@dataclass(frozen=True)
class _Text:
    call: _Call
    index: int
    tokens: int


class DynamicBatcher:
    def __init__(self, encode: Encode, limits: BatchLimits) -> None:
        self._encode = encode
        self._limits = limits
        self._queue: deque[_Text] = deque()
        self._queued_calls = 0
        self._queued_tokens = 0
        self._arrived = asyncio.Event()
        # One worker: the model uses every core already; two batches at once would only fight.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")
        self._loop_task: asyncio.Task[None] | None = None
        # Moving average of one model invocation, for the retry delay given to refused calls.
        self._recent_batch_s = 0.05

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._run(), name="embedding-batcher")

    async def stop(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def embed(
        self, texts: Sequence[str], tokens: Sequence[int], deadline: Deadline
    ) -> BatchedVectors:
        """Queue the texts and wait for their vectors, unless ``deadline`` passes first."""
        self._admit(sum(tokens))
        call = _Call(
            list(texts), list(tokens), deadline, asyncio.get_running_loop().create_future()
        )
        self._queue.extend(_Text(call, i, n) for i, n in enumerate(call.tokens))
        self._queued_calls += 1
        self._queued_tokens += sum(call.tokens)
        self._update_gauges()
        self._arrived.set()
        try:
            await call.future
        finally:
            if call.waiting:
                self._withdraw(call, reason="cancelled")
        return BatchedVectors(
            [vector for vector in call.vectors if vector is not None],
            call.queue_s,
            call.inference_s,
        )

    def _admit(self, tokens: int) -> None:
        limits = self._limits
        if (
            self._queued_calls < limits.max_queued_requests
            and self._queued_tokens + tokens <= limits.max_queued_tokens
        ):
            return
        metrics.REJECTED.labels("queue_full").inc()
        raise ResourceExhausted(
            f"the embedding queue is full ({self._queued_calls} calls, {self._queued_tokens} "
            "tokens waiting); retry after the suggested delay",
            retry_after_s=self._suggested_retry_s(),
        )

    def _suggested_retry_s(self) -> float:
        """Roughly how long the queue takes to drain, from the recent batch duration."""
        batches_ahead = max(1, self._queued_tokens // self._limits.max_batch_tokens + 1)
        return round(min(5.0, max(0.05, batches_ahead * self._recent_batch_s)), 3)

    def _take(self, text: _Text) -> None:
        """Account for a text leaving the queue, whether for the model or dropped."""
        text.call.waiting -= 1
        self._queued_tokens -= text.tokens
        if text.call.waiting == 0:
            self._queued_calls -= 1

    def _withdraw(self, call: _Call, reason: str) -> None:
        """Drop every queued text of a call whose caller stopped waiting."""
        kept: deque[_Text] = deque()
        for text in self._queue:
            if text.call is call:
                self._take(text)
            else:
                kept.append(text)
        dropped = len(self._queue) - len(kept)
        self._queue = kept
        metrics.DROPPED.labels(reason).inc(dropped)
        self._update_gauges()

    def _update_gauges(self) -> None:
        metrics.QUEUED_TEXTS.set(len(self._queue))
        metrics.QUEUED_REQUESTS.set(self._queued_calls)

    async def _run(self) -> None:
        while True:
            await self._arrived.wait()
            batch = await self._collect()
            if batch:
                await self._infer(batch)
            if not self._queue:
                self._arrived.clear()

    async def _collect(self) -> list[_Text]:
        """Wait for a full batch or for max_wait after the oldest text arrived, then take it."""
        limits = self._limits
        while self._queue and not self._batch_is_full():
            wait_s = self._queue[0].call.enqueued_at + limits.max_wait_s - time.perf_counter()
            if wait_s <= 0:
                break
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), wait_s)
            except TimeoutError:
                break
        return self._take_batch()

    def _batch_is_full(self) -> bool:
        return (
            len(self._queue) >= self._limits.max_batch_size
            or self._queued_tokens >= self._limits.max_batch_tokens
        )

    def _take_batch(self) -> list[_Text]:
        batch: list[_Text] = []
        longest = 0
        while self._queue and len(batch) < self._limits.max_batch_size:
            text = self._queue[0]
            call = text.call
            if call.deadline.passed() and not call.ended:
                call.future.set_exception(
                    DeadlineExceeded("the call's deadline passed in the queue")
                )
                self._withdraw(call, reason="expired")
                continue
            padded = max(longest, text.tokens) * (len(batch) + 1)
            if batch and padded > self._limits.max_batch_tokens:
                break
            self._queue.popleft()
            self._take(text)
            longest = max(longest, text.tokens)
            batch.append(text)
        self._update_gauges()
        return batch

    async def _infer(self, batch: list[_Text]) -> None:
        batch.sort(key=lambda text: text.tokens)
        calls = {text.call for text in batch}
        started = time.perf_counter()
        for text in batch:
            metrics.QUEUE_WAIT.observe(started - text.call.enqueued_at)
        for call in calls:
            call.queue_s = max(call.queue_s, started - call.enqueued_at)
        texts = [text.call.texts[text.index] for text in batch]
        try:
            vectors = await asyncio.get_running_loop().run_in_executor(
                self._executor, self._encode, texts
            )
        except Exception as error:
            log.exception("model invocation failed", batch_size=len(batch))
            for call in calls:
                if not call.ended:
                    call.future.set_exception(Unavailable(f"the embedding model failed: {error}"))
            return
        elapsed = time.perf_counter() - started
        self._recent_batch_s = 0.8 * self._recent_batch_s + 0.2 * elapsed
        metrics.BATCH_SIZE.observe(len(batch))
        metrics.BATCH_TOKENS.observe(len(batch) * batch[-1].tokens)
        metrics.INFERENCE.observe(elapsed)
        metrics.TEXTS_EMBEDDED.inc(len(batch))
        for text, vector in zip(batch, vectors, strict=True):
            text.call.vectors[text.index] = vector
            text.call.unfinished -= 1
        for call in calls:
            call.inference_s += elapsed
            if call.unfinished == 0 and not call.ended:
                call.future.set_result(None)
