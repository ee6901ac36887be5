"""Domain errors and the gRPC status code each one maps to.

Domain code raises these; the server interceptor turns them into a status with the
message as details. Anything else that escapes a handler becomes INTERNAL.
"""

from __future__ import annotations

from datetime import timedelta
from typing import ClassVar

import grpc
import structlog
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from ragplane.runtime.context import REQUEST_ID_HEADER

log = structlog.get_logger(__name__)


class ServiceError(Exception):
    """An error a caller can act on; ``message`` is sent to the caller as it is."""

    code: ClassVar[grpc.StatusCode] = grpc.StatusCode.INTERNAL

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        # When set, callers get it as google.rpc.RetryInfo in the status details.
        self.retry_after_s = retry_after_s


class InvalidArgument(ServiceError):
    code = grpc.StatusCode.INVALID_ARGUMENT

    @classmethod
    def of(cls, field: str, problem: str) -> InvalidArgument:
        """An error that names the offending request field, for example ``texts[3]: is empty``."""
        return cls(f"{field}: {problem}")


class NotFound(ServiceError):
    code = grpc.StatusCode.NOT_FOUND


class FailedPrecondition(ServiceError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class Unauthenticated(ServiceError):
    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(ServiceError):
    code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhausted(ServiceError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class DeadlineExceeded(ServiceError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class Unavailable(ServiceError):
    code = grpc.StatusCode.UNAVAILABLE


_PASSED_THROUGH: dict[grpc.StatusCode, type[ServiceError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
}


_UNANSWERED = {
    grpc.StatusCode.UNAVAILABLE: "could not be reached",
    grpc.StatusCode.DEADLINE_EXCEEDED: "did not answer in time",
    grpc.StatusCode.CANCELLED: "call was cancelled",
}


def _answered_by_a_service(error: grpc.aio.AioRpcError) -> bool:
    """Whether a ragplane service handled the call (it sends its request id first), rather
    than gRPC itself failing it (no connection, deadline passed on the way)."""
    return any(key == REQUEST_ID_HEADER for key, _ in error.initial_metadata() or ())


def from_downstream(error: grpc.aio.AioRpcError, dependency: str) -> ServiceError:
    """Translate a failed call to another service into an error for our own caller.

    Caller mistakes (INVALID_ARGUMENT, NOT_FOUND, ...) keep their code so that the caller sees
    what to fix; everything else means the dependency could not do its job: UNAVAILABLE. The
    message is a ragplane service's own words, or ours when gRPC failed the call itself (its
    text goes to the log, not to our caller).
    """
    code = error.code()
    if _answered_by_a_service(error):
        details = error.details() or code.name
    else:
        log.info("downstream call failed", dependency=dependency, details=error.details())
        details = _UNANSWERED.get(code, "failed")
    error_class = _PASSED_THROUGH.get(code)
    if error_class is not None:
        return error_class(f"{dependency}: {details}")
    return Unavailable(f"{dependency} is unavailable ({code.name}): {details}")


def with_retry_info(code: grpc.StatusCode, message: str, retry_after_s: float) -> grpc.Status:
    """A status whose details carry google.rpc.RetryInfo, the standard retry hint."""
    delay = duration_pb2.Duration()
    delay.FromTimedelta(timedelta(seconds=retry_after_s))
    detail = any_pb2.Any()
    detail.Pack(error_details_pb2.RetryInfo(retry_delay=delay))
    status = status_pb2.Status(code=getattr(code_pb2, code.name), message=message, details=[detail])
    return rpc_status.to_status(status)


def retry_after_s(error: grpc.RpcError) -> float | None:
    """The RetryInfo delay in a failed call's status details, if the server sent one."""
    trailing = getattr(error, "trailing_metadata", lambda: None)() or ()
    for key, value in trailing:
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            for detail in status_pb2.Status.FromString(value).details:
                if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                    info = error_details_pb2.RetryInfo()
                    detail.Unpack(info)
                    return float(info.retry_delay.ToTimedelta().total_seconds())
    return None
