"""Helpers for the durability test: a Weaviate of its own to SIGKILL, a CPU burner, and a ledger
of every chunk the retrieval service acknowledged."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import grpc

from ragplane.cli.stack import Stack
from ragplane.v1 import retrieval_pb2, retrieval_pb2_grpc
from tests.integration.hostile import DIMENSIONS, failure, rpc_metric
from tests.integration.polling import wait_until

# Kill cycles of the test: `make test` runs a few, `make chaos` at least 20.
CYCLES_VARIABLE = "RAGPLANE_DURABILITY_CYCLES"
DEFAULT_CYCLES = 6


def cycles() -> int:
    return int(os.environ.get(CYCLES_VARIABLE, DEFAULT_CYCLES))


@dataclass
class DedicatedWeaviate:
    stack: Stack

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush; whatever Weaviate had not persisted is gone."""
        self.stack.stop("weaviate", sig=signal.SIGKILL, timeout_s=0)

    def restart(self) -> None:
        """Start again on the same data folder and ports; returns once it is ready."""
        self.stack.up(["weaviate"], timeout_s=180, report=lambda line: None)


@contextmanager
def cpu_burner(cores: int = 2) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes that keep ``cores`` CPUs busy while the block runs, stopped after."""
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(cores)]
    try:
        yield burners
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


def document(document_id: str, chunks: int, version: int) -> retrieval_pb2.UpsertRequest:
    """One document of ``chunks`` chunks; a new ``version`` replaces the text, same chunk ids."""
    return retrieval_pb2.UpsertRequest(
        tenant="durable",
        chunks=[
            retrieval_pb2.ChunkWithVector(
                chunk=retrieval_pb2.Chunk(
                    chunk_id=f"{document_id}#{index}",
                    document_id=document_id,
                    chunk_index=index,
                    text=f"version {version}: chunk {index} of {document_id}",
                ),
                vector=[((index + version + d) % 7 + 1) / 7 for d in range(DIMENSIONS)],
            )
            for index in range(chunks)
        ],
        document_chunk_counts={document_id: chunks},
    )


@dataclass
class Ledger:
    """What the retrieval service acknowledged, per document, and what it refused."""

    retrieval: retrieval_pb2_grpc.RetrievalServiceStub
    acknowledged: dict[str, int] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)

    def upsert(self, request: retrieval_pb2.UpsertRequest) -> bool:
        """Send one document; True when every chunk of it was acknowledged."""
        (document_id,) = request.document_chunk_counts
        try:
            reply = self.retrieval.Upsert(request, timeout=120)
        except grpc.RpcError as error:
            # Not acknowledged: the caller knows to send it again.
            code, details = failure(error)
            self.refused[document_id] = f"{code.name}: {details}"
            return False
        if reply.errors:
            # Partly stored: the chunks it counts are acknowledged, the rest must be sent again.
            previous = self.acknowledged.get(document_id, 0)
            self.acknowledged[document_id] = max(previous, reply.upserted)
            self.refused[document_id] = f"{len(reply.errors)} chunk errors: {reply.errors[0]}"
            return False
        self.acknowledged[document_id] = reply.upserted
        self.refused.pop(document_id, None)
        return True

    def stored(self, document_ids: list[str]) -> tuple[int, dict[str, int]]:
        request = retrieval_pb2.CountChunksRequest(tenant="durable", document_ids=document_ids)
        reply = self.retrieval.CountChunks(request, timeout=60)
        return reply.total, dict(reply.per_document)

    def audit(self) -> Audit:
        """Acknowledged chunks missing, and chunks stored beyond what was acknowledged."""
        ids = sorted(set(self.acknowledged) | set(self.refused))
        total, per_document = self.stored(ids)
        found = {document_id: per_document.get(document_id, 0) for document_id in ids}
        lost = sum(max(0, n - found[d]) for d, n in self.acknowledged.items())
        excess = sum(max(0, found[d] - n) for d, n in self.acknowledged.items())
        # Chunks of a refused document may be there in part (never acknowledged, not counted);
        # anything in the tenant beyond those and the acknowledged ones is a copy.
        unacknowledged = sum(n for d, n in found.items() if d not in self.acknowledged)
        beyond = total - unacknowledged - sum(self.acknowledged.values())
        wrong = {
            d: (self.acknowledged.get(d, 0), n)
            for d, n in found.items()
            if d in self.acknowledged and n != self.acknowledged[d]
        }
        return Audit(lost, max(excess, beyond), wrong)


@dataclass(frozen=True)
class Audit:
    lost: int
    duplicated: int
    # Acknowledged documents whose stored count differs: (acknowledged, stored).
    wrong: dict[str, tuple[int, int]]


@dataclass
class InFlightUpsert:
    """An Upsert running in a thread of its own, so that Weaviate can be killed during it."""

    ledger: Ledger
    request: retrieval_pb2.UpsertRequest
    done: threading.Event = field(default_factory=threading.Event)
    acknowledged: bool = False

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.acknowledged = self.ledger.upsert(self.request)
        finally:
            self.done.set()

    def join(self) -> bool:
        self._thread.join(timeout=180)
        assert self.done.is_set(), "the Upsert did not return"
        return self.acknowledged


def upserts_in_flight(metrics_port: int) -> float:
    return rpc_metric(metrics_port, "ragplane_rpc_in_flight", "Upsert")


def wait_until_handled(metrics_port: int, call: InFlightUpsert) -> None:
    """Until the service reports an Upsert in flight (or the call already returned)."""
    wait_until(
        lambda: upserts_in_flight(metrics_port) >= 1 or call.done.is_set(),
        30,
        "the Upsert to be handled",
        interval_s=0.005,
    )
