"""The grpc.health.v1 service of every ragplane server, with a Watch that yields.

Clients' health checking (ragplane.runtime.channels) keeps a Watch stream open on each replica.
grpc_health's Watch writes its messages with context.write, while the server interceptors
(OpenTelemetry's and ragplane's) wrap every stream method as an async generator: here Watch
yields what grpc_health's would have written, so it passes through them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from grpc_health.v1 import health, health_pb2

from ragplane.runtime.context import RpcContext


class _Written:
    """Stands in for the call's context inside grpc_health's Watch: keeps what it writes."""

    def __init__(self) -> None:
        self.messages: asyncio.Queue[health_pb2.HealthCheckResponse] = asyncio.Queue()

    async def write(self, message: health_pb2.HealthCheckResponse) -> None:
        await self.messages.put(message)


# grpc_health has no type hints.
class HealthServicer(health.aio.HealthServicer):  # type: ignore[misc]
    async def Watch(  # yields instead of writing
        self, request: health_pb2.HealthCheckRequest, context: RpcContext
    ) -> AsyncIterator[health_pb2.HealthCheckResponse]:
        written = _Written()
        watcher = asyncio.create_task(super().Watch(request, written))
        try:
            while True:
                yield await written.messages.get()
        finally:
            watcher.cancel()
