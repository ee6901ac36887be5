"""Audit trail: one structured record per audited call on the logger ``ragplane.audit``.

A record holds who (tenant, key id), what (action, request id), how it ended (outcome: the
gRPC status code name) and what it cost. Handlers add to the record of the call being served
with ``audit_note``; personal data is masked by the logging pipeline like in every log line.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import grpc
import structlog

from ragplane.runtime.auth import Principal
from ragplane.runtime.context import RpcContext, current_request_id
from ragplane.runtime.errors import ServiceError
from ragplane.runtime.handlers import StreamBehavior, UnaryBehavior, WrappingInterceptor

AUDIT_LOGGER = "ragplane.audit"
audit_log = structlog.get_logger(AUDIT_LOGGER)


@dataclass
class AuditRecord:
    action: str
    tenant: str
    request_id: str
    key_id: str = ""
    outcome: str = "OK"
    cost_usd: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)


_current_record: contextvars.ContextVar[AuditRecord | None] = contextvars.ContextVar(
    "current_audit_record", default=None
)


def audit_note(cost_usd: float | None = None, **details: Any) -> None:
    """Add the cost and details (cache layer, document count, ...) to the current record."""
    record = _current_record.get()
    if record is None:
        return
    if cost_usd is not None:
        record.cost_usd = cost_usd
    record.details.update(details)


def audit_principal(principal: Principal) -> None:
    """Record the key id of the authenticated caller (an AuthInterceptor observer)."""
    record = _current_record.get()
    if record is not None:
        record.key_id = principal.key_id


def _outcome(error: BaseException | None, context: RpcContext) -> str:
    if error is None:
        code = context.code()
        return code.name if isinstance(code, grpc.StatusCode) else "OK"
    if isinstance(error, ServiceError):
        return error.code.name
    if isinstance(error, grpc.aio.AbortError):
        code = context.code()
        return code.name if isinstance(code, grpc.StatusCode) else "ABORTED"
    if isinstance(error, asyncio.CancelledError | GeneratorExit):
        return grpc.StatusCode.CANCELLED.name
    return grpc.StatusCode.INTERNAL.name


class AuditInterceptor(WrappingInterceptor):
    """Writes an audit record for each call to the listed methods, denied calls included."""

    def __init__(self, actions_by_method: Mapping[str, str]) -> None:
        self._actions = dict(actions_by_method)

    def applies_to(self, method: str) -> bool:
        return method in self._actions

    @staticmethod
    def _open(action: str, request: Any) -> AuditRecord:
        record = AuditRecord(
            action=action,
            tenant=str(getattr(request, "tenant", "") or ""),
            request_id=current_request_id.get(),
        )
        _current_record.set(record)
        return record

    @staticmethod
    def _close(record: AuditRecord, error: BaseException | None, context: RpcContext) -> None:
        record.outcome = _outcome(error, context)
        fields = asdict(record)
        details = fields.pop("details")
        audit_log.info("audit", **fields, **details)

    def wrap_unary(
        self, method: str, behavior: UnaryBehavior, handler: grpc.RpcMethodHandler[Any, Any]
    ) -> UnaryBehavior:
        action = self._actions[method]

        async def handle(request: Any, context: RpcContext) -> Any:
            record = self._open(action, request)
            try:
                response = await behavior(request, context)
            except BaseException as error:
                self._close(record, error, context)
                raise
            self._close(record, None, context)
            return response

        return handle

    def wrap_stream(
        self, method: str, behavior: StreamBehavior, handler: grpc.RpcMethodHandler[Any, Any]
    ) -> StreamBehavior:
        action = self._actions[method]

        async def handle(request: Any, context: RpcContext) -> AsyncIterator[Any]:
            record = self._open(action, request)
            try:
                async for response in behavior(request, context):
                    yield response
            except BaseException as error:
                self._close(record, error, context)
                raise
            self._close(record, None, context)

        return handle
