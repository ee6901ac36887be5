"""Domain errors and the gRPC status code each one maps to.

Domain code raises these; the server interceptor turns them into a status with the
message as details. Anything else that escapes a handler becomes INTERNAL.
"""

from __future__ import annotations

from typing import ClassVar

import grpc


class ServiceError(Exception):
    """An error a caller can act on; ``message`` is sent to the caller as it is."""

    code: ClassVar[grpc.StatusCode] = grpc.StatusCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


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


def from_downstream(error: grpc.aio.AioRpcError, dependency: str) -> ServiceError:
    """Translate a failed call to another service into an error for our own caller.

    Caller mistakes (INVALID_ARGUMENT, NOT_FOUND, ...) keep their code so that the caller sees
    what to fix; everything else means the dependency could not do its job: UNAVAILABLE.
    """
    details = error.details() or error.code().name
    message = f"{dependency}: {details}"
    error_class = _PASSED_THROUGH.get(error.code())
    if error_class is not None:
        return error_class(message)
    return Unavailable(f"{dependency} is unavailable ({error.code().name}): {details}")
