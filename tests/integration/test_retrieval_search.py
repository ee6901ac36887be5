"""Search knobs, filters, document ranking and rerank on real Weaviate and a trained reranker.

A retrieval service of its own (beside the session stack's, on the same Weaviate but in its own
collection) carries the reranker, a numeric metadata field and a large deadline reserve.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from ragplane.cli.stack import Stack
from ragplane.retrieval.reranker import CrossEncoderScorer
from ragplane.v1 import (
    common_pb2,
    embedding_pb2,
    embedding_pb2_grpc,
    retrieval_pb2,
    retrieval_pb2_grpc,
)
from tests.integration.chunks import embedded_chunks
from tests.integration.errors import expect_status
from tests.integration.services import service_process
from tests.reranker import trained_test_reranker

TENANT = "search-knobs"
# Calls with less time than this left skip rerank (and say so); generous ones rerank.
RESERVE_S = 20
PASSAGES = {
    "venv.md": ("tutorial", "2019", "To create a virtual environment, run the venv module."),
    "loops.md": ("tutorial", "2020", "The for statement iterates over the items of a sequence."),
    "floats.md": ("tutorial", "2021", "Floating point numbers are stored as binary fractions."),
    "tarfile.md": ("library", "2022", "The tarfile module reads and writes tar archives."),
    "pip.md": ("library", "2023", "Use pip inside a virtual environment to install packages."),
    "dicts.md": ("library", "2024", "Dictionaries map immutable keys to values."),
}
QUESTION = "How do I create a virtual environment?"
# Document ranking: "one.md" holds the closest single chunk, "many.md" three that each match.
DOCUMENT_TENANT = "search-documents"
DOCUMENT_CHUNKS = {
    "one.md": ["To create a virtual environment, run python -m venv with a directory."],
    "many.md": [
        "A virtual environment keeps the packages of a project apart from the system's.",
        "Activate the virtual environment before you install packages into it.",
        "Remove a virtual environment by deleting its directory.",
    ],
    "dicts.md": ["Dictionaries map immutable keys to values."],
}


@pytest.fixture(scope="module")
def reranking(
    stack: Stack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[retrieval_pb2_grpc.RetrievalServiceStub]:
    env = {
        "RETRIEVAL_WEAVIATE_HTTP_PORT": str(stack.ports.weaviate_http),
        "RETRIEVAL_WEAVIATE_GRPC_PORT": str(stack.ports.weaviate_grpc),
        "RETRIEVAL_COLLECTION": "RagplaneSearchTest",
        "RETRIEVAL_FILTERABLE_METADATA": '{"section": "text", "year": "number"}',
        "RETRIEVAL_RERANKER_PATH": str(trained_test_reranker()),
        "RETRIEVAL_RERANK_MAX_LENGTH": "128",
        "RETRIEVAL_RERANK_BUDGET_MS": "120000",
        "RETRIEVAL_RERANK_DEADLINE_RESERVE_MS": str(RESERVE_S * 1000),
    }
    logs = tmp_path_factory.mktemp("retrieval-search")
    with (
        service_process("retrieval", env, logs) as service,
        grpc.insecure_channel(service.target) as channel,
    ):
        yield retrieval_pb2_grpc.RetrievalServiceStub(channel)


def _vector(embedding: embedding_pb2_grpc.EmbeddingServiceStub, text: str) -> list[float]:
    reply = embedding.Embed(embedding_pb2.EmbedRequest(texts=[text]), timeout=60)
    return list(reply.embeddings[0].values)


@pytest.fixture(scope="module")
def corpus(
    reranking: retrieval_pb2_grpc.RetrievalServiceStub,
    embedding: embedding_pb2_grpc.EmbeddingServiceStub,
) -> retrieval_pb2_grpc.RetrievalServiceStub:
    chunks = [
        retrieval_pb2.ChunkWithVector(
            chunk=retrieval_pb2.Chunk(
                chunk_id=f"{document_id}#0",
                document_id=document_id,
                chunk_index=0,
                text=text,
                metadata={"section": section, "year": year},
            ),
            vector=_vector(embedding, text),
        )
        for document_id, (section, year, text) in PASSAGES.items()
    ]
    reply = reranking.Upsert(retrieval_pb2.UpsertRequest(tenant=TENANT, chunks=chunks), timeout=60)
    assert (reply.upserted, list(reply.errors)) == (len(PASSAGES), [])
    return reranking


@pytest.fixture(scope="module")
def documents(
    reranking: retrieval_pb2_grpc.RetrievalServiceStub,
    embedding: embedding_pb2_grpc.EmbeddingServiceStub,
) -> retrieval_pb2_grpc.RetrievalServiceStub:
    chunks = [
        chunk
        for document_id, texts in DOCUMENT_CHUNKS.items()
        for chunk in embedded_chunks(embedding, document_id, texts)
    ]
    request = retrieval_pb2.UpsertRequest(tenant=DOCUMENT_TENANT, chunks=chunks)
    assert reranking.Upsert(request, timeout=60).upserted == len(chunks)
    return reranking


def _search(
    service: retrieval_pb2_grpc.RetrievalServiceStub,
    embedding: embedding_pb2_grpc.EmbeddingServiceStub,
    timeout: float = 120,
    **fields: Any,
) -> retrieval_pb2.SearchResponse:
    request = retrieval_pb2.SearchRequest(
        tenant=TENANT, query_text=QUESTION, query_vector=_vector(embedding, QUESTION), top_k=6
    )
    for name, value in fields.items():
        if name == "filters":
            request.filters.extend(value)
        else:
            setattr(request, name, value)
    return service.Search(request, timeout=timeout)


def _documents(response: retrieval_pb2.SearchResponse) -> list[str]:
    return [hit.chunk.document_id for hit in response.hits]


def test_rerank_orders_hits_by_the_cross_encoder_and_reports_its_time(
    corpus: retrieval_pb2_grpc.RetrievalServiceStub,
    embedding: embedding_pb2_grpc.EmbeddingServiceStub,
) -> None:
    hybrid = _search(corpus, embedding, rerank=retrieval_pb2.RERANK_MODE_OFF)
    reranked = _search(corpus, embedding, rerank=retrieval_pb2.RERANK_MODE_ON)

    assert not hybrid.reranked
    assert reranked.reranked
    assert list(reranked.degradations) == []
    rerank_ms = [t.duration_ms for t in reranked.timings if t.stage == common_pb2.STAGE_RERANK]
    assert len(rerank_ms) == 1
    assert rerank_ms[0] > 0
    # The order is the model's own: score each passage with it directly and compare.
    model = CrossEncoderScorer(trained_test_reranker(), max_length=128)
    texts = {hit.chunk.document_id: hit.chunk.text for hit in hybrid.hits}
    scores = dict(zip(texts, model.score(QUESTION, list(texts.values())), strict=True))
    assert _documents(reranked) == sorted(scores, key=lambda d: scores[d], reverse=True)
    assert _documents(reranked) != _documents(hybrid)
    # Each hit still carries its hybrid score.
    hybrid_scores = {hit.chunk.document_id: hit.score for hit in hybrid.hits}
    for hit in reranked.hits:
        assert hit.retrieval_score == pytest.approx(hybrid_scores[hit.chunk.document_id])


def test_too_little_time_before_the_deadline_keeps_hybrid_order_and_flags_rerank(
    corpus: retrieval_pb2_grpc.RetrievalServiceStub,
    embedding: embedding_pb2_grpc.EmbeddingServiceStub,
) -> None:
    hybrid = _search(corpus, embedding, rerank=retrieval_pb2.RERANK_MODE_OFF)
    # Well under the service's reserve: rerank must not even start.
    short = _search(corpus, embedding, timeout=RESERVE_S / 2, rerank=retrieval_pb2.RERANK_MODE_ON)
    assert not short.reranked
    assert _documents(short) == _documents(hybrid)
    [degradation] = short.degradations
    assert degradation.stage == common_pb2.STAGE_RERANK
    assert degradation.reason.startswith("no time left to rerank")


def test_rerank_without_a_configured_reranker_is_flagged_not_failed(
    retrieval: retrieval_pb2_grpc.RetrievalServiceStub,
    embedding: embedding_pb2_grpc.EmbeddingServiceStub,
) -> None:
    chunk = retrieval_pb2.ChunkWithVector(
        chunk=retrieval_pb2.Chunk(chunk_id="r.md#0", document_id="r.md", text="venv"),
        vector=_vector(embedding, "venv"),
    )
    retrieval.Upsert(retrieval_pb2.UpsertRequest(tenant=TENANT, chunks=[chunk]), timeout=60)
    response = _search(retrieval, embedding, rerank=retrieval_pb2.RERANK_MODE_ON)
    assert not response.reranked
    assert _documents(response) == ["r.md"]
    assert [(d.stage, d.reason) for d in response.degradations] == [
        (common_pb2.STAGE_RERANK, "no reranker configured (RETRIEVAL_RERANKER_PATH is unset)")
    ]


def test_chunk_sum_ranks_documents_by_their_chunks_and_keeps_their_chunks_together(
    documents: retrieval_pb2_grpc.RetrievalServiceStub,
    embedding: embedding_pb2_grpc.EmbeddingServiceStub,
) -> None:
    off = retrieval_pb2.RERANK_MODE_OFF
    by_chunk = _search(documents, embedding, tenant=DOCUMENT_TENANT, rerank=off)
    summed = _search(
        documents,
        embedding,
        tenant=DOCUMENT_TENANT,
        rerank=off,
        document_ranking=retrieval_pb2.DOCUMENT_RANKING_CHUNK_SUM,
    )

    assert by_chunk.document_ranking == retrieval_pb2.DOCUMENT_RANKING_BEST_CHUNK
    assert _documents(by_chunk)[0] == "one.md"
    assert not any(hit.HasField("document_score") for hit in by_chunk.hits)
    assert summed.document_ranking == retrieval_pb2.DOCUMENT_RANKING_CHUNK_SUM
    assert _documents(summed) == ["many.md"] * 3 + ["one.md", "dicts.md"]
    assert {hit.chunk.chunk_id for hit in summed.hits} == {h.chunk.chunk_id for h in by_chunk.hits}
    many = [hit.retrieval_score for hit in summed.hits[:3]]
    assert many == sorted(many, reverse=True)
    for hit in summed.hits:
        scores = [
            h.retrieval_score for h in summed.hits if h.chunk.document_id == hit.chunk.document_id
        ]
        assert hit.document_score == pytest.approx(sum(scores))


def test_a_reranked_search_keeps_the_rerankers_chunk_order_and_says_so(
    documents: retrieval_pb2_grpc.RetrievalServiceStub,
    embedding: embedding_pb2_grpc.EmbeddingServiceStub,
) -> None:
    reranked = _search(
        documents,
        embedding,
        tenant=DOCUMENT_TENANT,
        rerank=retrieval_pb2.RERANK_MODE_ON,
        document_ranking=retrieval_pb2.DOCUMENT_RANKING_CHUNK_SUM,
    )

    assert reranked.reranked
    assert reranked.document_ranking == retrieval_pb2.DOCUMENT_RANKING_BEST_CHUNK
    scores = [hit.score for hit in reranked.hits]
    assert scores == sorted(scores, reverse=True)


def _filter(field: str, **condition: object) -> common_pb2.MetadataFilter:
    return common_pb2.MetadataFilter(field=field, **condition)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ([_filter("section", equals="library")], {"tarfile.md", "pip.md", "dicts.md"}),
        ([_filter("document_id", any_of=["venv.md", "dicts.md"])], {"venv.md", "dicts.md"}),
        (
            [
                _filter(
                    "year", range=common_pb2.ValueRange(greater_or_equal="2021", less_than="2023")
                )
            ],
            {"floats.md", "tarfile.md"},
        ),
        (
            [_filter("year", range=common_pb2.ValueRange(greater_than="2022"))],
            {"pip.md", "dicts.md"},
        ),
        (
            [
                _filter("section", any_of=["tutorial"]),
                _filter("year", range=common_pb2.ValueRange(less_or_equal="2019.5")),
            ],
            {"venv.md"},
        ),
        ([_filter("section", equals="nowhere")], set()),
    ],
)
def test_filters_return_exactly_the_matching_chunks(
    corpus: retrieval_pb2_grpc.RetrievalServiceStub,
    embedding: embedding_pb2_grpc.EmbeddingServiceStub,
    filters: list[common_pb2.MetadataFilter],
    expected: set[str],
) -> None:
    for rerank in (retrieval_pb2.RERANK_MODE_OFF, retrieval_pb2.RERANK_MODE_ON):
        response = _search(corpus, embedding, filters=filters, rerank=rerank)
        assert set(_documents(response)) == expected


def test_top_k_alpha_fusion_and_min_score_shape_the_result(
    corpus: retrieval_pb2_grpc.RetrievalServiceStub,
    embedding: embedding_pb2_grpc.EmbeddingServiceStub,
) -> None:
    top2 = _search(corpus, embedding, top_k=2, rerank=retrieval_pb2.RERANK_MODE_ON)
    assert len(top2.hits) == 2
    assert top2.reranked

    ranked = _search(corpus, embedding, fusion_type=retrieval_pb2.FUSION_TYPE_RANKED, alpha=0.3)
    assert ranked.fusion_type == retrieval_pb2.FUSION_TYPE_RANKED
    assert ranked.alpha == pytest.approx(0.3)
    assert _documents(ranked)[0] == "venv.md"

    every = _search(corpus, embedding, alpha=0.5)
    cut = every.hits[2].score
    above = _search(corpus, embedding, alpha=0.5, min_score=cut)
    assert _documents(above) == _documents(every)[:3]
    assert all(hit.retrieval_score >= cut for hit in above.hits)

    vector_only = _search(corpus, embedding, alpha=1.0)
    keyword_only = _search(corpus, embedding, alpha=0.0)
    assert vector_only.alpha == 1.0
    assert keyword_only.alpha == 0.0
    # BM25 alone only finds chunks sharing a word with the question.
    assert len(keyword_only.hits) < len(vector_only.hits)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"alpha": -0.1}, "alpha: must be between 0 and 1"),
        ({"top_k": 0}, "top_k: must be between 1 and 100"),
        ({"rerank_candidates": -1}, "rerank_candidates: must be 0 (service default) or more"),
        (
            {"rerank_candidates": 500, "rerank": retrieval_pb2.RERANK_MODE_ON},
            "rerank_candidates: must be at most 200",
        ),
        ({"min_score": -1.0}, "min_score: must be a finite number >= 0"),
        ({"min_score": float("nan")}, "min_score: must be a finite number"),
        ({"document_ranking": 7}, "document_ranking: 7 is not a DocumentRanking"),
        (
            {"filters": [_filter("year", equals="soon")]},
            "filters[0].equals: 'soon' is not a number",
        ),
        (
            {"filters": [_filter("section")]},
            "filters[0]: set exactly one of equals, any_of or range",
        ),
    ],
)
def test_bad_knobs_are_invalid_argument_with_the_field_and_the_rule(
    corpus: retrieval_pb2_grpc.RetrievalServiceStub,
    embedding: embedding_pb2_grpc.EmbeddingServiceStub,
    fields: dict[str, Any],
    message: str,
) -> None:
    expect_status(
        lambda: _search(corpus, embedding, **fields), grpc.StatusCode.INVALID_ARGUMENT, message
    )
