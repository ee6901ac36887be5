"""The degradation matrix, each row produced for real: a dependency's process stopped, hung,
overloaded or slowed, or its port closed.

Every row answers OK (or with the documented UNAVAILABLE) before the caller's deadline and names
the degraded stage, its cause and the dependency in structured fields.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest

from ragplane.cli.stack import Ports, Stack
from ragplane.v1 import (
    common_pb2,
    embedding_pb2,
    embedding_pb2_grpc,
    query_pb2,
    query_pb2_grpc,
    retrieval_pb2,
)
from tests.conftest import DATA, REPO
from tests.integration.corpus import ingest_folder
from tests.integration.errors import expect_status
from tests.integration.generation_chain import chain_env, dead_port, provider
from tests.integration.guarded import ask
from tests.integration.orchestrator import degraded, query_service, stack_caches
from tests.integration.polling import wait_until
from tests.integration.services import RunningService, service_process
from tests.integration.toxiproxy import Toxiproxy
from tests.reranker import trained_test_reranker

QUESTION = "How do I create a venv?"
# A tenant and question of the Weaviate-down test: its documents live in that test's Weaviate.
CACHED_TENANT = "weaviate-down"
CACHED_QUESTION = "How often is the Aurora 7 impeller inspected?"


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


@pytest.fixture(scope="module")
def small_embedding(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    """An embedding service whose queue holds one call, and whose model takes one text at a
    time: a single call of many texts keeps it full for seconds."""
    env = {
        "EMBEDDING_REDIS_URL": "",
        "EMBEDDING_MAX_QUEUED_REQUESTS": "1",
        "EMBEDDING_MAX_BATCH_SIZE": "1",
    }
    with service_process("embedding", env, tmp_path_factory.mktemp("small-embedding")) as service:
        yield service


@contextmanager
def _queue_filled(service: RunningService) -> Iterator[None]:
    """One call of 256 long texts queued in ``service`` while the block runs, cancelled after
    (a cancelled call leaves the queue before its texts reach the model)."""
    texts = [f"Flood text {n}: " + "gaskets, flanges and impellers " * 30 for n in range(256)]
    queued = "ragplane_embedding_queued_requests"
    with grpc.insecure_channel(service.target) as channel:
        flood = embedding_pb2_grpc.EmbeddingServiceStub(channel).Embed.future(
            embedding_pb2.EmbedRequest(texts=texts), timeout=300
        )
        try:
            wait_until(lambda: service.metric(queued) >= 1, 60, "the flood to be queued")
            yield
        finally:
            flood.cancel()
            wait_until(lambda: service.metric(queued) == 0, 60, "the flood to leave the queue")


def test_an_overloaded_embedding_service_gives_bm25_only_search(
    stack: Stack, docs_tenant: str, small_embedding: RunningService, tmp_path: Path
) -> None:
    queue_full = 'reason="queue_full"'
    refused = small_embedding.metric("ragplane_embedding_rejected_total", queue_full)
    with (
        query_service(
            stack, tmp_path, embedding_target=small_embedding.target, generation_min_s="600"
        ) as query,
        _queue_filled(small_embedding),
    ):
        response = query.ask(docs_tenant, QUESTION, timeout_s=30)
        # Still full: the query's embedding call found no room.
        assert small_embedding.metric("ragplane_embedding_queued_requests") >= 1
    # It was refused with RESOURCE_EXHAUSTED (queue full), not lost or timed out.
    assert small_embedding.metric("ragplane_embedding_rejected_total", queue_full) > refused
    embedding = degraded(response)[common_pb2.STAGE_EMBEDDING]
    assert embedding.dependency == "embedding service"
    assert embedding.cause == common_pb2.DEGRADATION_CAUSE_UNAVAILABLE
    assert "BM25 only" in embedding.reason
    assert response.citations, "BM25 still finds the passages"


def test_a_stopped_embedding_process_times_out_into_bm25_only_search_then_is_skipped(
    stack: Stack, docs_tenant: str, small_embedding: RunningService, tmp_path: Path
) -> None:
    with query_service(
        stack,
        tmp_path,
        embedding_target=small_embedding.target,
        embed_timeout_s="0.5",
        breaker_fail_max="2",
        generation_min_s="600",
    ) as query:
        small_embedding.process.send_signal(signal.SIGSTOP)  # hung: it answers nothing
        try:
            responses = [query.ask(docs_tenant, QUESTION, timeout_s=30) for _ in range(3)]
        finally:
            small_embedding.process.send_signal(signal.SIGCONT)
    causes = [degraded(r)[common_pb2.STAGE_EMBEDDING].cause for r in responses]
    assert causes == [
        common_pb2.DEGRADATION_CAUSE_TIMEOUT,
        common_pb2.DEGRADATION_CAUSE_TIMEOUT,
        common_pb2.DEGRADATION_CAUSE_CIRCUIT_OPEN,
    ]
    assert all(response.citations for response in responses)


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


def _retrieval_env(weaviate: Stack, **settings: str) -> dict[str, str]:
    """Settings of a retrieval service of a test's own, on the Weaviate of ``weaviate``."""
    return {
        "RETRIEVAL_WEAVIATE_HTTP_PORT": str(weaviate.ports.weaviate_http),
        "RETRIEVAL_WEAVIATE_GRPC_PORT": str(weaviate.ports.weaviate_grpc),
        **settings,
    }


