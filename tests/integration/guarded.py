"""Helpers for tests of the query service's caches, keys, limits and audit trail.

Each such test runs its own query service (service_process) in front of the session stack's
embedding, retrieval and generation services, with its own settings, so that the stack's own
query service keeps its defaults for every other test.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence

import grpc

from ragplane.cli.stack import Stack
from ragplane.runtime.auth import key_digest
from ragplane.v1 import query_pb2, query_pb2_grpc


def query_env(stack: Stack, redis_db: int, **settings: str) -> dict[str, str]:
    """A query service beside the stack: its own Redis database and semantic cache collection."""
    env = {
        "QUERY_EMBEDDING_TARGET": f"127.0.0.1:{stack.ports.embedding}",
        "QUERY_RETRIEVAL_TARGET": f"127.0.0.1:{stack.ports.retrieval}",
        "QUERY_GENERATION_TARGET": f"127.0.0.1:{stack.ports.generation}",
        "QUERY_REDIS_URL": f"redis://127.0.0.1:{stack.ports.redis}/{redis_db}",
        "QUERY_WEAVIATE_HTTP_PORT": str(stack.ports.weaviate_http),
        "QUERY_WEAVIATE_GRPC_PORT": str(stack.ports.weaviate_grpc),
        "QUERY_SEMANTIC_COLLECTION": f"AnswerCacheTest{uuid.uuid4().hex[:8]}",
        "QUERY_DRAIN_DELAY_S": "0.2",
    }
    env.update({f"QUERY_{name.upper()}": value for name, value in settings.items()})
    return env


def key_file_text(entries: Sequence[tuple[str, str, Sequence[str], Sequence[str]]]) -> str:
    """A key file as an operator writes it: (key, id, tenants, roles) -> digest -> entry."""
    return json.dumps(
        {
            key_digest(key): {"id": key_id, "tenants": list(tenants), "roles": list(roles)}
            for key, key_id, tenants, roles in entries
        }
    )


def ask(
    stub: query_pb2_grpc.QueryServiceStub,
    tenant: str,
    question: str,
    key: str | None = None,
    *,
    top_k: int = 0,
    temperature: float | None = None,
    max_output_tokens: int = 8,
) -> query_pb2.QueryResponse:
    """One query with short answers (the 135M model writes about 40 tokens/s here)."""
    metadata = (("x-api-key", key),) if key else None
    request = query_pb2.QueryRequest(
        tenant=tenant, query=question, top_k=top_k, max_output_tokens=max_output_tokens
    )
    if temperature is not None:
        request.temperature = temperature
    response: query_pb2.QueryResponse = stub.Query(request, timeout=120, metadata=metadata)
    return response


def status_of(error: grpc.RpcError) -> grpc.StatusCode:
    code = error.code()
    assert isinstance(code, grpc.StatusCode)
    return code


def details_of(error: grpc.RpcError) -> str:
    details = error.details()
    assert isinstance(details, str)
    return details
