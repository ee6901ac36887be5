"""The services the query service calls, behind plain async methods and the domain's types.

This module and the gRPC edge (requests.py, responses.py) are the only places that translate
between the domain and the protobuf contracts.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass

import grpc

from ragplane.query.config import DocumentRanking
from ragplane.query.domain import (
    Cause,
    Chunk,
    Degradation,
    GeneratedAnswer,
    MetadataFilter,
    Passage,
    Question,
    SearchResult,
)
from ragplane.query.timings import Stage
from ragplane.runtime.channels import ChannelSettings, open_channel
from ragplane.runtime.context import REQUEST_ID_HEADER, current_request_id
from ragplane.runtime.errors import FailedPrecondition, from_downstream
from ragplane.runtime.messages import chunk_message
from ragplane.runtime.tls import TlsSettings
from ragplane.v1 import (
    common_pb2,
    embedding_pb2,
    embedding_pb2_grpc,
    generation_pb2,
    generation_pb2_grpc,
    retrieval_pb2,
    retrieval_pb2_grpc,
)

_DOCUMENT_RANKINGS = {
    "best_chunk": retrieval_pb2.DOCUMENT_RANKING_BEST_CHUNK,
    "chunk_sum": retrieval_pb2.DOCUMENT_RANKING_CHUNK_SUM,
}


@dataclass(frozen=True)
class StoreOutcome:
    failed_chunks: dict[str, str]


class Backends:
    """gRPC clients of the embedding, retrieval and generation services."""

    def __init__(
        self,
        embedding: str,
        retrieval: str,
        generation: str,
        max_message_bytes: int,
        tls: TlsSettings | None = None,
        channel_settings: ChannelSettings | None = None,
        *,
        document_ranking: DocumentRanking,
    ) -> None:
        self._channels = [
            open_channel(target, max_message_bytes, tls, channel_settings)
            for target in (embedding, retrieval, generation)
        ]
        self._embedding = embedding_pb2_grpc.EmbeddingServiceStub(self._channels[0])
        self._retrieval = retrieval_pb2_grpc.RetrievalServiceStub(self._channels[1])
        self._generation = generation_pb2_grpc.GenerationServiceStub(self._channels[2])
        self._document_ranking = _DOCUMENT_RANKINGS[document_ranking]

    async def embed(self, texts: Sequence[str], timeout_s: float) -> list[list[float]]:
        try:
            response = await self._embedding.Embed(
                embedding_pb2.EmbedRequest(texts=list(texts)), timeout=timeout_s
            )
        except grpc.aio.AioRpcError as error:
            raise from_downstream(error, "embedding service") from error
        return [list(item.values) for item in response.embeddings]

    async def search(
        self, question: Question, vector: Sequence[float], timeout_s: float
    ) -> SearchResult:
        """A hybrid search for ``question``; BM25 only when ``vector`` is empty."""
        request = retrieval_pb2.SearchRequest(
            tenant=question.tenant,
            query_text=question.text,
            query_vector=list(vector),
            top_k=question.top_k,
            filters=[_filter_message(f) for f in question.filters],
            fusion_type=question.fusion_type,  # type: ignore[arg-type]
            rerank=question.rerank,  # type: ignore[arg-type]
            rerank_candidates=question.rerank_candidates,
            document_ranking=self._document_ranking,
        )
        if question.alpha is not None:
            request.alpha = question.alpha
        if question.min_score is not None:
            request.min_score = question.min_score
        try:
            response = await self._retrieval.Search(request, timeout=timeout_s)
        except grpc.aio.AioRpcError as error:
            raise from_downstream(error, "retrieval service") from error
        return SearchResult(
            passages=[
                Passage(
                    hit.chunk.document_id,
                    hit.chunk.chunk_id,
                    hit.chunk.text,
                    hit.score,
                    hit.vector_similarity if hit.HasField("vector_similarity") else None,
                )
                for hit in response.hits
            ],
            degradations=[_degradation(d) for d in response.degradations],
            rerank_ms=sum(
                t.duration_ms for t in response.timings if t.stage == common_pb2.STAGE_RERANK
            ),
            alpha=response.alpha,
            reranked=response.reranked,
        )

    async def generate(
        self, question: Question, passages: Sequence[Passage], timeout_s: float
    ) -> GeneratedAnswer:
        request = _generate_request(question, passages)
        try:
            response = await self._generation.Generate(request, timeout=timeout_s)
        except grpc.aio.AioRpcError as error:
            raise from_downstream(error, "generation service") from error
        return _generated_answer(response)

    async def generate_stream(
        self, question: Question, passages: Sequence[Passage], timeout_s: float
    ) -> AsyncGenerator[str | GeneratedAnswer, None]:
        """Text deltas as the generation service sends them, then the whole answer."""
        request = generation_pb2.GenerateStreamRequest(
            request=_generate_request(question, passages)
        )
        # Said explicitly: on stream calls the request id the channel's interceptor adds does
        # not arrive (OpenTelemetry's stream interceptor drops it), unlike on unary calls.
        metadata = ((REQUEST_ID_HEADER, current_request_id.get()),)
        call = self._generation.GenerateStream(request, timeout=timeout_s, metadata=metadata)
        try:
            async for message in call:
                if message.HasField("done"):
                    yield _generated_answer(message.done)
                else:
                    yield message.text_delta
        except grpc.aio.AioRpcError as error:
            raise from_downstream(error, "generation service") from error
        finally:
            # Also when our own caller cancelled: the generation service must stop too.
            call.cancel()

    async def store(
        self,
        tenant: str,
        chunks: Sequence[Chunk],
        document_chunk_counts: dict[str, int],
        timeout_s: float,
    ) -> StoreOutcome:
        request = retrieval_pb2.UpsertRequest(
            tenant=tenant,
            document_chunk_counts=document_chunk_counts,
            chunks=[
                retrieval_pb2.ChunkWithVector(chunk=chunk_message(c), vector=c.vector)
                for c in chunks
            ],
        )
        try:
            response = await self._retrieval.Upsert(request, timeout=timeout_s)
        except grpc.aio.AioRpcError as error:
            raise from_downstream(error, "retrieval service") from error
        return StoreOutcome({e.chunk_id: e.message for e in response.errors})

    async def ensure_active_tenant(self, tenant: str, timeout_s: float) -> None:
        """Create the tenant if it is new; FAILED_PRECONDITION when it exists but is not active."""
        request = retrieval_pb2.CreateTenantRequest(tenant=tenant)
        try:
            response = await self._retrieval.CreateTenant(request, timeout=timeout_s)
        except grpc.aio.AioRpcError as error:
            raise from_downstream(error, "retrieval service") from error
        status = response.tenant.status
        if status != retrieval_pb2.TENANT_STATUS_ACTIVE:
            state = retrieval_pb2.TenantStatus.Name(status).removeprefix("TENANT_STATUS_").lower()
            raise FailedPrecondition(
                f"tenant {tenant!r} is {state}; activate it (ActivateTenant) before ingesting"
            )

    async def delete(self, tenant: str, document_ids: Sequence[str], timeout_s: float) -> int:
        """Remove the documents' chunks; returns how many chunks were removed."""
        request = retrieval_pb2.DeleteRequest(tenant=tenant, document_ids=list(document_ids))
        try:
            response = await self._retrieval.Delete(request, timeout=timeout_s)
        except grpc.aio.AioRpcError as error:
            raise from_downstream(error, "retrieval service") from error
        return response.deleted_chunks

    async def close(self) -> None:
        for channel in self._channels:
            await channel.close()


