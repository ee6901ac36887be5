"""The request id of the call being served, carried to downstream calls."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import grpc

import contextvars
import uuid
from typing import TypeAlias

# What every servicer method receives; the message types vary, so they are left open.
RpcContext: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"

REQUEST_ID_HEADER = "x-request-id"

current_request_id: contextvars.ContextVar[str] = contextvars.ContextVar(
    "current_request_id", default=""
)


def new_request_id() -> str:
    return uuid.uuid4().hex