def test_weaviate_down_serves_cached_answers_and_names_weaviate_for_the_rest(
    stack: Stack, tmp_path: Path
) -> None:
    own = Stack(tmp_path / "own", Ports.free(), bin_dir=REPO / ".bin")
    own.up(["weaviate"], report=lambda line: None)
    try:
        retrieval_env = _retrieval_env(own, RETRIEVAL_WEAVIATE_TIMEOUT_S="2")
        # Every Weaviate this query service uses is the one stopped below: its documents and
        # its semantic cache; the exact cache is in the stack's Redis.
        caches = {
            **stack_caches(stack),
            "weaviate_http_port": str(own.ports.weaviate_http),
            "weaviate_grpc_port": str(own.ports.weaviate_grpc),
        }
        with (
            service_process("retrieval", retrieval_env, tmp_path) as retrieval,
            query_service(stack, tmp_path, retrieval_target=retrieval.target, **caches) as query,
        ):
            ingest_folder(query.stub, CACHED_TENANT, DATA / "tenant-a")
            fresh = ask(query.stub, CACHED_TENANT, CACHED_QUESTION)
            assert (fresh.cache.hit, list(fresh.degradations)) == (False, []), fresh

            own.stop("weaviate", signal.SIGKILL)
            cached = ask(query.stub, CACHED_TENANT, CACHED_QUESTION)
            assert (cached.cache.hit, cached.cache.layer) == (True, query_pb2.CACHE_LAYER_EXACT)
            assert cached.answer == fresh.answer
            assert [c.chunk_id for c in cached.citations] == [c.chunk_id for c in fresh.citations]
            # Within a deadline shorter than weaviate-client's own resends of a refused call
            # (about a minute): the semantic cache gives up after its timeout, not theirs.
            expect_status(
                lambda: query.stub.Query(
                    query_pb2.QueryRequest(
                        tenant=CACHED_TENANT, query="Which grease do Aurora 7 bearings take?"
                    ),
                    timeout=20,
                ),
                grpc.StatusCode.UNAVAILABLE,
                "retrieval service",
                "Weaviate",
            )
    finally:
        own.down(report=lambda line: None)


def test_a_stopped_retrieval_service_is_unavailable_and_named_except_for_cached_answers(
    stack: Stack, docs_tenant: str, tmp_path: Path
) -> None:
    retrieval_env = _retrieval_env(stack, RETRIEVAL_DRAIN_DELAY_S="0.2")
    question = "How do I remove a virtual environment?"
    with (
        service_process("retrieval", retrieval_env, tmp_path) as retrieval,
        query_service(
            stack, tmp_path, retrieval_target=retrieval.target, **stack_caches(stack)
        ) as query,
    ):
        fresh = ask(query.stub, docs_tenant, question)
        retrieval.process.send_signal(signal.SIGTERM)
        assert retrieval.process.wait(timeout=60) == 0
        cached = ask(query.stub, docs_tenant, question)
        expect_status(
            lambda: ask(query.stub, docs_tenant, "What does the -m switch of python do?"),
            grpc.StatusCode.UNAVAILABLE,
            "retrieval service",
        )
    assert not fresh.cache.hit
    assert cached.cache.hit
    assert cached.answer == fresh.answer


def test_generation_service_down_gives_an_extractive_answer_then_stops_calling_it(
    stack: Stack, docs_tenant: str, tmp_path: Path
) -> None:
    generation_env = {
        **chain_env(provider("local", stack.ports.llm)),
        "GENERATION_DRAIN_DELAY_S": "0.2",
    }
    with service_process("generation", generation_env, tmp_path) as stopped:
        stopped.process.send_signal(signal.SIGTERM)
        assert stopped.process.wait(timeout=60) == 0
        with query_service(
            stack, tmp_path, generation_target=stopped.target, breaker_fail_max="1"
        ) as query:
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
    retrieval_env = _retrieval_env(
        stack,
        RETRIEVAL_RERANKER_PATH=str(trained_test_reranker()),
        RETRIEVAL_RERANK_BUDGET_MS="60000",
    )
    with (
        service_process("retrieval", retrieval_env, tmp_path) as retrieval,
        # The search's cap leaves the reranker its own limit on a busy machine.
        query_service(
            stack,
            tmp_path,
            retrieval_target=retrieval.target,
            generation_min_s="600",
            search_timeout_s="60",
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
