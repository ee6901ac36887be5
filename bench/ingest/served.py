"""The served rate: the slice sent to a stack of our own through the query service's Ingest.

Batched and pipelined as `ragplane ingest` sends them (documents.batches with the CLI's default
16 documents / 400,000 characters, two calls in flight), into a scratch tenant deleted first and
with the embedding cache emptied, so every run embeds and stores every chunk from scratch.
Only what Ingest needs runs: Redis (embedding cache, the query service's guard), Weaviate, and
the embedding, retrieval and query services; no LLM or generation service.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import redis

from bench.ingest.corpus import Slice
from ragplane.cli.documents import batches
from ragplane.cli.stack import Ports, Stack
from ragplane.v1 import query_pb2, query_pb2_grpc, retrieval_pb2, retrieval_pb2_grpc

REPO = Path(__file__).resolve().parents[2]
RUN_DIR = REPO / ".run" / "bench-ingest"
TENANT = "bench-ingest"
COMPONENTS = ("redis", "weaviate", "embedding", "retrieval", "query")
# The CLI's defaults (cli/src/ragplane/cli/main.py).
BATCH_DOCUMENTS = 16
BATCH_CHARS = 400_000
IN_FLIGHT = 2
CALL_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Served:
    documents: int
    chunks: int
    calls: int
    seconds: float

    @property
    def chunks_per_s(self) -> float:
        return self.chunks / self.seconds


@contextmanager
def own_stack() -> Iterator[Stack]:
    stack = Stack(RUN_DIR, Ports.kept_in(RUN_DIR), REPO / ".bin", sys.executable)
    try:
        stack.up(COMPONENTS, timeout_s=600, report=lambda line: print(line, file=sys.stderr))
        yield stack
    finally:
        stack.down(report=lambda line: None)


def start_from_scratch(stack: Stack) -> None:
    """No chunks of an earlier run in the tenant, no cached vectors in the embedding cache."""
    with grpc.insecure_channel(f"127.0.0.1:{stack.ports.retrieval}") as channel:
        retrieval = retrieval_pb2_grpc.RetrievalServiceStub(channel)
        try:
            retrieval.DeleteTenant(retrieval_pb2.DeleteTenantRequest(tenant=TENANT), timeout=60)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND:
                raise
    # The embedding service's cache lives in Redis db 0 (Stack's EMBEDDING_REDIS_URL).
    redis.Redis(port=stack.ports.redis, db=0).flushdb()


def ingest(stack: Stack, corpus: Slice) -> Served:
    calls = 0
    chunks = 0
    with (
        grpc.insecure_channel(f"127.0.0.1:{stack.ports.query}") as channel,
        ThreadPoolExecutor(IN_FLIGHT) as pool,
    ):
        stub = query_pb2_grpc.QueryServiceStub(channel)
        in_flight: set[Future[query_pb2.IngestResponse]] = set()
        responses: list[query_pb2.IngestResponse] = []
        started = time.perf_counter()
        for batch in batches(corpus.files, corpus.root, BATCH_DOCUMENTS, BATCH_CHARS):
            if len(in_flight) >= IN_FLIGHT:
                done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                responses.extend(future.result() for future in done)
            request = query_pb2.IngestRequest(tenant=TENANT, documents=batch)
            in_flight.add(pool.submit(stub.Ingest, request, timeout=CALL_TIMEOUT_S))
            calls += 1
        responses.extend(future.result() for future in in_flight)
        seconds = time.perf_counter() - started
    documents = 0
    for response in responses:
        for result in response.results:
            if result.status != query_pb2.DOCUMENT_STATUS_INDEXED:
                raise SystemExit(f"ingest failed: {result.document_id}: {result.error}")
            documents += 1
            chunks += result.chunks
    return Served(documents, chunks, calls, seconds)
