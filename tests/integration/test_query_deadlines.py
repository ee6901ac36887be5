"""The query path keeps the caller's deadline when generation is slowed past it.

toxiproxy sits between a query service and a generation service of this test's own and holds
every answer back for longer than the deadline. That generation service's providers refuse at
once (it answers without the LLM): the 200 calls held back would otherwise queue on the stack's
LLM servers and open the stack's provider breakers for the tests that run after this one.
Each of 200 queries with a 2 s deadline must still come back OK, with an extractive answer
flagged degraded: an answer later than the deadline would have failed with DEADLINE_EXCEEDED.
A correctness check, not a benchmark.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc

from ragplane.cli.stack import Stack
from ragplane.v1 import common_pb2, query_pb2
from tests.integration.generation_chain import chain_env, dead_port, provider
from tests.integration.orchestrator import QueryService, degraded, query_service
from tests.integration.services import service_process
from tests.integration.toxiproxy import Toxiproxy

QUERIES = 200
CONCURRENCY = 8
DEADLINE_S = 2.0
# Seen from the client, an answer may arrive this much after the deadline (thread scheduling on
# a loaded 2-core machine); the server itself must answer before the deadline or the call fails.
MARGIN_S = 0.25

Outcome = tuple[float, query_pb2.QueryResponse | grpc.RpcError]


def _timed_query(service: QueryService, tenant: str, number: int) -> Outcome:
    request = query_pb2.QueryRequest(tenant=tenant, query=f"How do I create venv number {number}?")
    started = time.monotonic()
    try:
        response = service.stub.Query(request, timeout=DEADLINE_S)
    except grpc.RpcError as error:
        return time.monotonic() - started, error
    return time.monotonic() - started, response


def test_generation_slowed_past_the_deadline_still_answers_every_query_in_time(
    stack: Stack, docs_tenant: str, tmp_path: Path, toxiproxy: Toxiproxy
) -> None:
    generation_env = chain_env(provider("down-a", dead_port()), provider("down-b", dead_port()))
    with service_process("generation", generation_env, tmp_path) as answering:
        proxy = toxiproxy.create_proxy("slow-generation", answering.target)
        try:
            proxy.add_latency(10_000)
            with (
                query_service(stack, tmp_path, generation_target=proxy.address) as service,
                ThreadPoolExecutor(CONCURRENCY) as pool,
            ):
                outcomes = list(
                    pool.map(lambda n: _timed_query(service, docs_tenant, n), range(QUERIES))
                )
        finally:
            proxy.delete()
    failures = [str(result) for _, result in outcomes if isinstance(result, grpc.RpcError)]
    assert not failures, failures[:3]
    slowest = max(elapsed for elapsed, _ in outcomes)
    assert slowest <= DEADLINE_S + MARGIN_S, slowest
    for _, response in outcomes:
        assert isinstance(response, query_pb2.QueryResponse)
        generation = degraded(response)[common_pb2.STAGE_GENERATION]
        assert generation.dependency == "generation service"
        assert generation.cause in (
            common_pb2.DEGRADATION_CAUSE_TIMEOUT,
            common_pb2.DEGRADATION_CAUSE_NO_BUDGET,
        )
        assert response.citations
