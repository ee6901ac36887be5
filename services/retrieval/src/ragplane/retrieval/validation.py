"""Rules a retrieval request must follow before it reaches Weaviate."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from ragplane.retrieval.search import SearchOptions
from ragplane.retrieval.store import StoredChunk, validate_tenant
from ragplane.runtime.errors import InvalidArgument


def check_search(tenant: str, query_text: str, options: SearchOptions, max_top_k: int) -> None:
    validate_tenant(tenant)
    if not query_text.strip():
        raise InvalidArgument.of("query_text", "is required and must not be blank")
    alpha = options.alpha
    if alpha is not None and not 0.0 <= alpha <= 1.0:
        raise InvalidArgument.of("alpha", f"must be between 0 and 1, got {alpha}")
    if not 1 <= options.top_k <= max_top_k:
        raise InvalidArgument.of("top_k", f"must be between 1 and {max_top_k}, got {options.top_k}")
    if options.rerank_candidates < 0:
        raise InvalidArgument.of(
            "rerank_candidates",
            f"must be 0 (service default) or more, got {options.rerank_candidates}",
        )
    min_score = options.min_score
    if min_score is not None and not (math.isfinite(min_score) and min_score >= 0):
        raise InvalidArgument.of("min_score", f"must be a finite number >= 0, got {min_score}")


def check_upsert(
    tenant: str, chunks: Sequence[StoredChunk], chunk_counts: Mapping[str, int], max_chunks: int
) -> None:
    validate_tenant(tenant)
    for document_id, count in chunk_counts.items():
        if not document_id or count < 0:
            raise InvalidArgument.of(
                "document_chunk_counts", f"{document_id!r}: needs a document id and a count >= 0"
            )
    if not chunks:
        raise InvalidArgument.of("chunks", "at least one chunk is required")
    if len(chunks) > max_chunks:
        raise InvalidArgument.of("chunks", f"{len(chunks)} chunks; the limit is {max_chunks}")
    dimensions = len(chunks[0].vector)
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
        if not chunk.vector:
            raise InvalidArgument.of(f"{where}.vector", "is required")
        if len(chunk.vector) != dimensions:
            raise InvalidArgument.of(
                f"{where}.vector",
                f"has {len(chunk.vector)} dimensions; chunks[0] has {dimensions}",
            )


def check_delete(tenant: str, document_ids: Sequence[str]) -> None:
    validate_tenant(tenant)
    if not document_ids:
        raise InvalidArgument.of("document_ids", "at least one document id is required")
    check_documents("document_ids", document_ids)


def check_documents(name: str, document_ids: Sequence[str]) -> None:
    for index, document_id in enumerate(document_ids):
        if not document_id:
            raise InvalidArgument.of(f"{name}[{index}]", "is empty")
