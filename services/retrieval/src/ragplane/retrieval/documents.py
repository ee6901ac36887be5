"""Document-level ranking: each document scored by the sum of its candidate chunks' scores.

Measured by `make eval-retrieval` (README, "Retrieval quality"): a document that several of
the candidate chunks match is more often the one that answers than a document with one close
chunk, so summing beats ranking a document where its best chunk ranks.
"""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from ragplane.retrieval.store import ScoredChunk


class DocumentRanking(enum.Enum):
    BEST_CHUNK = "best_chunk"
    CHUNK_SUM = "chunk_sum"


@dataclass(frozen=True)
class DocumentRanked:
    # Grouped by document, best document first; within a document, best chunk first.
    hits: list[ScoredChunk]
    # Document id -> the sum of its chunks' scores.
    document_scores: dict[str, float]


def rank_by_chunk_sum(hits: Sequence[ScoredChunk]) -> DocumentRanked:
    """The hits ordered by (their document's chunk-score sum, their own score), both descending."""
    totals: dict[str, float] = defaultdict(float)
    for hit in hits:
        totals[hit.chunk.document_id] += hit.score
    # The document id breaks a tie between two sums, so that their chunks do not interleave.
    ordered = sorted(
        hits,
        key=lambda hit: (-totals[hit.chunk.document_id], hit.chunk.document_id, -hit.score),
    )
    return DocumentRanked(ordered, dict(totals))
