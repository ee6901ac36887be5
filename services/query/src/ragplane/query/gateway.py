"""Assembly of the query service's protections from its settings: who may call what (API keys),
the audit trail, and the guard (rate limits, answer caches, spend budgets)."""

from __future__ import annotations

import grpc
import structlog

from ragplane.query.caching.semantic import SemanticCache
from ragplane.query.config import GuardSettings
from ragplane.query.guard import Admission, Embed, QueryGuard
from ragplane.query.shared_redis import SharedRedis
from ragplane.runtime.audit import AuditInterceptor, audit_principal
from ragplane.runtime.auth import AuthInterceptor, Authorizer, Role, load_key_ring
from ragplane.runtime.context import current_request_id
from ragplane.v1 import common_pb2, query_pb2

log = structlog.get_logger(__name__)

_SERVICE = "/ragplane.v1.QueryService/"
ROLES_BY_METHOD = {
    f"{_SERVICE}Query": Role.QUERY,
    f"{_SERVICE}QueryStream": Role.QUERY,
    f"{_SERVICE}Ingest": Role.INGEST,
    f"{_SERVICE}DeleteDocuments": Role.INGEST,
}
AUDITED_ACTIONS = {
    f"{_SERVICE}Query": "query",
    f"{_SERVICE}QueryStream": "query",
    f"{_SERVICE}Ingest": "ingest",
    f"{_SERVICE}DeleteDocuments": "delete_documents",
}


def server_interceptors(settings: GuardSettings) -> list[grpc.aio.ServerInterceptor]:
    """Audit outside auth, so that refused calls are audited too."""
    keys = load_key_ring(settings.api_keys_file, settings.api_keys)
    interceptors: list[grpc.aio.ServerInterceptor] = [AuditInterceptor(AUDITED_ACTIONS)]
    if keys is not None:
        interceptors.append(AuthInterceptor(Authorizer(keys, ROLES_BY_METHOD), audit_principal))
    return interceptors


def log_protections(settings: GuardSettings) -> None:
    """Say at start-up, loudly when off, what protects the service."""
    if settings.api_keys_file is None and not settings.api_keys:
        log.warning(
            "authentication is OFF: no API keys configured (QUERY_API_KEYS_FILE or "
            "QUERY_API_KEYS); every caller may act for every tenant. Local development only."
        )
    else:
        log.info(
            "authentication on: API keys required", source=str(settings.api_keys_file or "env")
        )
    if not settings.redis_url:
        log.warning("QUERY_REDIS_URL is not set: no answer caches, rate limits or spend budgets")


def build_guard(settings: GuardSettings, embed: Embed) -> QueryGuard:
    if not settings.redis_url:
        return QueryGuard(settings, None, None, embed)
    shared = SharedRedis.connect(
        settings.redis_url,
        settings.redis_timeout_s,
        settings.redis_fail_max,
        settings.redis_retry_after_s,
    )
    semantic = None
    if settings.answer_cache_enabled and settings.semantic_cache_enabled:
        client = SemanticCache.client_for(
            settings.weaviate_host,
            settings.weaviate_http_port,
            settings.weaviate_grpc_port,
            settings.weaviate_timeout_s,
        )
        semantic = SemanticCache(
            client,
            settings.semantic_collection,
            settings.answer_cache_ttl_s,
            settings.semantic_candidates,
        )
    return QueryGuard(settings, shared, semantic, embed)


def cached_reply(
    admission: Admission, snippet_chars: int, total_ms: float, budget_s: float
) -> query_pb2.QueryResponse:
    """The response for an answer served from a cache: no LLM call, no cost."""
    cached = admission.cached
    assert cached is not None
    return query_pb2.QueryResponse(
        answer=cached.answer,
        citations=[
            common_pb2.Citation(
                document_id=c.document_id,
                chunk_id=c.chunk_id,
                score=c.score,
                snippet=c.text[:snippet_chars],
            )
            for c in cached.citations
        ],
        timings=[common_pb2.StageTiming(stage=common_pb2.STAGE_CACHE, duration_ms=total_ms)],
        total_ms=total_ms,
        provider=cached.provider,
        model=cached.model,
        request_id=current_request_id.get(),
        degradations=admission.degradations,
        cache=admission.cache_info,
        budget_ms=budget_s * 1000,
    )
