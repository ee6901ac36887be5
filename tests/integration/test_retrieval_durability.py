"""Ingestion loses nothing it acknowledged when Weaviate is SIGKILLed and restarted.

A Weaviate of its own (same helper as the session stack, its own ports and data folder) and a
retrieval service pointed at it: killing it cannot disturb the other tests.
"""

from __future__ import annotations

import random
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import grpc
import pytest

from ragplane.cli.stack import Ports, Stack
from ragplane.v1 import retrieval_pb2, retrieval_pb2_grpc
from tests.conftest import REPO
from tests.integration.services import service_process

TENANT = "durable"
CHUNKS_PER_DOCUMENT = 20
DIMENSIONS = 16


@dataclass
class DedicatedWeaviate:
    stack: Stack

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush; whatever Weaviate had not persisted is gone."""
        self.stack.stop("weaviate", sig=signal.SIGKILL, timeout_s=0)

    def restart(self) -> None:
        """Start again on the same data folder and ports."""
        self.stack.up(["weaviate"], timeout_s=180, report=lambda line: None)


@pytest.fixture(scope="module")
def weaviate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DedicatedWeaviate]:
    stack = Stack(tmp_path_factory.mktemp("weaviate-kill"), Ports.free(), bin_dir=REPO / ".bin")
    stack.up(["weaviate"], timeout_s=180, report=lambda line: None)
    try:
        yield DedicatedWeaviate(stack)
    finally:
        stack.down(report=lambda line: None)


@pytest.fixture(scope="module")
def retrieval(
    weaviate: DedicatedWeaviate, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[retrieval_pb2_grpc.RetrievalServiceStub]:
    env = {
        "RETRIEVAL_WEAVIATE_HTTP_PORT": str(weaviate.stack.ports.weaviate_http),
        "RETRIEVAL_WEAVIATE_GRPC_PORT": str(weaviate.stack.ports.weaviate_grpc),
        # Enough tries (backoff doubling to 4 s) to ride out a Weaviate restart.
        "RETRIEVAL_WRITE_ATTEMPTS": "10",
    }
    logs = tmp_path_factory.mktemp("retrieval-kill")
    with (
        service_process("retrieval", env, logs) as service,
        grpc.insecure_channel(service.target) as channel,
    ):
        yield retrieval_pb2_grpc.RetrievalServiceStub(channel)


def _document(document_id: str, rng: random.Random) -> list[retrieval_pb2.ChunkWithVector]:
    return [
        retrieval_pb2.ChunkWithVector(
            chunk=retrieval_pb2.Chunk(
                chunk_id=f"{document_id}#{index}",
                document_id=document_id,
                chunk_index=index,
                text=f"chunk {index} of {document_id}",
            ),
            vector=[rng.random() for _ in range(DIMENSIONS)],
        )
        for index in range(CHUNKS_PER_DOCUMENT)
    ]


@dataclass
class Ingest:
    """Documents upserted one per call; ``acknowledged`` holds the chunks reported stored."""

    retrieval: retrieval_pb2_grpc.RetrievalServiceStub
    acknowledged: dict[str, int] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)

    def document(self, document_id: str, rng: random.Random) -> None:
        chunks = _document(document_id, rng)
        request = retrieval_pb2.UpsertRequest(
            tenant=TENANT, chunks=chunks, document_chunk_counts={document_id: len(chunks)}
        )
        try:
            reply = self.retrieval.Upsert(request, timeout=90)
        except grpc.RpcError as error:
            # Not acknowledged: the caller knows to send it again.
            self.refused.append(f"{document_id}: {error.code().name}")
            return
        self.acknowledged[document_id] = reply.upserted


def _stored(retrieval: retrieval_pb2_grpc.RetrievalServiceStub, ids: list[str]) -> dict[str, int]:
    request = retrieval_pb2.CountChunksRequest(tenant=TENANT, document_ids=ids)
    return dict(retrieval.CountChunks(request, timeout=60).per_document)


def test_acknowledged_chunks_survive_sigkill_after_and_during_ingest(
    weaviate: DedicatedWeaviate, retrieval: retrieval_pb2_grpc.RetrievalServiceStub
) -> None:
    rng = random.Random(4)
    ingest = Ingest(retrieval)

    # 1. Kill right after the last acknowledgement.
    for n in range(5):
        ingest.document(f"before-{n}.md", rng)
    assert ingest.acknowledged == {f"before-{n}.md": CHUNKS_PER_DOCUMENT for n in range(5)}
    weaviate.kill()
    weaviate.restart()
    assert _stored(retrieval, list(ingest.acknowledged)) == ingest.acknowledged

    # 2. Kill while documents keep arriving; restart a moment later.
    def killer() -> None:
        time.sleep(1.0)
        weaviate.kill()
        time.sleep(1.0)
        weaviate.restart()

    chaos = threading.Thread(target=killer)
    chaos.start()
    deadline = time.monotonic() + 120
    n = 0
    while chaos.is_alive() or n < 15:
        ingest.document(f"during-{n}.md", rng)
        n += 1
        assert time.monotonic() < deadline, "ingest did not finish"
    chaos.join()

    during = [d for d in ingest.acknowledged if d.startswith("during-")]
    assert during, f"nothing acknowledged during the kill; refused: {ingest.refused}"
    assert _stored(retrieval, list(ingest.acknowledged)) == ingest.acknowledged
    # Every acknowledgement counted all of its chunks (partial ones would be listed as errors).
    assert set(ingest.acknowledged.values()) == {CHUNKS_PER_DOCUMENT}
    # Re-sending what was refused stores it once: deterministic ids, no duplicates.
    for refused in ingest.refused:
        ingest.document(refused.split(":")[0], rng)
    everything = [f"before-{k}.md" for k in range(5)] + [f"during-{k}.md" for k in range(n)]
    assert _stored(retrieval, everything) == dict.fromkeys(everything, CHUNKS_PER_DOCUMENT)
