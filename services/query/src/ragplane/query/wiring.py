"""The query service assembled once, at start-up: clients, breakers, guard, pipeline, ingestion.

Nothing here runs per request. The servicer receives the finished parts, and the guard gets
the embedding call it needs for the semantic cache from the same Dependencies the pipeline
uses: no part reaches back into another.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import grpc
import structlog

from ragplane.query.access import log_protections
from ragplane.query.backends import Backends
from ragplane.query.batches.mode import BatchMode
from ragplane.query.chunking import Chunker
from ragplane.query.config import BatchSettings, FlagSettings, GuardSettings, QuerySettings
from ragplane.query.dependencies import Dependencies
from ragplane.query.domain import GeneratedAnswer, Passage, Question
from ragplane.query.flags.shadow import ShadowRecords, ShadowRunner
from ragplane.query.flags.source import FlagSource
from ragplane.query.guard import QueryGuard
from ragplane.query.ingestion import Ingestor
from ragplane.query.metrics import REDIS_AVAILABLE
from ragplane.query.pipeline import QueryPipeline
from ragplane.query.quality.faithfulness import FaithfulnessScorer
from ragplane.query.quality.feedback import FeedbackStore
from ragplane.query.quality.judge import FaithfulnessJudge
from ragplane.query.servicer import QueryParts, QueryServicer
from ragplane.runtime.readiness import WarmedUp
from ragplane.runtime.redis_client import SharedRedis
from ragplane.v1 import query_pb2, query_pb2_grpc

log = structlog.get_logger(__name__)


def build_guard(
    settings: GuardSettings, dependencies: Dependencies, redis: SharedRedis | None
) -> QueryGuard:
    if redis is None:
        return QueryGuard(settings, None, None, dependencies.embed)
    semantic = None
    if settings.answer_cache_enabled and settings.semantic_cache_enabled:
        # Here only: weaviate-client takes longer to import than the rest of the service.
        from ragplane.query.caching.semantic import SemanticCache
        from ragplane.runtime.weaviate_client import weaviate_client

        semantic = SemanticCache(
            weaviate_client(settings),
            settings.semantic_collection,
            settings.answer_cache_ttl_s,
            settings.semantic_candidates,
            settings.weaviate_timeout_s,
        )
    return QueryGuard(settings, redis, semantic, dependencies.embed)


def build_faithfulness(
    settings: QuerySettings, dependencies: Dependencies
) -> FaithfulnessScorer | None:
    if not settings.faithfulness_enabled:
        return None
    return FaithfulnessScorer(dependencies.embed, settings.evidence_thresholds())


def build_judge(settings: QuerySettings, dependencies: Dependencies) -> FaithfulnessJudge | None:
    """The LLM judge, asking the generation service through the answers' own breaker."""
    judge_settings = settings.judge_settings()
    if judge_settings is None:
        return None
    # Failures count against the generation service's health as the answers' do: a judge
    # out of its own short budget is not slowness of the generation service.
    backends, cap_s = dependencies.backends, settings.generation_timeout_s

    async def ask(
        question: Question, passages: Sequence[Passage], timeout_s: float
    ) -> GeneratedAnswer:
        return await dependencies.generation.call(
            lambda t: backends.generate(question, passages, t), timeout_s, cap_s
        )

    return FaithfulnessJudge(ask, judge_settings)


def build_backends(settings: QuerySettings, generation_target: str) -> Backends:
    """The gRPC clients of the three services; the shadow's differ only in the generation one."""
    return Backends(
        settings.embedding_target,
        settings.retrieval_target,
        generation_target,
        settings.max_message_bytes,
        settings.tls,
        settings.channels,
        document_ranking=settings.document_ranking,
    )


def build_shadow(
    settings: QuerySettings, flag_settings: FlagSettings, dependencies: Dependencies
) -> ShadowRunner:
    # Backends of their own: a separate channel (its channels connect lazily, so only the
    # generation one is ever opened), and no breaker of the caller's path sees its failures.
    shadow_backends = build_backends(
        settings, flag_settings.shadow_generation_target or settings.generation_target
    )
    return ShadowRunner(
        shadow_backends,
        dependencies.embed,
        ShadowRecords(flag_settings.shadow_records_file),
        flag_settings.shadow_max_in_flight,
        flag_settings.shadow_timeout_s,
    )


def build_parts(
    settings: QuerySettings,
    guard_settings: GuardSettings,
    batch_settings: BatchSettings,
    flag_settings: FlagSettings,
) -> QueryParts:
    # Dependencies are not awaited here: a query service whose dependencies are down still
    # serves, and each request says which dependency failed.
    backends = build_backends(settings, settings.generation_target)
    dependencies = Dependencies(backends, settings, settings.embed_timeout_s)
    chunker = Chunker.from_file(
        settings.resolved_tokenizer_path(), settings.chunk_tokens, settings.chunk_overlap_tokens
    )
    redis = None
    if guard_settings.redis_enabled:
        redis = SharedRedis.connect("query-redis", guard_settings, REDIS_AVAILABLE)
    guard = build_guard(guard_settings, dependencies, redis)
    pipeline = QueryPipeline(
        dependencies,
        settings,
        build_faithfulness(settings, dependencies),
        build_judge(settings, dependencies),
        build_shadow(settings, flag_settings, dependencies),
    )
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
        flags=FlagSource(flag_settings.flags_file, flag_settings.flags_poll_s),
        batches=batches,
    )


@dataclass(eq=False)
class QueryApplication:
    """What the shared runtime (ragplane.runtime.server) runs: the servicer and its parts."""

    service_names: ClassVar[tuple[str, ...]] = (
        query_pb2.DESCRIPTOR.services_by_name["QueryService"].full_name,
    )

    settings: QuerySettings
    guard_settings: GuardSettings
    batch_settings: BatchSettings
    flag_settings: FlagSettings
    _parts: WarmedUp[QueryParts] = field(
        init=False, default_factory=lambda: WarmedUp("the query service")
    )

    def register(self, server: grpc.aio.Server) -> None:
        servicer = QueryServicer(self._parts)
        query_pb2_grpc.add_QueryServiceServicer_to_server(servicer, server)

    async def warm_up(self) -> None:
        parts = build_parts(
            self.settings, self.guard_settings, self.batch_settings, self.flag_settings
        )
        if parts.batches is not None:
            parts.batches.start()
        parts.flags.start()
        self._parts.set(parts)
        log_protections(self.guard_settings)
        settings = self.settings
        log.info("ready", embedding=settings.embedding_target, retrieval=settings.retrieval_target)

    async def close(self) -> None:
        parts = self._parts.peek()
        if parts is not None:
            await parts.close()
