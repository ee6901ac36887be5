"""Server interceptors that wrap what a method does, written once.

grpc.aio hands an interceptor a method handler; wrapping its behaviour means rebuilding the
handler around a new function for each kind of RPC. Subclasses of WrappingInterceptor say only
which methods they wrap and how.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import grpc

from ragplane.runtime.context import RpcContext

UnaryBehavior = Callable[[Any, RpcContext], Awaitable[Any]]
StreamBehavior = Callable[[Any, RpcContext], AsyncIterator[Any]]
# A string: grpc's classes are generic only to its type stubs, not at run time.
Continuation = Callable[
    [grpc.HandlerCallDetails], Awaitable["grpc.RpcMethodHandler[Any, Any] | None"]
]


class WrappingInterceptor(grpc.aio.ServerInterceptor):
    """Wraps the unary-unary and unary-stream methods it applies to; others pass through.

    Client-streaming and bidirectional RPCs (reflection) always pass through untouched.
    """

    # True when the wrapper decodes the request bytes itself (see ObservabilityInterceptor).
    receives_raw_bytes = False

    def applies_to(self, method: str) -> bool:
        return True

    def wrap_unary(
        self, method: str, behavior: UnaryBehavior, handler: grpc.RpcMethodHandler[Any, Any]
    ) -> UnaryBehavior:
        raise NotImplementedError

    def wrap_stream(
        self, method: str, behavior: StreamBehavior, handler: grpc.RpcMethodHandler[Any, Any]
    ) -> StreamBehavior:
        raise NotImplementedError

    async def intercept_service(
        self, continuation: Continuation, details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(details)
        method = details.method
        if handler is None or not self.applies_to(method):
            return handler
        deserializer = None if self.receives_raw_bytes else handler.request_deserializer
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self.wrap_unary(method, cast(UnaryBehavior, handler.unary_unary), handler),
                request_deserializer=deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self.wrap_stream(method, cast(StreamBehavior, handler.unary_stream), handler),
                request_deserializer=deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler
