"""The query service end to end: real embedding model, Weaviate and LLM server."""

from __future__ import annotations

import grpc
import pytest

from ragplane.cli.stack import Stack
from ragplane.v1 import common_pb2, query_pb2, query_pb2_grpc, retrieval_pb2, retrieval_pb2_grpc
from tests.integration.corpus import CORPUS_SUBSET
from tests.integration.errors import expect_status


def test_query_answers_with_citations_into_the_corpus_and_stage_timings(
    query: query_pb2_grpc.QueryServiceStub, docs_tenant: str
) -> None:
    response = query.Query(
        query_pb2.QueryRequest(
            tenant=docs_tenant, query="How do I create a virtual environment with venv?"
        ),
        timeout=120,
    )
    assert response.answer.strip()
    assert response.citations
    for citation in response.citations:
        assert citation.document_id in CORPUS_SUBSET
        assert citation.chunk_id.startswith(f"{citation.document_id}#")
        assert citation.snippet
    assert any(c.document_id.endswith("venv.rst.txt") for c in response.citations)
    stages = [timing.stage for timing in response.timings]
    assert stages == [
        # The stack's query service has its answer caches on (a miss here).
        common_pb2.STAGE_CACHE,
        common_pb2.STAGE_EMBEDDING,
        common_pb2.STAGE_RETRIEVAL,
        common_pb2.STAGE_GENERATION,
    ]
    assert all(timing.duration_ms > 0 for timing in response.timings)
    assert response.total_ms >= sum(timing.duration_ms for timing in response.timings)
    assert (response.provider, response.usage.output_tokens > 0) == ("local-smollm2", True)
    assert len(response.request_id) == 32
    assert not response.degradations


@pytest.mark.parametrize(
    ("fields", "code", "named"),
    [
        ({"tenant": "docs", "query": ""}, grpc.StatusCode.INVALID_ARGUMENT, "query"),
        ({"tenant": "docs", "query": " \n\t "}, grpc.StatusCode.INVALID_ARGUMENT, "query"),
        ({"tenant": "docs", "query": "x" * 2001}, grpc.StatusCode.INVALID_ARGUMENT, "query"),
        (
            {"tenant": "docs", "query": "venv", "top_k": -1},
            grpc.StatusCode.INVALID_ARGUMENT,
            "top_k",
        ),
        (
            {"tenant": "docs", "query": "venv", "top_k": 21},
            grpc.StatusCode.INVALID_ARGUMENT,
            "top_k",
        ),
        (
            {"tenant": "docs", "query": "venv", "alpha": 1.5},
            grpc.StatusCode.INVALID_ARGUMENT,
            "alpha",
        ),
        ({"query": "venv"}, grpc.StatusCode.INVALID_ARGUMENT, "tenant"),
        (
            {"tenant": "no-such-tenant", "query": "venv"},
            grpc.StatusCode.NOT_FOUND,
            "no-such-tenant",
        ),
    ],
)
def test_bad_query_gets_a_clear_status_naming_the_field(
    query: query_pb2_grpc.QueryServiceStub,
    docs_tenant: str,
    fields: dict[str, object],
    code: grpc.StatusCode,
    named: str,
) -> None:
    request = query_pb2.QueryRequest(**fields)  # type: ignore[arg-type]
    expect_status(lambda: query.Query(request, timeout=60), code, named)


def test_ingest_reports_each_document_in_request_order(
    query: query_pb2_grpc.QueryServiceStub,
) -> None:
    response = query.Ingest(
        query_pb2.IngestRequest(
            tenant="ingest-tests",
            documents=[
                query_pb2.Document(document_id="valves.md", text="Valves open clockwise."),
                query_pb2.Document(document_id="long.md", text="Gaskets seal joints. " * 200),
            ],
        ),
        timeout=120,
    )
    assert [(r.document_id, r.status, r.error) for r in response.results] == [
        ("valves.md", query_pb2.DOCUMENT_STATUS_INDEXED, ""),
        ("long.md", query_pb2.DOCUMENT_STATUS_INDEXED, ""),
    ]
    assert response.results[0].chunks == 1
    assert response.results[1].chunks > 1


@pytest.mark.parametrize(
    ("request_fields", "named"),
    [
        ({"tenant": "t", "documents": []}, "documents"),
        ({"documents": [query_pb2.Document(document_id="a", text="b")]}, "tenant"),
        ({"tenant": "t", "documents": [query_pb2.Document(text="b")]}, "documents[0].document_id"),
        (
            {
                "tenant": "t",
                "documents": [
                    query_pb2.Document(document_id="a", text="b"),
                    query_pb2.Document(document_id="a", text="c"),
                ],
            },
            "documents[1].document_id",
        ),
        (
            {"tenant": "t", "documents": [query_pb2.Document(document_id="a", text="x" * 100_001)]},
            "documents[0].text",
        ),
    ],
)
def test_bad_ingest_is_invalid_argument_naming_the_field(
    query: query_pb2_grpc.QueryServiceStub, request_fields: dict[str, object], named: str
) -> None:
    request = query_pb2.IngestRequest(**request_fields)  # type: ignore[arg-type]
    expect_status(
        lambda: query.Ingest(request, timeout=60), grpc.StatusCode.INVALID_ARGUMENT, named
    )


def test_reingesting_a_document_replaces_its_chunks(
    query: query_pb2_grpc.QueryServiceStub, stack: Stack
) -> None:
    long_text = "\n\n".join(f"Paragraph {n} about flanges and bolts. " * 12 for n in range(12))
    for text in (long_text, long_text, "Flanges are bolted."):
        response = query.Ingest(
            query_pb2.IngestRequest(
                tenant="reingest",
                documents=[query_pb2.Document(document_id="flanges.md", text=text)],
            ),
            timeout=120,
        )
    assert response.results[0].chunks == 1
    with grpc.insecure_channel(f"127.0.0.1:{stack.ports.retrieval}") as channel:
        hits = retrieval_pb2_grpc.RetrievalServiceStub(channel).Search(
            retrieval_pb2.SearchRequest(tenant="reingest", query_text="flanges", top_k=100),
            timeout=30,
        )
    assert [hit.chunk.chunk_id for hit in hits.hits] == ["flanges.md#0"]