def _filter_message(item: MetadataFilter) -> common_pb2.MetadataFilter:
    message = common_pb2.MetadataFilter(field=item.field, equals=item.equals, any_of=item.any_of)
    if item.bounds is not None:
        bounds = item.bounds
        message.range.SetInParent()
        for name in ("greater_than", "greater_or_equal", "less_than", "less_or_equal"):
            value = getattr(bounds, name)
            if value is not None:
                setattr(message.range, name, value)
    return message


def _degradation(message: common_pb2.Degradation) -> Degradation:
    return Degradation(
        Stage(message.stage), Cause(message.cause), message.reason, message.dependency
    )


def _generate_request(
    question: Question, passages: Sequence[Passage]
) -> generation_pb2.GenerateRequest:
    request = generation_pb2.GenerateRequest(
        tenant=question.tenant,
        question=question.text,
        passages=[
            common_pb2.Passage(
                document_id=p.document_id, chunk_id=p.chunk_id, text=p.text, score=p.score
            )
            for p in passages
        ],
        max_output_tokens=question.max_output_tokens,
        tier=question.tier,  # type: ignore[arg-type]
        prompt_version=question.prompt_version,  # type: ignore[arg-type]
    )
    if question.temperature is not None:
        request.temperature = question.temperature
    return request


def _generated_answer(response: generation_pb2.GenerateResponse) -> GeneratedAnswer:
    return GeneratedAnswer(
        text=response.text,
        cited_chunk_ids=[c.chunk_id for c in response.citations],
        provider=response.provider,
        model=response.model,
        input_tokens=response.usage.input_tokens,
        output_tokens=response.usage.output_tokens,
        cost_usd=response.cost_usd,
        degradations=[_degradation(d) for d in response.degradations],
        tier=response.tier,
        tier_reason=response.tier_reason,
        finish_reason=response.finish_reason,
    )
