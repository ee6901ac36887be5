"""The services the query service calls, behind plain async methods and plain data."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import grpc

from ragplane.runtime.channels import open_channel
from ragplane.runtime.context import REQUEST_ID_HEADER, current_request_id
from ragplane.runtime.errors import FailedPrecondition, from_downstream
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


@dataclass(frozen=True)
class Hit:
    document_id: str
    chunk_id: str
    text: str
    score: float


@dataclass(frozen=True)
class SearchOptions:
    """The caller's search knobs; 0 and None leave the retrieval service's defaults."""

    alpha: float | None
    top_k: int
    filters: Sequence[common_pb2.MetadataFilter]
    fusion_type: int = 0
    rerank: int = 0
    rerank_candidates: int = 0
    min_score: float | None = None


@dataclass(frozen=True)
class Found:
    """A search's hits, best first, with what the retrieval service says about them."""

    hits: list[Hit]
    # STAGE_RERANK when the reranker was asked for and could not run.
    degradations: list[common_pb2.Degradation]
    # Time the reranker took inside the search; 0 when it did not run.
    rerank_ms: float


@dataclass(frozen=True)
class GeneratedAnswer:
    text: str
    cited_chunk_ids: list[str]
    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    degradations: list[common_pb2.Degradation]
    tier: int = 0
    tier_reason: str = ""


@dataclass
class ChunkToStore:
    document_id: str
    chunk_index: int
    text: str
    title: str
    metadata: dict[str, str]
    vector: list[float] = field(default_factory=list)

    @property
    def chunk_id(self) -> str:
        return f"{self.document_id}#{self.chunk_index}"


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
    ) -> None:
        self._channels = [
            open_channel(target, max_message_bytes, tls)
            for target in (embedding, retrieval, generation)
        ]
        self._embedding = embedding_pb2_grpc.EmbeddingServiceStub(self._channels[0])
        self._retrieval = retrieval_pb2_grpc.RetrievalServiceStub(self._channels[1])
        self._generation = generation_pb2_grpc.GenerationServiceStub(self._channels[2])

    async def embed(self, texts: Sequence[str], timeout_s: float) -> list[list[float]]:
        try:
            response = await self._embedding.Embed(
                embedding_pb2.EmbedRequest(texts=list(texts)), timeout=timeout_s
            )
        except grpc.aio.AioRpcError as error:
            raise from_downstream(error, "embedding service") from error
        return [list(item.values) for item in response.embeddings]

    async def search(
        self,
        tenant: str,
        query: str,
        vector: Sequence[float],
        options: SearchOptions,
        timeout_s: float,
    ) -> Found:
        request = retrieval_pb2.SearchRequest(
            tenant=tenant,
            query_text=query,
            query_vector=list(vector),
            top_k=options.top_k,
            filters=options.filters,
            fusion_type=options.fusion_type,  # type: ignore[arg-type]
            rerank=options.rerank,  # type: ignore[arg-type]
            rerank_candidates=options.rerank_candidates,
        )
        if options.alpha is not None:
            request.alpha = options.alpha
        if options.min_score is not None:
            request.min_score = options.min_score
        try:
            response = await self._retrieval.Search(request, timeout=timeout_s)
        except grpc.aio.AioRpcError as error:
            raise from_downstream(error, "retrieval service") from error
        return Found(
            hits=[
                Hit(hit.chunk.document_id, hit.chunk.chunk_id, hit.chunk.text, hit.score)
                for hit in response.hits
            ],
            degradations=list(response.degradations),
            rerank_ms=sum(
                t.duration_ms for t in response.timings if t.stage == common_pb2.STAGE_RERANK
            ),
        )

    async def generate(
        self,
        tenant: str,
        question: str,
        hits: Sequence[Hit],
        max_output_tokens: int,
        timeout_s: float,
        temperature: float | None = None,
        tier: int = 0,
    ) -> GeneratedAnswer:
        request = _generate_request(tenant, question, hits, max_output_tokens, temperature, tier)
        try:
            response = await self._generation.Generate(request, timeout=timeout_s)
        except grpc.aio.AioRpcError as error:
            raise from_downstream(error, "generation service") from error
        return _generated_answer(response)

    async def generate_stream(
        self,
        tenant: str,
        question: str,
        hits: Sequence[Hit],
        max_output_tokens: int,
        timeout_s: float,
        temperature: float | None = None,
        tier: int = 0,
    ) -> AsyncIterator[str | GeneratedAnswer]:
        """Text deltas as the generation service sends them, then the whole answer."""
        request = generation_pb2.GenerateStreamRequest(
            request=_generate_request(tenant, question, hits, max_output_tokens, temperature, tier)
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
        chunks: Sequence[ChunkToStore],
        document_chunk_counts: dict[str, int],
        timeout_s: float,
    ) -> StoreOutcome:
        request = retrieval_pb2.UpsertRequest(
            tenant=tenant,
            document_chunk_counts=document_chunk_counts,
            chunks=[
                retrieval_pb2.ChunkWithVector(
                    chunk=retrieval_pb2.Chunk(
                        chunk_id=c.chunk_id,
                        document_id=c.document_id,
                        chunk_index=c.chunk_index,
                        text=c.text,
                        title=c.title,
                        metadata=c.metadata,
                    ),
                    vector=c.vector,
                )
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


def _generate_request(
    tenant: str,
    question: str,
    hits: Sequence[Hit],
    max_output_tokens: int,
    temperature: float | None,
    tier: int,
) -> generation_pb2.GenerateRequest:
    request = generation_pb2.GenerateRequest(
        tenant=tenant,
        question=question,
        passages=[
            common_pb2.Passage(
                document_id=h.document_id, chunk_id=h.chunk_id, text=h.text, score=h.score
            )
            for h in hits
        ],
        max_output_tokens=max_output_tokens,
        tier=tier,  # type: ignore[arg-type]
    )
    if temperature is not None:
        request.temperature = temperature
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
        degradations=list(response.degradations),
        tier=response.tier,
        tier_reason=response.tier_reason,
    )
