"""gRPC face of the retrieval service."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass

import grpc
import structlog
import weaviate

from ragplane.retrieval.answer_caches import AnswerCaches
from ragplane.retrieval.config import RetrievalSettings
from ragplane.retrieval.documents import DocumentRanking
from ragplane.retrieval.filters import FieldFilter
from ragplane.retrieval.reranker import Reranker, RerankLimits, load_scorer
from ragplane.retrieval.retries import RetryPolicy
from ragplane.retrieval.search import SearchDefaults, Searcher, SearchOptions, SearchOutcome
from ragplane.retrieval.store import (
    ChunkStore,
    Fusion,
    Replication,
    StoredChunk,
    TenantInfo,
    TenantState,
)
from ragplane.retrieval.validation import (
    check_delete,
    check_documents,
    check_search,
    check_upsert,
)
from ragplane.runtime.context import RpcContext
from ragplane.runtime.messages import chunk_message
from ragplane.runtime.readiness import WarmedUp
from ragplane.runtime.redis_client import SharedRedis
from ragplane.runtime.resilience import Backoff, Deadline
from ragplane.runtime.weaviate_client import WeaviateFailure, weaviate_client
from ragplane.v1 import common_pb2, retrieval_pb2, retrieval_pb2_grpc

log = structlog.get_logger(__name__)

_FUSIONS = {
    retrieval_pb2.FUSION_TYPE_RELATIVE_SCORE: Fusion.RELATIVE_SCORE,
    retrieval_pb2.FUSION_TYPE_RANKED: Fusion.RANKED,
}
_FUSION_MESSAGES = {fusion: value for value, fusion in _FUSIONS.items()}
_RERANK = {
    retrieval_pb2.RERANK_MODE_UNSPECIFIED: None,
    retrieval_pb2.RERANK_MODE_ON: True,
    retrieval_pb2.RERANK_MODE_OFF: False,
}
_DOCUMENT_RANKINGS = {
    retrieval_pb2.DOCUMENT_RANKING_UNSPECIFIED: DocumentRanking.BEST_CHUNK,
    retrieval_pb2.DOCUMENT_RANKING_BEST_CHUNK: DocumentRanking.BEST_CHUNK,
    retrieval_pb2.DOCUMENT_RANKING_CHUNK_SUM: DocumentRanking.CHUNK_SUM,
}
_DOCUMENT_RANKING_MESSAGES = {
    DocumentRanking.BEST_CHUNK: retrieval_pb2.DOCUMENT_RANKING_BEST_CHUNK,
    DocumentRanking.CHUNK_SUM: retrieval_pb2.DOCUMENT_RANKING_CHUNK_SUM,
}
_TENANT_STATUS = {
    TenantState.ACTIVE: retrieval_pb2.TENANT_STATUS_ACTIVE,
    TenantState.INACTIVE: retrieval_pb2.TENANT_STATUS_INACTIVE,
    TenantState.OFFLOADED: retrieval_pb2.TENANT_STATUS_OFFLOADED,
    TenantState.CHANGING: retrieval_pb2.TENANT_STATUS_CHANGING,
}


def _stored_chunk(message: retrieval_pb2.ChunkWithVector) -> StoredChunk:
    chunk = message.chunk
    return StoredChunk(
        chunk_id=chunk.chunk_id,
        document_id=chunk.document_id,
        chunk_index=chunk.chunk_index,
        text=chunk.text,
        title=chunk.title,
        metadata=dict(chunk.metadata),
        vector=list(message.vector),
    )


def _field_filter(message: common_pb2.MetadataFilter) -> FieldFilter:
    bounds = message.range

    def bound(name: str) -> str | None:
        return str(getattr(bounds, name)) if bounds.HasField(name) else None  # type: ignore[arg-type]

    return FieldFilter(
        field=message.field,
        equals=message.equals,
        any_of=list(message.any_of),
        greater_than=bound("greater_than"),
        greater_or_equal=bound("greater_or_equal"),
        less_than=bound("less_than"),
        less_or_equal=bound("less_or_equal"),
    )


def search_options(request: retrieval_pb2.SearchRequest) -> SearchOptions:
    return SearchOptions(
        alpha=request.alpha if request.HasField("alpha") else None,
        fusion=_FUSIONS.get(request.fusion_type),
        top_k=request.top_k,
        rerank=_RERANK.get(request.rerank),
        rerank_candidates=request.rerank_candidates,
        min_score=request.min_score if request.HasField("min_score") else None,
        filters=[_field_filter(f) for f in request.filters],
        # The edge has already refused an enum value that is not in the contract.
        document_ranking=_DOCUMENT_RANKINGS[request.document_ranking],
    )


def _search_response(outcome: SearchOutcome) -> retrieval_pb2.SearchResponse:
    response = retrieval_pb2.SearchResponse(
        hits=[
            retrieval_pb2.SearchHit(
                chunk=chunk_message(ranked.hit.chunk),
                score=ranked.hit.score,
                retrieval_score=ranked.retrieval_score,
                vector_similarity=ranked.hit.vector_similarity,
                document_score=ranked.document_score,
            )
            for ranked in outcome.hits
        ],
        alpha=outcome.alpha,
        reranked=outcome.reranked,
        document_ranking=_DOCUMENT_RANKING_MESSAGES[outcome.document_ranking],
        fusion_type=_FUSION_MESSAGES.get(outcome.fusion, retrieval_pb2.FUSION_TYPE_UNSPECIFIED)
        if outcome.fusion
        else retrieval_pb2.FUSION_TYPE_UNSPECIFIED,
    )
    if outcome.rerank_skipped:
        response.degradations.append(
            common_pb2.Degradation(stage=common_pb2.STAGE_RERANK, reason=outcome.rerank_skipped)
        )
    stages = {"retrieval": common_pb2.STAGE_RETRIEVAL, "rerank": common_pb2.STAGE_RERANK}
    for name, duration_ms in outcome.timings_ms.items():
        response.timings.append(common_pb2.StageTiming(stage=stages[name], duration_ms=duration_ms))
    return response


def _tenant_message(info: TenantInfo) -> retrieval_pb2.Tenant:
    return retrieval_pb2.Tenant(name=info.name, status=_TENANT_STATUS[info.state])


def _deadline(context: RpcContext) -> Deadline:
    return Deadline(context.time_remaining())


@dataclass(frozen=True)
class RetrievalParts:
    """What the servicer serves with, assembled once at start-up."""

    settings: RetrievalSettings
    store: ChunkStore
    searcher: Searcher
    answer_caches: AnswerCaches


@dataclass(frozen=True)
class RetrievalServicer(retrieval_pb2_grpc.RetrievalServiceServicer):
    parts: WarmedUp[RetrievalParts]

    async def Upsert(
        self, request: retrieval_pb2.UpsertRequest, context: RpcContext
    ) -> retrieval_pb2.UpsertResponse:
        chunks = [_stored_chunk(item) for item in request.chunks]
        counts = dict(request.document_chunk_counts)
        settings = self.parts.get().settings
        check_upsert(
            request.tenant,
            chunks,
            counts,
            settings.max_chunks_per_upsert,
            settings.vector_dimensions,
        )
        outcome = await self.parts.get().store.upsert(
            request.tenant, chunks, counts, deadline=_deadline(context)
        )
        return retrieval_pb2.UpsertResponse(
            upserted=outcome.upserted,
            errors=[
                retrieval_pb2.ChunkError(chunk_id=chunk_id, message=message)
                for chunk_id, message in outcome.errors.items()
            ],
            removed_stale=outcome.removed_stale,
        )

    async def Search(
        self, request: retrieval_pb2.SearchRequest, context: RpcContext
    ) -> retrieval_pb2.SearchResponse:
        options = search_options(request)
        query_vector = list(request.query_vector)
        settings = self.parts.get().settings
        check_search(
            request.tenant,
            request.query_text,
            query_vector,
            options,
            settings.max_top_k,
            settings.vector_dimensions,
        )
        outcome = await self.parts.get().searcher.search(
            request.tenant,
            request.query_text,
            query_vector,
            options,
            _deadline(context),
        )
        return _search_response(outcome)

    async def Delete(
        self, request: retrieval_pb2.DeleteRequest, context: RpcContext
    ) -> retrieval_pb2.DeleteResponse:
        check_delete(request.tenant, list(request.document_ids))
        deleted = await self.parts.get().store.delete_documents(
            request.tenant, list(request.document_ids)
        )
        return retrieval_pb2.DeleteResponse(deleted_chunks=deleted)

    async def CreateTenant(
        self, request: retrieval_pb2.CreateTenantRequest, context: RpcContext
    ) -> retrieval_pb2.CreateTenantResponse:
        info, created = await self.parts.get().store.create_tenant(request.tenant)
        return retrieval_pb2.CreateTenantResponse(tenant=_tenant_message(info), created=created)

    async def ListTenants(
        self, request: retrieval_pb2.ListTenantsRequest, context: RpcContext
    ) -> retrieval_pb2.ListTenantsResponse:
        tenants = await self.parts.get().store.list_tenants()
        return retrieval_pb2.ListTenantsResponse(tenants=[_tenant_message(t) for t in tenants])

    async def DeactivateTenant(
        self, request: retrieval_pb2.DeactivateTenantRequest, context: RpcContext
    ) -> retrieval_pb2.DeactivateTenantResponse:
        store = await self._before_tenant_change(request.tenant, "deactivated")
        info = await store.set_tenant_active(request.tenant, active=False)
        return retrieval_pb2.DeactivateTenantResponse(tenant=_tenant_message(info))

    async def ActivateTenant(
        self, request: retrieval_pb2.ActivateTenantRequest, context: RpcContext
    ) -> retrieval_pb2.ActivateTenantResponse:
        store = await self._before_tenant_change(request.tenant)
        info = await store.set_tenant_active(request.tenant, active=True)
        return retrieval_pb2.ActivateTenantResponse(tenant=_tenant_message(info))

    async def DeleteTenant(
        self, request: retrieval_pb2.DeleteTenantRequest, context: RpcContext
    ) -> retrieval_pb2.DeleteTenantResponse:
        store = await self._before_tenant_change(request.tenant, "deleted")
        await store.delete_tenant(request.tenant)
        return retrieval_pb2.DeleteTenantResponse()

    async def _before_tenant_change(self, tenant: str, hides_answers: str = "") -> ChunkStore:
        """NOT_FOUND for an unknown tenant; when the change ``hides_answers`` (it makes the
        tenant's documents unreadable), its cached answers are invalidated first."""
        store = self.parts.get().store
        await store.require_tenant(tenant)
        if hides_answers:
            await self.parts.get().answer_caches.invalidate(tenant, hides_answers)
        return store

    async def CountChunks(
        self, request: retrieval_pb2.CountChunksRequest, context: RpcContext
    ) -> retrieval_pb2.CountChunksResponse:
        check_documents("document_ids", list(request.document_ids))
        counts = await self.parts.get().store.count_chunks(
            request.tenant, list(request.document_ids)
        )
        return retrieval_pb2.CountChunksResponse(
            total=counts.total, per_document=counts.per_document
        )


class RetrievalApplication:
    service_names = (retrieval_pb2.DESCRIPTOR.services_by_name["RetrievalService"].full_name,)

    def __init__(self, settings: RetrievalSettings) -> None:
        self._settings = settings
        self._parts: WarmedUp[RetrievalParts] = WarmedUp("the connection to Weaviate")
        self._client: weaviate.WeaviateAsyncClient | None = None
        self._reranker: Reranker | None = None

    def register(self, server: grpc.aio.Server) -> None:
        servicer = RetrievalServicer(self._parts)
        retrieval_pb2_grpc.add_RetrievalServiceServicer_to_server(servicer, server)

    async def warm_up(self) -> None:
        settings = self._settings
        client = weaviate_client(settings)
        self._client = client
        reranker = await asyncio.to_thread(self._load_reranker)
        self._reranker = reranker
        await self._connect(client)
        retry = RetryPolicy.of(settings.write_attempts, settings.write_backoff_s)
        replication = Replication(settings.replication_factor, settings.consistency_level)
        store = ChunkStore(
            client, settings.collection, settings.filterable_metadata, retry, replication
        )
        await store.ensure_collection()
        redis = SharedRedis.connect("retrieval-redis", settings) if settings.redis_enabled else None
        searcher = Searcher(store, reranker, self._search_defaults())
        self._parts.set(RetrievalParts(settings, store, searcher, AnswerCaches(redis)))
        log.info("connected to Weaviate", collection=settings.collection)

    def _load_reranker(self) -> Reranker:
        settings = self._settings
        scorer, unavailable = load_scorer(settings.reranker_path, settings.rerank_max_length)
        if scorer is not None:
            # The first pass allocates and compiles: paid here, not by the first search's
            # rerank time limit.
            scorer.score("warm-up", ["warm-up"] * settings.rerank_batch_size)
        limits = RerankLimits(
            settings.rerank_batch_size,
            settings.rerank_budget_ms / 1000,
            settings.rerank_deadline_reserve_ms / 1000,
        )
        return Reranker(scorer, unavailable, limits)

    def _search_defaults(self) -> SearchDefaults:
        settings = self._settings
        return SearchDefaults(
            alpha=settings.default_alpha,
            fusion=Fusion(settings.default_fusion),
            max_top_k=settings.max_top_k,
            rerank=settings.rerank_by_default,
            rerank_candidates=settings.rerank_candidates,
            max_rerank_candidates=settings.max_rerank_candidates,
            document_candidates=settings.document_candidates,
        )

    @staticmethod
    async def _connect(client: weaviate.WeaviateAsyncClient) -> None:
        backoff = Backoff(base_delay_s=0.5, max_delay_s=5.0)
        # Weaviate may start after us (or restart); wait for it rather than crash-loop.
        for retry in itertools.count():
            try:
                await client.connect()
                return
            except WeaviateFailure as error:
                delay = backoff.delay(retry)
                log.warning("waiting for Weaviate", error=str(error), retry_in_s=delay)
                await asyncio.sleep(delay)

    async def close(self) -> None:
        parts = self._parts.peek()
        if parts is not None:
            await parts.answer_caches.close()
        if self._reranker is not None:
            self._reranker.close()
        if self._client is not None:
            await self._client.close()
