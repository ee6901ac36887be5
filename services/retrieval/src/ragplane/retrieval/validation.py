"""Rules a retrieval request must follow before it reaches Weaviate."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ragplane.retrieval.search import SearchOptions
from ragplane.retrieval.store import StoredChunk
from ragplane.runtime.errors import InvalidArgument
from ragplane.runtime.fields import (
    check_alpha,
    check_min_score,
    check_rerank_candidates,
    check_tenant,
    check_top_k,
    check_vector,
)


def check_search(
    tenant: str,
    query_text: str,
    query_vector: Sequence[float],
    options: SearchOptions,
    max_top_k: int,
    dimensions: int,
) -> None:
    check_tenant(tenant)
    if not query_text.strip():
        raise InvalidArgument.of("query_text", "is required and must not be blank")
    if query_vector:
        # Empty means BM25 only; anything else must be a vector of the model's kind.
        check_vector(query_vector, dimensions, "query_vector")
    check_alpha(options.alpha)
    check_top_k(options.top_k, max_top_k, zero_means_default=False)
    check_rerank_candidates(options.rerank_candidates)
    check_min_score(options.min_score)


def check_upsert(
    tenant: str,
    chunks: Sequence[StoredChunk],
    chunk_counts: Mapping[str, int],
    max_chunks: int,
    dimensions: int,
) -> None:
    check_tenant(tenant)
    for document_id, count in chunk_counts.items():
        if not document_id or count < 0:
            raise InvalidArgument.of(
                "document_chunk_counts", f"{document_id!r}: needs a document id and a count >= 0"
            )
    if not chunks:
        raise InvalidArgument.of("chunks", "at least one chunk is required")
    if len(chunks) > max_chunks:
        raise InvalidArgument.of("chunks", f"{len(chunks)} chunks; the limit is {max_chunks}")
    seen: set[str] = set()
    for index, chunk in enumerate(chunks):
        where = f"chunks[{index}]"
        if not chunk.chunk_id:
            raise InvalidArgument.of(f"{where}.chunk.chunk_id", "is required")
        if chunk.chunk_id in seen:
            raise InvalidArgument.of(f"{where}.chunk.chunk_id", f"{chunk.chunk_id!r} appears twice")
        seen.add(chunk.chunk_id)
        if not chunk.document_id:
            raise InvalidArgument.of(f"{where}.chunk.document_id", "is required")
        if chunk.chunk_index < 0:
            raise InvalidArgument.of(f"{where}.chunk.chunk_index", "must not be negative")
        check_vector(chunk.vector, dimensions, f"{where}.vector")


def check_delete(tenant: str, document_ids: Sequence[str]) -> None:
    check_tenant(tenant)
    if not document_ids:
        raise InvalidArgument.of("document_ids", "at least one document id is required")
    check_documents("document_ids", document_ids)


def check_documents(name: str, document_ids: Sequence[str]) -> None:
    for index, document_id in enumerate(document_ids):
        if not document_id:
            raise InvalidArgument.of(f"{name}[{index}]", "is empty")
