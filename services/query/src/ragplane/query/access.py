"""Who may call what on the query service, and the audit trail of what they did."""

from __future__ import annotations

import grpc
import structlog

from ragplane.query.config import GuardSettings
from ragplane.runtime.audit import AuditInterceptor, audit_principal
from ragplane.runtime.auth import AuthInterceptor, Authorizer, Role, load_key_ring

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


def access_interceptors(settings: GuardSettings) -> list[grpc.aio.ServerInterceptor]:
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
    if not settings.redis_enabled:
        log.warning("QUERY_REDIS_URL is not set: no answer caches, rate limits or spend budgets")
