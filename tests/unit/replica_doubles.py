"""Test doubles of embedding and retrieval replicas (Embed, Search, Upsert), for the channel tests.

Each answers UNAVAILABLE on demand: the status a replica going away produces, but at a moment a
real replica cannot be made to choose. Each counts the attempts it receives, which a real
service's metrics would also show, but without a whole service behind them.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf.message import Message
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from ragplane.runtime.context import RpcContext
from ragplane.v1 import embedding_pb2, retrieval_pb2


@dataclass
class UnavailableOnDemand:
    """How a double fails: its first ``failures`` attempts, each after ``delay_s``."""

    failures: int = 0
    delay_s: float = 0.0
    attempts: Counter[str] = field(default_factory=Counter)

    async def answer(self, method: str, context: RpcContext) -> None:
        """Count the attempt; abort it with UNAVAILABLE while failures remain."""
        self.attempts[method] += 1
        await asyncio.sleep(self.delay_s)
        if self.attempts[method] <= self.failures:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "replica going away (test double)")


# The methods each double answers: (service, method) -> (request type, the empty answer).
ANSWERED: dict[tuple[str, str], tuple[type[Message], Message]] = {
    ("ragplane.v1.EmbeddingService", "Embed"): (
        embedding_pb2.EmbedRequest,
        embedding_pb2.EmbedResponse(),
    ),
    ("ragplane.v1.RetrievalService", "Search"): (
        retrieval_pb2.SearchRequest,
        retrieval_pb2.SearchResponse(),
    ),
    ("ragplane.v1.RetrievalService", "Upsert"): (
        retrieval_pb2.UpsertRequest,
        retrieval_pb2.UpsertResponse(),
    ),
}


def _handlers(behaviour: UnavailableOnDemand) -> list[grpc.GenericRpcHandler]:
    """One generic handler per service: each answered method fails or answers empty."""

    def handler(method: str, response: Message) -> Callable[..., Awaitable[Message]]:
        async def answer(request: Message, context: RpcContext) -> Message:
            await behaviour.answer(method, context)
            return response

        return answer

    services: dict[str, dict[str, grpc.RpcMethodHandler[Any, Any]]] = {}
    for (service, method), (request_type, response) in ANSWERED.items():
        services.setdefault(service, {})[method] = grpc.unary_unary_rpc_method_handler(
            handler(method, response),
            request_deserializer=request_type.FromString,
            response_serializer=type(response).SerializeToString,
        )
    return [
        grpc.method_handlers_generic_handler(name, methods) for name, methods in services.items()
    ]


@dataclass
class ReplicaDouble:
    """One running double: its address, its failure behaviour and its health service."""

    address: str
    behaviour: UnavailableOnDemand
    health: health.aio.HealthServicer

    async def set_serving(self, serving: bool) -> None:
        status = health_pb2.HealthCheckResponse
        await self.health.set("", status.SERVING if serving else status.NOT_SERVING)


@asynccontextmanager
async def replica_double(behaviour: UnavailableOnDemand) -> AsyncIterator[ReplicaDouble]:
    """A server on a free loopback port with both doubles and a health service (SERVING)."""
    server = grpc.aio.server(handlers=_handlers(behaviour))
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    replica = ReplicaDouble(f"127.0.0.1:{port}", behaviour, health_servicer)
    await replica.set_serving(True)
    try:
        yield replica
    finally:
        await server.stop(None)
