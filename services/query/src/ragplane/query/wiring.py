"""The query service assembled once, at start-up: clients, breakers, guard, pipeline, ingestion.

Nothing here runs per request. The servicer receives the finished parts, and the guard gets
the embedding call it needs for the semantic cache from the same Dependencies the pipeline
uses: no part reaches back into another.
"""

from __future__ import annotations

import grpc
import structlog

from ragplane.query.access import log_protections
from ragplane.query.backends import Backends
from ragplane.query.batches.mode import BatchMode
from ragplane.query.caching.semantic import SemanticCache
from ragplane.query.chunking import Chunker
from ragplane.query.config import BatchSettings, GuardSettings, QuerySettings
from ragplane.query.dependencies import Dependencies
from ragplane.query.guard import QueryGuard
from ragplane.query.ingestion import Ingestor
from ragplane.query.metrics import REDIS_AVAILABLE
from ragplane.query.pipeline import QueryPipeline
from ragplane.query.quality.faithfulness import FaithfulnessScorer
from ragplane.query.quality.feedback import FeedbackStore
from ragplane.query.servicer import QueryParts, QueryServicer
from ragplane.runtime.readiness import WarmedUp
from ragplane.runtime.redis_client import SharedRedis
from ragplane.runtime.weaviate_client import weaviate_client
from ragplane.v1 import query_pb2, query_pb2_grpc

log = structlog.get_logger(__name__)


def build_guard(
    settings: GuardSettings, dependencies: Dependencies, redis: SharedRedis | None
) -> QueryGuard:
    if redis is None:
        return QueryGuard(settings, None, None, dependencies.embed)
    semantic = None
    if settings.answer_cache_enabled and settings.semantic_cache_enabled:
        semantic = SemanticCache(
            weaviate_client(settings),
            settings.semantic_collection,
            settings.answer_cache_ttl_s,
            settings.semantic_candidates,
        )
    return QueryGuard(settings, redis, semantic, dependencies.embed)


def build_faithfulness(
    settings: QuerySettings, dependencies: Dependencies
) -> FaithfulnessScorer | None:
    if not settings.faithfulness_enabled:
        return None
    return FaithfulnessScorer(dependencies.embed, settings.evidence_thresholds())


def build_parts(
    settings: QuerySettings, guard_settings: GuardSettings, batch_settings: BatchSettings
) -> QueryParts:
    # Dependencies are not awaited here: a query service whose dependencies are down still
    # serves, and each request says which dependency failed.
    backends = Backends(
        settings.embedding_target,
        settings.retrieval_target,
        settings.generation_target,
        settings.max_message_bytes,
        settings.tls,
        settings.channels,
        document_ranking=settings.document_ranking,
    )
    dependencies = Dependencies(backends, settings, settings.embed_timeout_s)
    chunker = Chunker.from_file(
        settings.resolved_tokenizer_path(), settings.chunk_tokens, settings.chunk_overlap_tokens
    )
    redis = None
    if guard_settings.redis_enabled:
        redis = SharedRedis.connect("query-redis", guard_settings, REDIS_AVAILABLE)
    guard = build_guard(guard_settings, dependencies, redis)
    pipeline = QueryPipeline(dependencies, settings, build_faithfulness(settings, dependencies))
    ingestor = Ingestor(backends, chunker, settings)
    batches = None
    if guard_settings.redis_enabled:
        batches = BatchMode.build(
            batch_settings, settings, guard_settings, guard, pipeline, ingestor
        )
    return QueryParts(
        settings=settings,
        backends=backends,
        guard=guard,
        feedback=FeedbackStore(redis, guard_settings.feedback_ttl_s) if redis else None,
        pipeline=pipeline,
        ingestor=ingestor,
        batches=batches,
    )


class QueryApplication:
    """What the shared runtime (ragplane.runtime.server) runs: the servicer and its parts."""

    service_names = (query_pb2.DESCRIPTOR.services_by_name["QueryService"].full_name,)

    def __init__(
        self,
        settings: QuerySettings,
        guard_settings: GuardSettings,
        batch_settings: BatchSettings,
    ) -> None:
        self._settings = settings
        self._guard_settings = guard_settings
        self._batch_settings = batch_settings
        self._parts: WarmedUp[QueryParts] = WarmedUp("the query service")

    def register(self, server: grpc.aio.Server) -> None:
        servicer = QueryServicer(self._parts)
        query_pb2_grpc.add_QueryServiceServicer_to_server(servicer, server)

    async def warm_up(self) -> None:
        parts = build_parts(self._settings, self._guard_settings, self._batch_settings)
        if parts.batches is not None:
            parts.batches.start()
        self._parts.set(parts)
        log_protections(self._guard_settings)
        settings = self._settings
        log.info("ready", embedding=settings.embedding_target, retrieval=settings.retrieval_target)

    async def close(self) -> None:
        parts = self._parts.peek()
        if parts is not None:
            await parts.close()
