"""A 3-node Weaviate cluster of the local stack, and retrieval services reading it at a chosen
consistency level."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc

from ragplane.cli.stack import Ports, Replicas, Stack
from ragplane.v1 import retrieval_pb2, retrieval_pb2_grpc
from tests.conftest import REPO
from tests.integration.durability import Ledger
from tests.integration.services import RunningService, service_process

NODES = [f"weaviate-{k}" for k in (1, 2, 3)]


@contextmanager
def weaviate_cluster(run_dir: Path) -> Iterator[Stack]:
    """Three Weaviate nodes on loopback ports, stopped on exit."""
    stack = Stack(
        run_dir, Ports.free(), REPO / ".bin", sys.executable, replicas=Replicas(weaviate=3)
    )
    try:
        stack.up(NODES, timeout_s=180, report=lambda line: None)
        yield stack
    finally:
        stack.down(report=lambda line: None)


@contextmanager
def cluster_retrieval(
    cluster: Stack, consistency_level: str, log_dir: Path
) -> Iterator[tuple[RunningService, Ledger]]:
    """A retrieval service on the first node, chunks kept on all three, reads and writes at
    ``consistency_level``; with a ledger of what it acknowledged."""
    env = {
        "RETRIEVAL_WEAVIATE_HTTP_PORT": str(cluster.ports.weaviate_http),
        "RETRIEVAL_WEAVIATE_GRPC_PORT": str(cluster.ports.weaviate_grpc),
        "RETRIEVAL_REPLICATION_FACTOR": "3",
        "RETRIEVAL_CONSISTENCY_LEVEL": consistency_level,
    }
    with (
        service_process("retrieval", env, log_dir) as service,
        grpc.insecure_channel(service.target) as channel,
    ):
        yield service, Ledger(retrieval_pb2_grpc.RetrievalServiceStub(channel))


def acknowledged_chunk_ids(ledger: Ledger) -> set[str]:
    return {f"{d}#{index}" for d, count in ledger.acknowledged.items() for index in range(count)}


def found_chunk_ids(ledger: Ledger, top_k: int) -> set[str]:
    """The chunk ids a keyword search for "chunk" (in every chunk's text) finds."""
    request = retrieval_pb2.SearchRequest(
        tenant="durable", query_text="chunk", alpha=0.0, top_k=top_k
    )
    reply = ledger.retrieval.Search(request, timeout=60)
    return {hit.chunk.chunk_id for hit in reply.hits}
