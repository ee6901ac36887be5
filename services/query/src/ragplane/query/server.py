"""gRPC face of the query service."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import grpc
import structlog

from ragplane.query.backends import Backends, Hit
from ragplane.query.budget import Budget
from ragplane.query.chunking import Chunker
from ragplane.query.config import GuardSettings, QuerySettings
from ragplane.query.dependencies import Dependencies
from ragplane.query.gateway import build_guard, cached_reply, log_protections
from ragplane.query.guard import Admission, QueryGuard
from ragplane.query.ingestion import Ingestor, SourceDocument
from ragplane.query.metrics import DEGRADATIONS
from ragplane.query.pipeline import (
    QueryEmbedding,
    QueryPipeline,
    QueryResult,
    Question,
    Sources,
)
from ragplane.runtime.audit import audit_note
from ragplane.runtime.context import RpcContext, current_request_id
from ragplane.runtime.edge import StringLimits
from ragplane.runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from ragplane.runtime.fields import check_tenant
from ragplane.runtime.readiness import WarmedUp
from ragplane.v1 import common_pb2, query_pb2, query_pb2_grpc

log = structlog.get_logger(__name__)

# Errors that refuse a request before it touches any document: no cached answer is stale.
_NOTHING_CHANGED = (InvalidArgument, NotFound, FailedPrecondition)


def _question(request: query_pb2.QueryRequest) -> Question:
    return Question(
        tenant=request.tenant,
        text=request.query,
        top_k=request.top_k,
        alpha=request.alpha if request.HasField("alpha") else None,
        filters=list(request.filters),
        max_output_tokens=request.max_output_tokens,
        fusion_type=request.fusion_type,
        rerank=request.rerank,
        rerank_candidates=request.rerank_candidates,
        min_score=request.min_score if request.HasField("min_score") else None,
        temperature=request.temperature if request.HasField("temperature") else None,
    )


def _known_embedding(admission: Admission) -> QueryEmbedding | None:
    if admission.vector is None:
        return None
    return QueryEmbedding(admission.vector, admission.embedding_ms)


def _budget(context: RpcContext, default_s: float) -> Budget:
    remaining = context.time_remaining()
    return Budget(remaining if remaining is not None else default_s)


class QueryServicer(query_pb2_grpc.QueryServiceServicer):
    def __init__(
        self,
        pipeline: WarmedUp[QueryPipeline],
        ingestor: WarmedUp[Ingestor],
        settings: QuerySettings,
        guard: WarmedUp[QueryGuard],
        backends: WarmedUp[Backends],
    ) -> None:
        self._pipeline = pipeline
        self._ingestor = ingestor
        self._settings = settings
        self._guard = guard
        self._backends = backends

    async def Query(
        self, request: query_pb2.QueryRequest, context: RpcContext
    ) -> query_pb2.QueryResponse:
        started = time.perf_counter()
        budget = _budget(context, self._settings.default_timeout_s)
        admission = await self._admit(request, budget)
        if admission.cached is not None:
            elapsed_ms = (time.perf_counter() - started) * 1000
            return cached_reply(admission, self._settings.snippet_chars, elapsed_ms, budget.total_s)
        # The semantic cache lookup embedded the question already: no second embedding.
        result = await self._pipeline.get().answer(
            admission.question, budget, _known_embedding(admission)
        )
        await self._settle(admission, result)
        return self._response(result, started, admission)

    async def QueryStream(
        self, request: query_pb2.QueryRequest, context: RpcContext
    ) -> AsyncIterator[query_pb2.QueryStreamResponse]:
        started = time.perf_counter()
        budget = _budget(context, self._settings.default_timeout_s)
        admission = await self._admit(request, budget)
        if admission.cached is not None:
            elapsed_ms = (time.perf_counter() - started) * 1000
            reply = cached_reply(
                admission, self._settings.snippet_chars, elapsed_ms, budget.total_s
            )
            sources = query_pb2.QuerySources(citations=reply.citations)
            yield query_pb2.QueryStreamResponse(sources=sources)
            yield query_pb2.QueryStreamResponse(answer_delta=reply.answer)
            yield query_pb2.QueryStreamResponse(done=reply)
            return
        events = self._pipeline.get().stream(
            admission.question, budget, _known_embedding(admission)
        )
        async for event in events:
            if isinstance(event, Sources):
                sources = query_pb2.QuerySources(citations=self._citations(event.hits))
                yield query_pb2.QueryStreamResponse(sources=sources)
            elif isinstance(event, QueryResult):
                await self._settle(admission, event)
                done = self._response(event, started, admission)
                yield query_pb2.QueryStreamResponse(done=done)
            else:
                yield query_pb2.QueryStreamResponse(answer_delta=event)

    async def _admit(self, request: query_pb2.QueryRequest, budget: Budget) -> Admission:
        """Rate limit, answer caches and spend budget, before any work is done."""
        question = self._pipeline.get().validate(_question(request))
        started = time.perf_counter()
        admission = await self._guard.get().admit(question, budget)
        # The question's embedding is reported as the embedding stage, not here.
        admission.guard_ms = (time.perf_counter() - started) * 1000 - admission.embedding_ms
        return admission

    async def _settle(self, admission: Admission, result: QueryResult) -> None:
        """Book the cost and cache the answer; report admit + settle as the cache stage."""
        guard = self._guard.get()
        started = time.perf_counter()
        await guard.settle(admission, result)
        if guard.consults_redis:
            settle_ms = (time.perf_counter() - started) * 1000
            result.timings.insert(0, (common_pb2.STAGE_CACHE, admission.guard_ms + settle_ms))

    def _citations(self, hits: Sequence[Hit]) -> list[common_pb2.Citation]:
        snippet = self._settings.snippet_chars
        return [
            common_pb2.Citation(
                document_id=hit.document_id,
                chunk_id=hit.chunk_id,
                score=hit.score,
                snippet=hit.text[:snippet],
            )
            for hit in hits
        ]

    def _response(
        self, result: QueryResult, started: float, admission: Admission
    ) -> query_pb2.QueryResponse:
        degradations = [*admission.degradations, *result.degradations]
        for degradation in degradations:
            DEGRADATIONS.labels(
                common_pb2.Stage.Name(degradation.stage),
                common_pb2.DegradationCause.Name(degradation.cause),
            ).inc()
        return query_pb2.QueryResponse(
            answer=result.answer,
            citations=self._citations(result.citations),
            timings=[
                common_pb2.StageTiming(stage=stage, duration_ms=ms)  # type: ignore[arg-type]
                for stage, ms in result.timings
            ],
            total_ms=(time.perf_counter() - started) * 1000,
            provider=result.provider,
            model=result.model,
            usage=common_pb2.TokenUsage(
                input_tokens=result.input_tokens, output_tokens=result.output_tokens
            ),
            request_id=current_request_id.get(),
            cost_usd=result.cost_usd,
            degradations=degradations,
            budget_ms=result.budget_s * 1000,
            cache=admission.cache_info,
            tier=result.tier,  # type: ignore[arg-type]
            tier_reason=admission.tier_reason or result.tier_reason,
        )

    async def Ingest(
        self, request: query_pb2.IngestRequest, context: RpcContext
    ) -> query_pb2.IngestResponse:
        documents = [
            SourceDocument(d.document_id, d.text, d.title, dict(d.metadata))
            for d in request.documents
        ]
        async with self._changing_documents(request.tenant):
            outcomes = await self._ingestor.get().ingest(
                request.tenant, documents, _budget(context, self._settings.ingest_timeout_s)
            )
        audit_note(documents=len(documents), indexed=sum(o.indexed for o in outcomes))
        return query_pb2.IngestResponse(
            results=[
                query_pb2.DocumentResult(
                    document_id=o.document_id,
                    status=query_pb2.DOCUMENT_STATUS_INDEXED
                    if o.indexed
                    else query_pb2.DOCUMENT_STATUS_FAILED,
                    chunks=len(o.chunks) if o.indexed else 0,
                    error=o.error,
                )
                for o in outcomes
            ]
        )

    @asynccontextmanager
    async def _changing_documents(self, tenant: str) -> AsyncIterator[None]:
        """Invalidate the tenant's cached answers after a change, also one that failed part-way
        (some documents may have changed already); not after a request refused up front."""
        try:
            yield
        except _NOTHING_CHANGED:
            raise
        except BaseException:
            await self._guard.get().documents_changed(tenant)
            raise
        await self._guard.get().documents_changed(tenant)

    async def DeleteDocuments(
        self, request: query_pb2.DeleteDocumentsRequest, context: RpcContext
    ) -> query_pb2.DeleteDocumentsResponse:
        check_tenant(request.tenant)
        if not request.document_ids:
            raise InvalidArgument.of("document_ids", "at least one document id is required")
        for index, document_id in enumerate(request.document_ids):
            if not document_id.strip():
                raise InvalidArgument.of(f"document_ids[{index}]", "is empty")
        async with self._changing_documents(request.tenant):
            deleted = await self._backends.get().delete(
                request.tenant,
                list(request.document_ids),
                _budget(context, self._settings.ingest_timeout_s).remaining("delete"),
            )
        audit_note(documents=len(request.document_ids), deleted_chunks=deleted)
        return query_pb2.DeleteDocumentsResponse(deleted_chunks=deleted)


class QueryApplication:
    service_names = (query_pb2.DESCRIPTOR.services_by_name["QueryService"].full_name,)

    def __init__(self, settings: QuerySettings, guard_settings: GuardSettings) -> None:
        self._settings = settings
        self._guard_settings = guard_settings
        self._pipeline: WarmedUp[QueryPipeline] = WarmedUp("the query pipeline")
        self._ingestor: WarmedUp[Ingestor] = WarmedUp("the ingestion pipeline")
        self._guard: WarmedUp[QueryGuard] = WarmedUp("the caches and limits")
        self._ready_backends: WarmedUp[Backends] = WarmedUp("the downstream clients")
        self._backends: Backends | None = None

    @property
    def string_limits(self) -> StringLimits:
        return self._settings.string_limits()

    def register(self, server: grpc.aio.Server) -> None:
        query_pb2_grpc.add_QueryServiceServicer_to_server(
            QueryServicer(
                self._pipeline, self._ingestor, self._settings, self._guard, self._ready_backends
            ),
            server,
        )

    async def warm_up(self) -> None:
        settings = self._settings
        # Dependencies are not awaited here: a query service whose dependencies are down still
        # serves, and each request says which dependency failed.
        backends = Backends(
            settings.embedding_target,
            settings.retrieval_target,
            settings.generation_target,
            settings.max_message_bytes,
            settings.tls,
        )
        self._backends = backends
        self._ready_backends.set(backends)
        dependencies = Dependencies(settings.breaker_fail_max, settings.breaker_reset_timeout_s)
        embed_cap_s = settings.embed_timeout_s

        async def embed_for_cache(texts: Sequence[str], timeout_s: float) -> list[list[float]]:
            # Same cap and breaker as the pipeline's embedding: a slow or dead embedding service
            # must not spend the query's deadline on a cache lookup.
            return await dependencies.embedding.call(
                lambda t: backends.embed(texts, t), min(timeout_s, embed_cap_s), embed_cap_s
            )

        self._guard.set(build_guard(self._guard_settings, embed_for_cache))
        log_protections(self._guard_settings)
        chunker = Chunker.from_file(
            settings.resolved_tokenizer_path(),
            settings.chunk_tokens,
            settings.chunk_overlap_tokens,
        )
        self._pipeline.set(QueryPipeline(backends, dependencies, settings))
        self._ingestor.set(Ingestor(backends, chunker, settings))
        log.info("ready", embedding=settings.embedding_target, retrieval=settings.retrieval_target)

    async def close(self) -> None:
        if self._backends is not None:
            await self._backends.close()
        guard = self._guard.peek()
        if guard is not None:
            await guard.close()
