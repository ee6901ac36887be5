"""Cross-encoder reranking of hybrid candidates, within a time limit, degrading to hybrid order."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import structlog

from ragplane.retrieval.store import ScoredChunk
from ragplane.runtime.resilience import Deadline

log = structlog.get_logger(__name__)


class PairScorer(Protocol):
    """Scores (query, passage) pairs; higher is more relevant. Blocking: run it off the loop."""

    def score(self, query: str, passages: Sequence[str]) -> list[float]: ...


class CrossEncoderScorer:
    """A sentence-transformers CrossEncoder loaded from a local directory (no hub access)."""

    def __init__(self, path: Path, max_length: int) -> None:
        from sentence_transformers import CrossEncoder

        self._model = CrossEncoder(str(path), max_length=max_length, local_files_only=True)

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        scores = self._model.predict(
            [(query, passage) for passage in passages],
            batch_size=max(1, len(passages)),
            show_progress_bar=False,
            convert_to_numpy=True,
        )
        return [float(value) for value in scores]


@dataclass(frozen=True)
class RerankOutcome:
    """Candidates in their final order; ``skipped`` says why they kept the hybrid order."""

    hits: list[ScoredChunk]
    reranked: bool
    skipped: str
    elapsed_ms: float


@dataclass(frozen=True)
class RerankLimits:
    """Texts scored per batch, the time one rerank may take, and what it leaves the caller."""

    batch_size: int
    time_limit_s: float
    deadline_reserve_s: float


class Reranker:
    """Scores candidates in batches on one worker thread, stopping when its time limit runs out.

    The time limit is the smaller of the configured one and the caller's remaining deadline less a
    reserve for answering. Between batches it checks whether another batch (timed by the last
    one) still fits; when not, or when the model fails, the candidates keep the hybrid order,
    since a half-reranked list would mix two incomparable scores.
    """

    def __init__(
        self, scorer: PairScorer | None, unavailable_reason: str, limits: RerankLimits
    ) -> None:
        self._scorer = scorer
        self._unavailable_reason = unavailable_reason
        self._limits = limits
        # One thread: the model saturates the CPU; concurrent requests wait their turn (and
        # that wait counts against their time limit).
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rerank")

    @property
    def available(self) -> bool:
        return self._scorer is not None

    def time_limit_s(self, deadline: Deadline) -> float:
        """The time this rerank may take: the configured limit, within the caller's deadline."""
        seconds_left = deadline.seconds_left()
        if seconds_left is None:
            return self._limits.time_limit_s
        return min(self._limits.time_limit_s, seconds_left - self._limits.deadline_reserve_s)

    async def rerank(
        self, query: str, candidates: Sequence[ScoredChunk], deadline: Deadline
    ) -> RerankOutcome:
        started = time.monotonic()
        hybrid = list(candidates)

        def keep_hybrid(reason: str) -> RerankOutcome:
            elapsed_ms = (time.monotonic() - started) * 1000
            log.warning("rerank skipped; hybrid order kept", reason=reason)
            return RerankOutcome(hybrid, False, reason, elapsed_ms)

        if self._scorer is None:
            return keep_hybrid(self._unavailable_reason)
        limit_s = self.time_limit_s(deadline)
        if limit_s <= 0:
            return keep_hybrid(f"no time left to rerank (time limit {limit_s * 1000:.0f} ms)")
        if not hybrid:
            return RerankOutcome(hybrid, True, "", 0.0)
        try:
            scores = await self._score_within(self._scorer, query, hybrid, Deadline(limit_s))
        except Exception as error:  # noqa: BLE001 - any model failure degrades, never fails
            return keep_hybrid(f"reranker failed: {type(error).__name__}: {error}")
        if scores is None:
            return keep_hybrid(f"rerank time limit of {limit_s * 1000:.0f} ms ran out")
        ranked = sorted(
            (replace(hit, score=score) for hit, score in zip(hybrid, scores, strict=True)),
            key=lambda hit: hit.score,
            reverse=True,
        )
        return RerankOutcome(ranked, True, "", (time.monotonic() - started) * 1000)

    async def _score_within(
        self, scorer: PairScorer, query: str, hits: list[ScoredChunk], limit: Deadline
    ) -> list[float] | None:
        """Scores of every hit, or None when the next batch would not finish within ``limit``."""
        loop = asyncio.get_running_loop()
        scores: list[float] = []
        last_batch_s = 0.0
        for start in range(0, len(hits), self._limits.batch_size):
            if not limit.allows(last_batch_s):
                return None
            texts = [hit.chunk.text for hit in hits[start : start + self._limits.batch_size]]
            batch_started = time.monotonic()
            scores += await loop.run_in_executor(self._executor, scorer.score, query, texts)
            last_batch_s = time.monotonic() - batch_started
        return scores if limit.allows(0.0) else None

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def load_scorer(path: Path | None, max_length: int) -> tuple[PairScorer | None, str]:
    """The configured cross-encoder, or None and why not (the service then serves unreranked)."""
    if path is None:
        return None, "no reranker configured (RETRIEVAL_RERANKER_PATH is unset)"
    try:
        return CrossEncoderScorer(path, max_length), ""
    except Exception as error:  # noqa: BLE001 - a broken model must not stop search
        log.error("reranker failed to load; searches keep hybrid order", path=str(path))
        return None, f"reranker failed to load from {path}: {type(error).__name__}: {error}"
