"""The query service's requests, read and checked once, at the edge: protobuf in, domain out.

Each field has one rule. Rules that another service applies to the same field live in
ragplane.runtime.fields, so a request is refused here for the reason the service behind would
give, before it costs a rate-limit token, a Redis key or an embedding call.
"""

from __future__ import annotations

from collections.abc import Sequence

from ragplane.query.config import QuerySettings
from ragplane.query.domain import MetadataFilter, Question, SourceDocument, ValueBounds
from ragplane.runtime.errors import InvalidArgument
from ragplane.runtime.fields import (
    check_alpha,
    check_max_output_tokens,
    check_min_score,
    check_question,
    check_rerank_candidates,
    check_temperature,
    check_tenant,
    check_top_k,
)
from ragplane.v1 import common_pb2, query_pb2

_BOUNDS = ("greater_than", "greater_or_equal", "less_than", "less_or_equal")


def question_from(request: query_pb2.QueryRequest, settings: QuerySettings) -> Question:
    """The request as a Question with its defaults; INVALID_ARGUMENT naming a bad field."""
    check_tenant(request.tenant)
    check_question(request.query, "query", settings.max_query_chars)
    check_top_k(request.top_k, settings.max_top_k, zero_means_default=True)
    alpha = request.alpha if request.HasField("alpha") else None
    check_alpha(alpha)
    temperature = request.temperature if request.HasField("temperature") else None
    check_temperature(temperature)
    min_score = request.min_score if request.HasField("min_score") else None
    check_min_score(min_score)
    check_rerank_candidates(request.rerank_candidates)
    check_max_output_tokens(request.max_output_tokens, settings.max_output_tokens_limit)
    return Question(
        tenant=request.tenant,
        text=request.query.strip(),
        top_k=request.top_k or settings.default_top_k,
        alpha=alpha,
        filters=_filters(request.filters),
        max_output_tokens=request.max_output_tokens,
        fusion_type=request.fusion_type,
        rerank=request.rerank,
        rerank_candidates=request.rerank_candidates,
        min_score=min_score,
        temperature=temperature,
    )


def _filters(messages: Sequence[common_pb2.MetadataFilter]) -> tuple[MetadataFilter, ...]:
    filters = []
    for index, message in enumerate(messages):
        if not message.field:
            raise InvalidArgument.of(f"filters[{index}].field", "is required")
        bounds = None
        if message.HasField("range"):
            bounds = ValueBounds(
                **{
                    name: getattr(message.range, name)
                    for name in _BOUNDS
                    if message.range.HasField(name)  # type: ignore[arg-type]
                }
            )
        filters.append(MetadataFilter(message.field, message.equals, tuple(message.any_of), bounds))
    return tuple(filters)


def documents_from(
    request: query_pb2.IngestRequest, settings: QuerySettings
) -> list[SourceDocument]:
    """The request's documents; a malformed request is refused whole, before any work.

    What is wrong with one document's text fails that document alone (see ingestion.py).
    """
    check_tenant(request.tenant)
    documents = request.documents
    if not documents:
        raise InvalidArgument.of("documents", "at least one document is required")
    limit = settings.max_documents_per_ingest
    if len(documents) > limit:
        raise InvalidArgument.of("documents", f"{len(documents)} documents; the limit is {limit}")
    total_chars = sum(len(document.text) for document in documents)
    if total_chars > settings.max_ingest_chars:
        raise InvalidArgument.of(
            "documents",
            f"{total_chars:,} characters of text in one call; the limit is "
            f"{settings.max_ingest_chars:,}: send the documents in several calls",
        )
    seen: set[str] = set()
    for index, document in enumerate(documents):
        if not document.document_id.strip():
            raise InvalidArgument.of(f"documents[{index}].document_id", "is required")
        if document.document_id in seen:
            raise InvalidArgument.of(
                f"documents[{index}].document_id", f"{document.document_id!r} appears twice"
            )
        seen.add(document.document_id)
    return [SourceDocument(d.document_id, d.text, d.title, dict(d.metadata)) for d in documents]


def document_ids_from(request: query_pb2.DeleteDocumentsRequest) -> list[str]:
    check_tenant(request.tenant)
    if not request.document_ids:
        raise InvalidArgument.of("document_ids", "at least one document id is required")
    for index, document_id in enumerate(request.document_ids):
        if not document_id.strip():
            raise InvalidArgument.of(f"document_ids[{index}]", "is empty")
    return list(request.document_ids)
