"""The retrieval service against a real Weaviate process."""

from __future__ import annotations

import grpc
import pytest

from ragplane.v1 import (
    common_pb2,
    embedding_pb2,
    embedding_pb2_grpc,
    retrieval_pb2,
    retrieval_pb2_grpc,
)
from tests.integration.chunks import embedded_chunks
from tests.integration.errors import expect_status

TENANT = "retrieval-tests"


def _chunk_ids(retrieval: retrieval_pb2_grpc.RetrievalServiceStub, document_id: str) -> list[str]:
    response = retrieval.Search(
        retrieval_pb2.SearchRequest(
            tenant=TENANT,
            query_text="gear",
            top_k=100,
            filters=[common_pb2.MetadataFilter(field="document_id", equals=document_id)],
        ),
        timeout=30,
    )
    return sorted(hit.chunk.chunk_id for hit in response.hits)


def _upsert(
    retrieval: retrieval_pb2_grpc.RetrievalServiceStub,
    chunks: list[retrieval_pb2.ChunkWithVector],
    counts: dict[str, int] | None = None,
) -> retrieval_pb2.UpsertResponse:
    request = retrieval_pb2.UpsertRequest(
        tenant=TENANT, chunks=chunks, document_chunk_counts=counts or {}
    )
    return retrieval.Upsert(request, timeout=60)


def test_upserting_again_replaces_and_a_shorter_document_leaves_no_stale_chunks(
    embedding: embedding_pb2_grpc.EmbeddingServiceStub,
    retrieval: retrieval_pb2_grpc.RetrievalServiceStub,
) -> None:
    texts = ["gear one oils", "gear two grinds", "gear three spins"]
    first = _upsert(retrieval, embedded_chunks(embedding, "gears.md", texts), {"gears.md": 3})
    assert (first.upserted, list(first.errors)) == (3, [])
    again = _upsert(retrieval, embedded_chunks(embedding, "gears.md", texts), {"gears.md": 3})
    assert again.removed_stale == 0
    assert _chunk_ids(retrieval, "gears.md") == ["gears.md#0", "gears.md#1", "gears.md#2"]

    shorter = _upsert(retrieval, embedded_chunks(embedding, "gears.md", texts[:1]), {"gears.md": 1})
    assert shorter.removed_stale == 2
    assert _chunk_ids(retrieval, "gears.md") == ["gears.md#0"]


def test_hybrid_search_ranks_the_matching_chunk_first_and_filters_by_metadata(
    embedding: embedding_pb2_grpc.EmbeddingServiceStub,
    retrieval: retrieval_pb2_grpc.RetrievalServiceStub,
) -> None:
    _upsert(
        retrieval, embedded_chunks(embedding, "boats.md", ["sailing boats use a keel"], "marine")
    )
    _upsert(
        retrieval,
        embedded_chunks(embedding, "bread.md", ["sourdough bread needs a starter"], "food"),
    )
    query = "how does a sailboat stay upright"
    vector = embedding.Embed(embedding_pb2.EmbedRequest(texts=[query]), timeout=60).embeddings[0]
    search = retrieval_pb2.SearchRequest(
        tenant=TENANT, query_text=query, query_vector=list(vector.values), top_k=3, alpha=0.5
    )
    hits = retrieval.Search(search, timeout=30).hits
    assert hits[0].chunk.document_id == "boats.md"
    assert hits[0].chunk.metadata["section"] == "marine"

    search.filters.append(common_pb2.MetadataFilter(field="section", equals="food"))
    filtered = retrieval.Search(search, timeout=30).hits
    assert [hit.chunk.document_id for hit in filtered] == ["bread.md"]


def test_delete_removes_every_chunk_of_a_document(
    embedding: embedding_pb2_grpc.EmbeddingServiceStub,
    retrieval: retrieval_pb2_grpc.RetrievalServiceStub,
) -> None:
    _upsert(retrieval, embedded_chunks(embedding, "gone.md", ["gear a", "gear b"]))
    deleted = retrieval.Delete(
        retrieval_pb2.DeleteRequest(tenant=TENANT, document_ids=["gone.md"]), timeout=30
    )
    assert deleted.deleted_chunks == 2
    assert _chunk_ids(retrieval, "gone.md") == []


def test_unknown_tenant_is_not_found(retrieval: retrieval_pb2_grpc.RetrievalServiceStub) -> None:
    expect_status(
        lambda: retrieval.Search(
            retrieval_pb2.SearchRequest(tenant="nobody-here", query_text="x", top_k=1), timeout=10
        ),
        grpc.StatusCode.NOT_FOUND,
        "nobody-here",
    )


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        ({"tenant": "", "query_text": "x", "top_k": 1}, "tenant"),
        ({"tenant": "bad tenant!", "query_text": "x", "top_k": 1}, "tenant"),
        ({"tenant": TENANT, "query_text": "  ", "top_k": 1}, "query_text"),
        ({"tenant": TENANT, "query_text": "x", "top_k": 0}, "top_k"),
        ({"tenant": TENANT, "query_text": "x", "top_k": 101}, "top_k"),
        (
            {
                "tenant": TENANT,
                "query_text": "x",
                "top_k": 1,
                "alpha": 1.5,
                "query_vector": [0.1] * 384,
            },
            "alpha",
        ),
    ],
)
def test_bad_search_is_invalid_argument_naming_the_field(
    retrieval: retrieval_pb2_grpc.RetrievalServiceStub,
    request_fields: dict[str, object],
    field: str,
) -> None:
    request = retrieval_pb2.SearchRequest(**request_fields)  # type: ignore[arg-type]
    expect_status(
        lambda: retrieval.Search(request, timeout=10), grpc.StatusCode.INVALID_ARGUMENT, field
    )


def test_filter_on_an_undeclared_field_is_invalid_argument(
    embedding: embedding_pb2_grpc.EmbeddingServiceStub,
    retrieval: retrieval_pb2_grpc.RetrievalServiceStub,
) -> None:
    _upsert(retrieval, embedded_chunks(embedding, "any.md", ["gear"]))
    request = retrieval_pb2.SearchRequest(
        tenant=TENANT,
        query_text="gear",
        top_k=1,
        filters=[common_pb2.MetadataFilter(field="colour", equals="red")],
    )
    expect_status(
        lambda: retrieval.Search(request, timeout=10),
        grpc.StatusCode.INVALID_ARGUMENT,
        "filters[0].field",
        "colour",
    )


def test_chunks_with_mixed_vector_sizes_are_rejected(
    embedding: embedding_pb2_grpc.EmbeddingServiceStub,
    retrieval: retrieval_pb2_grpc.RetrievalServiceStub,
) -> None:
    chunks = embedded_chunks(embedding, "mixed.md", ["gear a", "gear b"])
    del chunks[1].vector[10:]
    expect_status(
        lambda: _upsert(retrieval, chunks), grpc.StatusCode.INVALID_ARGUMENT, "chunks[1].vector"
    )
