"""One local stack of real components for the whole test session, on free ports.

Redis, Weaviate (the go-installed binary), the llama-cpp-python server with SmolLM2 and the
four ragplane services run as real processes, started and stopped by ragplane's own Stack.
Registered by tests/conftest.py, so that the integration tests and the fuzz suite share one
stack in a session (a fixture imported into two conftests would start two).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import grpc
import pytest

from ragplane.cli.stack import Ports, Stack, local_embedding_env
from ragplane.v1 import (
    embedding_pb2_grpc,
    generation_pb2_grpc,
    query_pb2_grpc,
    retrieval_pb2_grpc,
)
from tests.conftest import REPO

# Short answers keep the tests fast: the 135M model writes about 40 tokens a second here.
TEST_ENV = {
    "GENERATION_DEFAULT_MAX_OUTPUT_TOKENS": "48",
    "QUERY_DRAIN_DELAY_S": "0.2",
    "QUERY_MAX_DOCUMENT_CHARS": "100000",
}


@pytest.fixture(scope="session", autouse=True)
def embedding_export() -> None:
    """The embedding model's ONNX export that local embedding services run, made before any
    test picks free ports: the first export takes seconds, in which another process may take
    a port picked free."""
    local_embedding_env(sys.executable)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    local = Stack(
        tmp_path_factory.mktemp("stack"),
        Ports.free(),
        bin_dir=REPO / ".bin",
        python=sys.executable,
        extra_env=TEST_ENV,
    )
    try:
        local.up(timeout_s=600, report=lambda line: print(line, file=sys.stderr))
        yield local
    finally:
        local.down(report=lambda line: None)


def _channel(port: int) -> grpc.Channel:
    return grpc.insecure_channel(
        f"127.0.0.1:{port}", options=[("grpc.max_send_message_length", 64 * 1024 * 1024)]
    )


@pytest.fixture(scope="session")
def query(stack: Stack) -> Iterator[query_pb2_grpc.QueryServiceStub]:
    with _channel(stack.ports.query) as channel:
        yield query_pb2_grpc.QueryServiceStub(channel)


@pytest.fixture(scope="session")
def embedding(stack: Stack) -> Iterator[embedding_pb2_grpc.EmbeddingServiceStub]:
    with _channel(stack.ports.embedding) as channel:
        yield embedding_pb2_grpc.EmbeddingServiceStub(channel)


@pytest.fixture(scope="session")
def retrieval(stack: Stack) -> Iterator[retrieval_pb2_grpc.RetrievalServiceStub]:
    with _channel(stack.ports.retrieval) as channel:
        yield retrieval_pb2_grpc.RetrievalServiceStub(channel)


@pytest.fixture(scope="session")
def generation(stack: Stack) -> Iterator[generation_pb2_grpc.GenerationServiceStub]:
    with _channel(stack.ports.generation) as channel:
        yield generation_pb2_grpc.GenerationServiceStub(channel)
