"""One search: hybrid candidates from Weaviate, a minimum score, then rerank or document ranking."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from ragplane.retrieval.documents import DocumentRanking, rank_by_chunk_sum
from ragplane.retrieval.filters import FieldFilter
from ragplane.retrieval.reranker import Reranker
from ragplane.retrieval.store import ChunkStore, Fusion, HybridQuery, ScoredChunk
from ragplane.runtime.errors import InvalidArgument
from ragplane.runtime.resilience import Deadline


@dataclass(frozen=True)
class SearchOptions:
    """What a caller may choose per request; None means the service default."""

    alpha: float | None = None
    fusion: Fusion | None = None
    top_k: int = 10
    rerank: bool | None = None
    rerank_candidates: int = 0
    min_score: float | None = None
    filters: Sequence[FieldFilter] = ()
    document_ranking: DocumentRanking = DocumentRanking.BEST_CHUNK


@dataclass(frozen=True)
class SearchDefaults:
    alpha: float
    fusion: Fusion
    max_top_k: int
    rerank: bool
    rerank_candidates: int
    max_rerank_candidates: int
    # Chunks fetched (at least top_k) whose scores are summed per document for CHUNK_SUM.
    document_candidates: int


@dataclass(frozen=True)
class RankedHit:
    hit: ScoredChunk
    # Weaviate's hybrid (or BM25) score, before any rerank.
    retrieval_score: float
    # The document's chunk-score sum when ranked by CHUNK_SUM.
    document_score: float | None = None


@dataclass
class SearchOutcome:
    hits: list[RankedHit]
    alpha: float
    fusion: Fusion | None
    document_ranking: DocumentRanking = DocumentRanking.BEST_CHUNK
    reranked: bool = False
    # Why rerank was asked for but not applied; empty when it was applied or not asked for.
    rerank_skipped: str = ""
    timings_ms: dict[str, float] = field(default_factory=dict)


class Searcher:
    def __init__(self, store: ChunkStore, reranker: Reranker, defaults: SearchDefaults) -> None:
        self._store = store
        self._reranker = reranker
        self._defaults = defaults

    async def search(
        self,
        tenant: str,
        text: str,
        vector: Sequence[float],
        options: SearchOptions,
        deadline: Deadline,
    ) -> SearchOutcome:
        defaults = self._defaults
        alpha = defaults.alpha if options.alpha is None else options.alpha
        if not vector:
            alpha = 0.0
        fusion = options.fusion or defaults.fusion
        rerank = defaults.rerank if options.rerank is None else options.rerank
        # The reranker's scores order chunks, not documents: a reranked search keeps its order.
        chunk_sum = options.document_ranking is DocumentRanking.CHUNK_SUM and not rerank
        candidates = self._candidate_count(options, rerank, chunk_sum)
        query = HybridQuery(text, vector, alpha, fusion, candidates, options.filters)
        started = time.monotonic()
        found = await self._store.search(tenant, query)
        outcome = SearchOutcome([], alpha, fusion if vector else None)
        outcome.timings_ms["retrieval"] = (time.monotonic() - started) * 1000
        if options.min_score is not None:
            found = [hit for hit in found if hit.score >= options.min_score]
        retrieval_scores = {hit.chunk.chunk_id: hit.score for hit in found}
        if rerank:
            reranked = await self._reranker.rerank(text, found, deadline)
            found = reranked.hits
            outcome.reranked = reranked.reranked
            outcome.rerank_skipped = reranked.skipped
            outcome.timings_ms["rerank"] = reranked.elapsed_ms
        document_scores: dict[str, float] = {}
        if chunk_sum:
            by_document = rank_by_chunk_sum(found)
            found, document_scores = by_document.hits, by_document.document_scores
            outcome.document_ranking = DocumentRanking.CHUNK_SUM
        outcome.hits = [
            RankedHit(
                hit,
                retrieval_scores[hit.chunk.chunk_id],
                document_scores.get(hit.chunk.document_id),
            )
            for hit in found[: options.top_k]
        ]
        return outcome

    def _candidate_count(self, options: SearchOptions, rerank: bool, chunk_sum: bool) -> int:
        """How many chunks to fetch: top_k, or the rerank or document candidates (never fewer
        than top_k)."""
        defaults = self._defaults
        if chunk_sum:
            return max(defaults.document_candidates, options.top_k)
        if not rerank:
            return options.top_k
        asked = options.rerank_candidates or defaults.rerank_candidates
        if asked > defaults.max_rerank_candidates:
            raise InvalidArgument.of(
                "rerank_candidates",
                f"must be at most {defaults.max_rerank_candidates}, got {asked}",
            )
        return max(asked, options.top_k)
