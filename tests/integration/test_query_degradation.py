"""The degradation matrix, each row produced for real: a dependency stopped, slowed or cut.

Every row answers OK (or with the documented UNAVAILABLE) before the caller's deadline and names
the degraded stage, its cause and the dependency in structured fields.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import grpc
import pytest

from ragplane.cli.stack import Ports, Stack
from ragplane.v1 import common_pb2, query_pb2, query_pb2_grpc, retrieval_pb2
from tests.conftest import REPO
from tests.integration.errors import expect_status
from tests.integration.orchestrator import degraded, query_service, stack_caches
from tests.integration.services import service_process
from tests.integration.test_generation_fallback import chain_env, dead_port, provider
from tests.integration.toxiproxy import Toxiproxy
from tests.reranker import trained_test_reranker

QUESTION = "How do I create a venv?"


def test_embedding_down_searches_with_bm25_only_then_stops_calling_it(
    stack: Stack, docs_tenant: str, tmp_path: Path
) -> None:
    dead = f"127.0.0.1:{dead_port()}"
    with query_service(
        stack, tmp_path, embedding_target=dead, breaker_fail_max="2", generation_min_s="600"
    ) as query:
        responses = [query.ask(docs_tenant, QUESTION, timeout_s=30) for _ in range(3)]
        breaker = query.breaker_state("embedding")
    causes = []
    for response in responses:
        embedding = degraded(response)[common_pb2.STAGE_EMBEDDING]
        assert embedding.dependency == "embedding service"
        assert "BM25 only" in embedding.reason
        assert response.citations, "BM25 still finds the passages"
        causes.append(embedding.cause)
    assert breaker == 2, responses  # open
    assert causes == [
        common_pb2.DEGRADATION_CAUSE_UNAVAILABLE,
        common_pb2.DEGRADATION_CAUSE_UNAVAILABLE,
        common_pb2.DEGRADATION_CAUSE_CIRCUIT_OPEN,
    ]


def test_slow_embedding_times_out_into_bm25_only_search_within_the_deadline(
    stack: Stack, docs_tenant: str, tmp_path: Path, toxiproxy: Toxiproxy
) -> None:
    proxy = toxiproxy.create_proxy("slow-embedding", f"127.0.0.1:{stack.ports.embedding}")
    try:
        proxy.add_latency(5_000)
        # With the answer caches on: their semantic lookup embeds the question too, and must
        # not wait longer for it than the pipeline would.
        with query_service(
            stack,
            tmp_path,
            embedding_target=proxy.address,
            embed_timeout_s="0.5",
            generation_min_s="600",
            **stack_caches(stack),
        ) as query:
            started = time.monotonic()
            response = query.ask(docs_tenant, QUESTION, timeout_s=10)
            elapsed = time.monotonic() - started
    finally:
        proxy.delete()
    embedding = degraded(response)[common_pb2.STAGE_EMBEDDING]
    assert embedding.cause == common_pb2.DEGRADATION_CAUSE_TIMEOUT
    assert response.citations
    # Correctness, not speed: the 5 s of added latency were not waited for (the semantic cache
    # lookup and the pipeline each give the embedding at most 0.5 s).
    assert elapsed < 5, elapsed


def test_weaviate_down_is_unavailable_and_says_what_is_down(stack: Stack, tmp_path: Path) -> None:
    own = Stack(tmp_path / "own", Ports.free(), bin_dir=REPO / ".bin")
    own.up(["weaviate"], report=lambda line: None)
    try:
        retrieval_env = {
            "RETRIEVAL_WEAVIATE_HTTP_PORT": str(own.ports.weaviate_http),
            "RETRIEVAL_WEAVIATE_GRPC_PORT": str(own.ports.weaviate_grpc),
            "RETRIEVAL_WEAVIATE_TIMEOUT_S": "2",
        }
        with service_process("retrieval", retrieval_env, tmp_path) as retrieval:
            own.stop("weaviate", signal.SIGKILL)
            with query_service(stack, tmp_path, retrieval_target=retrieval.target) as query:
                expect_status(
                    lambda: query.ask("docs", QUESTION, timeout_s=20),
                    grpc.StatusCode.UNAVAILABLE,
                    "retrieval service",
                    "Weaviate",
                )
    finally:
        own.down(report=lambda line: None)


def test_generation_service_down_gives_an_extractive_answer_then_stops_calling_it(
    stack: Stack, docs_tenant: str, tmp_path: Path
) -> None:
    dead = f"127.0.0.1:{dead_port()}"
    with query_service(stack, tmp_path, generation_target=dead, breaker_fail_max="1") as query:
        first = query.ask(docs_tenant, QUESTION, timeout_s=30)
        second = query.ask(docs_tenant, QUESTION, timeout_s=30)
        assert query.breaker_state("generation") == 2
    for response, cause in (
        (first, common_pb2.DEGRADATION_CAUSE_UNAVAILABLE),
        (second, common_pb2.DEGRADATION_CAUSE_CIRCUIT_OPEN),
    ):
        generation = degraded(response)[common_pb2.STAGE_GENERATION]
        assert (generation.cause, generation.dependency) == (cause, "generation service")
        assert response.answer.strip()
        assert "[1]" in response.answer
        assert response.citations
        assert response.cost_usd == 0.0


def test_too_little_time_for_generation_gives_an_extractive_answer(
    stack: Stack, docs_tenant: str, tmp_path: Path
) -> None:
    with query_service(stack, tmp_path, generation_min_s="20") as query:
        response = query.ask(docs_tenant, QUESTION, timeout_s=10)
    generation = degraded(response)[common_pb2.STAGE_GENERATION]
    assert generation.cause == common_pb2.DEGRADATION_CAUSE_NO_BUDGET
    assert response.citations
    assert response.budget_ms == pytest.approx(10_000, rel=0.05)


def test_every_llm_down_gives_a_cited_extractive_answer_flagged_degraded(
    stack: Stack, docs_tenant: str, tmp_path: Path
) -> None:
    generation_env = chain_env(provider("down-a", dead_port()), provider("down-b", dead_port()))
    with (
        service_process("generation", generation_env, tmp_path) as generation,
        query_service(stack, tmp_path, generation_target=generation.target) as query,
    ):
        response = query.ask(docs_tenant, QUESTION, timeout_s=60)
    assert response.answer.strip()
    assert response.citations
    assert [d.stage for d in response.degradations] == [common_pb2.STAGE_GENERATION]
    assert "down-a" in response.degradations[0].reason
    assert response.cost_usd == 0.0


def test_a_rerank_that_cannot_run_keeps_the_hybrid_order_and_says_so(
    query: query_pb2_grpc.QueryServiceStub, docs_tenant: str
) -> None:
    # The stack's retrieval service has no reranker configured.
    request = query_pb2.QueryRequest(
        tenant=docs_tenant,
        query=QUESTION,
        rerank=retrieval_pb2.RERANK_MODE_ON,
        max_output_tokens=8,
    )
    response = query.Query(request, timeout=120)
    rerank = degraded(response)[common_pb2.STAGE_RERANK]
    assert "no reranker configured" in rerank.reason
    assert response.citations


def test_a_rerank_that_runs_is_reported_as_a_stage_of_its_own(
    stack: Stack, docs_tenant: str, tmp_path: Path
) -> None:
    retrieval_env = {
        "RETRIEVAL_WEAVIATE_HTTP_PORT": str(stack.ports.weaviate_http),
        "RETRIEVAL_WEAVIATE_GRPC_PORT": str(stack.ports.weaviate_grpc),
        "RETRIEVAL_RERANKER_PATH": str(trained_test_reranker()),
        "RETRIEVAL_RERANK_BUDGET_MS": "60000",
    }
    with (
        service_process("retrieval", retrieval_env, tmp_path) as retrieval,
        query_service(
            stack, tmp_path, retrieval_target=retrieval.target, generation_min_s="600"
        ) as service,
    ):
        request = query_pb2.QueryRequest(
            tenant=docs_tenant, query=QUESTION, rerank=retrieval_pb2.RERANK_MODE_ON
        )
        response = service.stub.Query(request, timeout=120)
    assert common_pb2.STAGE_RERANK not in degraded(response)
    stages = [timing.stage for timing in response.timings]
    assert stages[:3] == [
        common_pb2.STAGE_EMBEDDING,
        common_pb2.STAGE_RETRIEVAL,
        common_pb2.STAGE_RERANK,
    ]
    assert response.citations
