"""A stack with replicas behind its DNS server, a steady query load, what each replica served."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc

from ragplane.cli.stack import REPLICATED, Ports, Replicas, Stack, replica_host
from ragplane.v1 import common_pb2, query_pb2, query_pb2_grpc
from tests.conftest import DATA, REPO
from tests.integration.corpus import ingest_folder
from tests.integration.polling import wait_until
from tests.integration.services import metric
from tests.stack_fixtures import TEST_ENV

# Servers end each client connection after this long, so that clients find new replicas soon.
CONNECTION_AGE_S = 5.0
TENANT = "scale-out"
QUESTIONS = [
    "How often is the Aurora 7 impeller inspected?",
    "What does the Aurora pump need before a restart?",
    "Which parts of the Aurora 7 wear first?",
]
SERVICE_NAMES = {
    "embedding": "EmbeddingService",
    "retrieval": "RetrievalService",
    "generation": "GenerationService",
}
# The call the query service makes of each replicated service for one query.
QUERY_CALLS = {"embedding": "Embed", "retrieval": "Search", "generation": "Generate"}


def replica_env() -> dict[str, str]:
    ages = {
        f"{service.upper()}_{setting}": str(CONNECTION_AGE_S)
        for service in REPLICATED
        for setting in ("MAX_CONNECTION_AGE_S", "MAX_CONNECTION_AGE_GRACE_S")
    }
    return {
        **TEST_ENV,
        **ages,
        "GENERATION_DEFAULT_MAX_OUTPUT_TOKENS": "16",
        # Every query goes through every service: no answer comes from a cache.
        "QUERY_ANSWER_CACHE_ENABLED": "false",
        # The tests count queries degraded by a replica going away, not by a 2-core machine
        # too busy to embed a question within the default 1 s.
        "QUERY_EMBED_TIMEOUT_S": "10",
    }


@contextmanager
def replicated_stack(run_dir: Path, replicas: Replicas) -> Iterator[Stack]:
    """A whole stack with ``replicas``, tenant TENANT ingested; stopped on exit."""
    stack = Stack(
        run_dir,
        Ports.free(),
        bin_dir=REPO / ".bin",
        python=sys.executable,
        extra_env=replica_env(),
        replicas=replicas,
    )
    try:
        stack.up(timeout_s=600, report=lambda line: print(line, file=sys.stderr))
        with grpc.insecure_channel(f"127.0.0.1:{stack.ports.query}") as channel:
            ingest_folder(query_pb2_grpc.QueryServiceStub(channel), TENANT, DATA / "tenant-a")
        yield stack
    finally:
        stack.down(report=lambda line: None)


def served(stack: Stack, service: str) -> dict[str, float]:
    """Calls of the query's one method each running replica of ``service`` answered OK, from
    the replica's own metrics."""
    method = f"/ragplane.v1.{SERVICE_NAMES[service]}/{QUERY_CALLS[service]}"
    labels = f'code="OK",method="{method}",service="{service}"'
    port = getattr(stack.ports, f"{service}_metrics")
    return {
        name: metric(port, "ragplane_rpc_requests_total", labels, host=replica_host(name))
        for name in stack.instances(service)
        if stack.pid(name) is not None
    }


def shares(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Each replica's part of the calls served between two readings of ``served``."""
    calls = {name: after[name] - before.get(name, 0.0) for name in after}
    total = sum(calls.values())
    assert total > 0, "no calls served"
    return {name: count / total for name, count in calls.items()}


@dataclass(frozen=True)
class Outcomes:
    total: int = 0
    failed: int = 0
    # Answered from a BM25-only search: the question could not be embedded.
    degraded: int = 0

    def plus(self, other: Outcomes, sign: int = 1) -> Outcomes:
        return Outcomes(
            self.total + sign * other.total,
            self.failed + sign * other.failed,
            self.degraded + sign * other.degraded,
        )

    def since(self, earlier: Outcomes) -> Outcomes:
        return self.plus(earlier, sign=-1)


class QueryLoad:
    """Queries sent back to back by ``workers`` threads through the query service until the
    load is stopped; counts how each ended."""

    def __init__(self, stack: Stack, workers: int = 3) -> None:
        self._channel = grpc.insecure_channel(f"127.0.0.1:{stack.ports.query}")
        self._stub = query_pb2_grpc.QueryServiceStub(self._channel)
        self._outcomes = Outcomes()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._send, args=(worker,), daemon=True)
            for worker in range(workers)
        ]
        self.errors: list[str] = []

    def __enter__(self) -> QueryLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()
        self._channel.close()

    def outcomes(self) -> Outcomes:
        with self._lock:
            return self._outcomes

    def wait_for(self, queries: int, timeout_s: float = 300) -> Outcomes:
        """Wait until ``queries`` more have ended; what has ended since the call."""
        start = self.outcomes()
        wait_until(
            lambda: self.outcomes().total >= start.total + queries,
            timeout_s,
            f"{queries} queries",
            interval_s=0.2,
        )
        return self.outcomes().since(start)

    def _send(self, worker: int) -> None:
        sent = 0
        while not self._stop.is_set():
            question = QUESTIONS[(worker + sent) % len(QUESTIONS)]
            sent += 1
            self._record(self._ask(question))

    def _ask(self, question: str) -> Outcomes:
        request = query_pb2.QueryRequest(tenant=TENANT, query=question)
        try:
            response = self._stub.Query(request, timeout=60)
        except grpc.RpcError as error:
            self.errors.append(f"{error.code()}: {error.details()}")
            return Outcomes(total=1, failed=1)
        stages = {d.stage for d in response.degradations}
        return Outcomes(total=1, degraded=int(common_pb2.STAGE_EMBEDDING in stages))

    def _record(self, outcome: Outcomes) -> None:
        with self._lock:
            self._outcomes = self._outcomes.plus(outcome)
