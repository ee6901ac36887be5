"""Test doubles of embedding and retrieval replicas, for the channel tests.

Each answers UNAVAILABLE on demand: the status a replica going away produces, but at a moment a
real replica cannot be made to choose. Each counts the attempts it receives, which a real
service's metrics would also show, but without a whole service behind them.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from ragplane.v1 import embedding_pb2, embedding_pb2_grpc, retrieval_pb2, retrieval_pb2_grpc


@dataclass
class UnavailableOnDemand:
    """How a double fails: its first ``failures`` attempts, each after ``delay_s``."""

    failures: int = 0
    delay_s: float = 0.0
    attempts: Counter[str] = field(default_factory=Counter)

    async def answer(self, method: str, context: grpc.aio.ServicerContext) -> None:
        """Count the attempt; abort it with UNAVAILABLE while failures remain."""
        self.attempts[method] += 1
        await asyncio.sleep(self.delay_s)
        if self.attempts[method] <= self.failures:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "replica going away (test double)")


class EmbeddingReplicaDouble(embedding_pb2_grpc.EmbeddingServiceServicer):
    def __init__(self, behaviour: UnavailableOnDemand) -> None:
        self._behaviour = behaviour

    async def Embed(
        self, request: embedding_pb2.EmbedRequest, context: grpc.aio.ServicerContext
    ) -> embedding_pb2.EmbedResponse:
        await self._behaviour.answer("Embed", context)
        return embedding_pb2.EmbedResponse()


class RetrievalReplicaDouble(retrieval_pb2_grpc.RetrievalServiceServicer):
    def __init__(self, behaviour: UnavailableOnDemand) -> None:
        self._behaviour = behaviour

    async def Search(
        self, request: retrieval_pb2.SearchRequest, context: grpc.aio.ServicerContext
    ) -> retrieval_pb2.SearchResponse:
        await self._behaviour.answer("Search", context)
        return retrieval_pb2.SearchResponse()

    async def Upsert(
        self, request: retrieval_pb2.UpsertRequest, context: grpc.aio.ServicerContext
    ) -> retrieval_pb2.UpsertResponse:
        await self._behaviour.answer("Upsert", context)
        return retrieval_pb2.UpsertResponse()


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
    server = grpc.aio.server()
    embedding_pb2_grpc.add_EmbeddingServiceServicer_to_server(
        EmbeddingReplicaDouble(behaviour), server
    )
    retrieval_pb2_grpc.add_RetrievalServiceServicer_to_server(
        RetrievalReplicaDouble(behaviour), server
    )
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
