"""Document-level ranking by the sum of chunk scores, and the option at the gRPC edge."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ragplane.retrieval.config import RetrievalSettings
from ragplane.retrieval.documents import DocumentRanking, rank_by_chunk_sum
from ragplane.retrieval.server import search_options
from ragplane.retrieval.store import ScoredChunk, StoredChunk
from ragplane.v1 import retrieval_pb2


def _hit(document_id: str, index: int, score: float) -> ScoredChunk:
    return ScoredChunk(StoredChunk(f"{document_id}#{index}", document_id, index, "text"), score)


def _ids(hits: list[ScoredChunk]) -> list[str]:
    return [hit.chunk.chunk_id for hit in hits]


def test_a_document_many_chunks_match_outranks_one_with_the_single_best_chunk() -> None:
    # Chunk order: "one" has the best chunk; "many" has three fair ones (sum 1.5 > 0.9).
    hits = [_hit("one", 0, 0.9), _hit("many", 0, 0.6), _hit("many", 2, 0.5), _hit("few", 0, 0.45)]
    hits.append(_hit("many", 1, 0.4))

    ranked = rank_by_chunk_sum(hits)

    assert _ids(ranked.hits) == ["many#0", "many#2", "many#1", "one#0", "few#0"]
    assert ranked.document_scores == pytest.approx({"many": 1.5, "one": 0.9, "few": 0.45})


def test_documents_with_equal_sums_do_not_interleave() -> None:
    hits = [_hit("b", 0, 0.5), _hit("a", 0, 0.5), _hit("b", 1, 0.25), _hit("a", 1, 0.25)]

    assert _ids(rank_by_chunk_sum(hits).hits) == ["a#0", "a#1", "b#0", "b#1"]


def test_no_hits_rank_to_no_hits() -> None:
    ranked = rank_by_chunk_sum([])

    assert (ranked.hits, ranked.document_scores) == ([], {})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (retrieval_pb2.DOCUMENT_RANKING_UNSPECIFIED, DocumentRanking.BEST_CHUNK),
        (retrieval_pb2.DOCUMENT_RANKING_BEST_CHUNK, DocumentRanking.BEST_CHUNK),
        (retrieval_pb2.DOCUMENT_RANKING_CHUNK_SUM, DocumentRanking.CHUNK_SUM),
    ],
)
def test_the_request_option_maps_unset_to_best_chunk(
    value: retrieval_pb2.DocumentRanking.ValueType, expected: DocumentRanking
) -> None:
    request = retrieval_pb2.SearchRequest(document_ranking=value)

    assert search_options(request).document_ranking is expected


def test_document_candidates_default_and_bounds() -> None:
    assert RetrievalSettings().document_candidates == 100
    with pytest.raises(ValidationError, match="document_candidates"):
        RetrievalSettings(document_candidates=0)
