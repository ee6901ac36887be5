"""Server and client interceptors: request ids, error mapping, logs and metrics for every call."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc
import structlog

from ragplane.runtime.context import (
    REQUEST_ID_HEADER,
    RpcContext,
    current_request_id,
    new_request_id,
)
from ragplane.runtime.edge import StringLimits, decode_request
from ragplane.runtime.errors import ServiceError, with_retry_info
from ragplane.runtime.handlers import StreamBehavior, UnaryBehavior, WrappingInterceptor
from ragplane.runtime.telemetry import RPC_DURATION, RPC_IN_FLIGHT, RPC_REQUESTS

log = structlog.get_logger("ragplane.rpc")

# Probes and tooling call these often; they are counted but logged only at debug level.
_QUIET_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.")


def _request_id_from(context: RpcContext) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == REQUEST_ID_HEADER and isinstance(value, str) and value:
            return value[:128]
    return new_request_id()


class _CallRecord:
    """Everything recorded about one call: request id, status code, duration."""

    def __init__(self, service: str, method: str, context: RpcContext) -> None:
        self.service = service
        self.method = method
        self.context = context
        self.request_id = _request_id_from(context)
        self.code = grpc.StatusCode.OK
        self._started = time.perf_counter()
        self._token = current_request_id.set(self.request_id)
        structlog.contextvars.bind_contextvars(request_id=self.request_id, rpc=method)
        RPC_IN_FLIGHT.labels(service, method).inc()

    async def fail(self, error: BaseException) -> None:
        """Abort the call with the status the error maps to; always raises."""
        if isinstance(error, ServiceError):
            self.code = error.code
            if error.retry_after_s is not None:
                status = with_retry_info(error.code, error.message, error.retry_after_s)
                await self.context.abort(status.code, status.details, status.trailing_metadata)
            await self.context.abort(error.code, error.message)
        self.code = grpc.StatusCode.INTERNAL
        log.exception("unhandled error")
        await self.context.abort(
            grpc.StatusCode.INTERNAL, f"internal error (request id {self.request_id})"
        )

    def cancelled(self) -> None:
        """The call ended while being handled: the caller cancelled it or its deadline passed."""
        remaining = self.context.time_remaining()
        expired = remaining is not None and remaining <= 0
        self.code = grpc.StatusCode.DEADLINE_EXCEEDED if expired else grpc.StatusCode.CANCELLED

    def finish(self) -> None:
        code = self.context.code() if self.code is grpc.StatusCode.OK else self.code
        if isinstance(code, grpc.StatusCode):
            self.code = code
        elapsed = time.perf_counter() - self._started
        RPC_IN_FLIGHT.labels(self.service, self.method).dec()
        RPC_REQUESTS.labels(self.service, self.method, self.code.name).inc()
        RPC_DURATION.labels(self.service, self.method).observe(elapsed)
        if self.method.startswith(_QUIET_PREFIXES):
            emit = log.debug
        else:
            emit = log.info if self.code is grpc.StatusCode.OK else log.warning
        emit("rpc finished", code=self.code.name, duration_ms=round(elapsed * 1000, 2))
        current_request_id.reset(self._token)
        structlog.contextvars.unbind_contextvars("request_id", "rpc")


class ObservabilityInterceptor(WrappingInterceptor):
    """Gives each call a request id, maps domain errors to status codes, logs and counts it.

    It also decodes the request itself, under the edge rules (ragplane.runtime.edge), so that
    a malformed or oversized request is refused before any other interceptor or log sees it.
    """

    def __init__(self, service: str, limits: StringLimits | None = None) -> None:
        self._service = service
        self._limits = limits or StringLimits()

    receives_raw_bytes = True

    def wrap_unary(
        self, method: str, behavior: UnaryBehavior, handler: grpc.RpcMethodHandler[Any, Any]
    ) -> UnaryBehavior:
        deserializer = handler.request_deserializer

        async def handle(raw: Any, context: RpcContext) -> Any:
            call = _CallRecord(self._service, method, context)
            try:
                await context.send_initial_metadata(((REQUEST_ID_HEADER, call.request_id),))
                request = decode_request(raw, deserializer, self._limits)
                return await behavior(request, context)
            except grpc.aio.AbortError:
                raise
            except asyncio.CancelledError:
                call.cancelled()
                raise
            except Exception as error:  # noqa: BLE001 - every error must become a status
                await call.fail(error)
            finally:
                call.finish()

        return handle

    def wrap_stream(
        self, method: str, behavior: StreamBehavior, handler: grpc.RpcMethodHandler[Any, Any]
    ) -> StreamBehavior:
        deserializer = handler.request_deserializer

        async def handle(raw: Any, context: RpcContext) -> AsyncIterator[Any]:
            call = _CallRecord(self._service, method, context)
            try:
                await context.send_initial_metadata(((REQUEST_ID_HEADER, call.request_id),))
                request = decode_request(raw, deserializer, self._limits)
                async for response in behavior(request, context):
                    yield response
            except grpc.aio.AbortError:
                raise
            except (asyncio.CancelledError, GeneratorExit):
                # GeneratorExit: the stream was closed before its end (the caller went away
                # while a message was being sent), which is a cancelled call, not an OK one.
                call.cancelled()
                raise
            except Exception as error:  # noqa: BLE001 - every error must become a status
                await call.fail(error)
            finally:
                call.finish()

        return handle


class RequestIdClientInterceptor(
    grpc.aio.UnaryUnaryClientInterceptor, grpc.aio.UnaryStreamClientInterceptor
):
    """Sends the request id of the call being served to the next service."""

    @staticmethod
    def _with_request_id(details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        request_id = current_request_id.get()
        if not request_id:
            return details
        metadata = grpc.aio.Metadata(*(details.metadata or ()))
        metadata[REQUEST_ID_HEADER] = request_id
        return grpc.aio.ClientCallDetails(
            details.method,
            details.timeout,
            metadata,
            details.credentials,
            details.wait_for_ready,
        )

    async def intercept_unary_unary(
        self, continuation: Any, client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        return await continuation(self._with_request_id(client_call_details), request)

    async def intercept_unary_stream(
        self, continuation: Any, client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        return await continuation(self._with_request_id(client_call_details), request)


def client_interceptors() -> Sequence[grpc.aio.ClientInterceptor]:
    """Interceptors for every outbound channel: trace context first, then the request id."""
    from opentelemetry.instrumentation.grpc import aio_client_interceptors

    return [*aio_client_interceptors(), RequestIdClientInterceptor()]
