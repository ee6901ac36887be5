"""A query service of a test's own, wired to the stack's services or to faulty stand-ins."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc

from ragplane.cli.stack import REPLICATED, Stack
from ragplane.v1 import common_pb2, query_pb2, query_pb2_grpc
from tests.integration.services import RunningService, service_process


@dataclass
class QueryService:
    process: RunningService
    stub: query_pb2_grpc.QueryServiceStub

    def ask(self, tenant: str, question: str, timeout_s: float) -> query_pb2.QueryResponse:
        request = query_pb2.QueryRequest(tenant=tenant, query=question)
        return self.stub.Query(request, timeout=timeout_s)

    def ask_briefly(
        self, tenant: str, question: str, top_k: int = 0, temperature: float | None = None
    ) -> query_pb2.QueryResponse:
        """An answer of a few tokens: the 135M model writes about 40 a second here, and reads
        a prompt of five passages in seconds (``top_k`` fewer passages: a shorter prompt)."""
        request = query_pb2.QueryRequest(
            tenant=tenant,
            query=question,
            max_output_tokens=16,
            top_k=top_k,
            temperature=temperature,
        )
        return self.stub.Query(request, timeout=120)

    def breaker_state(self, dependency: str) -> float:
        return self.process.metric(
            "ragplane_query_dependency_breaker_state", f'dependency="{dependency}"'
        )


def stack_targets(stack: Stack) -> dict[str, str]:
    return {f"QUERY_{service.upper()}_TARGET": stack.target(service) for service in REPLICATED}


def stack_caches(stack: Stack) -> dict[str, str]:
    """Settings (for query_service) that turn the answer caches on, in the stack's Redis and
    Weaviate."""
    return {
        "redis_url": f"redis://127.0.0.1:{stack.ports.redis}/1",
        "weaviate_http_port": str(stack.ports.weaviate_http),
        "weaviate_grpc_port": str(stack.ports.weaviate_grpc),
    }


@contextmanager
def query_service(stack: Stack, log_dir: Path, **env: str) -> Iterator[QueryService]:
    """A query service using the stack's dependencies except where ``env`` says otherwise."""
    settings = {**stack_targets(stack), **{f"QUERY_{k.upper()}": v for k, v in env.items()}}
    with (
        service_process("query", settings, log_dir) as process,
        grpc.insecure_channel(process.target) as channel,
    ):
        yield QueryService(process, query_pb2_grpc.QueryServiceStub(channel))


def degraded(response: query_pb2.QueryResponse) -> dict[int, common_pb2.Degradation]:
    """The response's degradations by stage."""
    return {d.stage: d for d in response.degradations}
