"""Answer caches end to end: exact and semantic hits, the gate's misses, tenant isolation,
invalidation by ingest and delete, temperature bypass, and the metrics the chart relies on."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import grpc
import pytest

from ragplane.cli.stack import Stack
from ragplane.v1 import query_pb2, query_pb2_grpc
from tests.conftest import DATA
from tests.integration.corpus import ingest_folder
from tests.integration.guarded import ask, query_env
from tests.integration.services import RunningService, service_process

QUESTION = "How often is the Aurora 7 impeller inspected?"
PARAPHRASE = "How often does the Aurora 7 impeller get inspected?"


@pytest.fixture(scope="module")
def cached_query(
    stack: Stack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RunningService, query_pb2_grpc.QueryServiceStub]]:
    log_dir = tmp_path_factory.mktemp("answer-cache")
    with (
        service_process("query", query_env(stack, redis_db=2), log_dir) as service,
        grpc.insecure_channel(service.target) as channel,
    ):
        yield service, query_pb2_grpc.QueryServiceStub(channel)


def _tenant(stub: query_pb2_grpc.QueryServiceStub, name: str, folder: str) -> str:
    """A tenant of one test's own (so that no test sees another's cached answers), holding
    the documents of tests/data/<folder>."""
    ingest_folder(stub, name, DATA / folder)
    return name


def _metrics_text(service: RunningService) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{service.metrics_port}/metrics") as reply:
        text: str = reply.read().decode()
    return text


def test_cache_series_exist_before_the_first_query(
    cached_query: tuple[RunningService, query_pb2_grpc.QueryServiceStub],
) -> None:
    service, _ = cached_query
    text = _metrics_text(service)
    for layer in ("exact", "semantic"):
        for outcome in ("hit", "miss", "bypass", "error"):
            assert (
                f'ragplane_query_cache_lookups_total{{layer="{layer}",outcome="{outcome}"}}' in text
            )
    for reason in ("rate", "budget"):
        assert f'ragplane_query_rate_limited_total{{reason="{reason}"}}' in text
    assert "ragplane_query_cache_saved_usd_total 0.0" in text
    assert "ragplane_query_redis_available 1.0" in text


def test_a_repeated_question_is_an_exact_hit_and_says_so(
    cached_query: tuple[RunningService, query_pb2_grpc.QueryServiceStub],
) -> None:
    service, stub = cached_query
    tenant = _tenant(stub, "exact-a", "tenant-a")
    first = ask(stub, tenant, QUESTION)
    assert not first.cache.hit
    again = ask(stub, tenant, "  how often is the aurora 7 impeller INSPECTED ")
    assert again.cache.hit
    assert again.cache.layer == query_pb2.CACHE_LAYER_EXACT
    assert again.cache.similarity == pytest.approx(1.0)
    assert again.cache.cached_query == QUESTION
    assert (again.answer, again.provider) == (first.answer, first.provider)
    assert [c.chunk_id for c in again.citations] == [c.chunk_id for c in first.citations]
    assert again.cost_usd == 0.0
    assert again.usage.output_tokens == 0
    assert service.metric("ragplane_query_cache_lookups_total", 'layer="exact",outcome="hit"') >= 1


def test_a_paraphrase_is_a_semantic_hit_but_negation_and_changed_number_are_not(
    cached_query: tuple[RunningService, query_pb2_grpc.QueryServiceStub],
) -> None:
    _, stub = cached_query
    tenant = _tenant(stub, "semantic-a", "tenant-a")
    ask(stub, tenant, QUESTION)
    paraphrase = ask(stub, tenant, PARAPHRASE)
    assert paraphrase.cache.hit, paraphrase.cache
    assert paraphrase.cache.layer == query_pb2.CACHE_LAYER_SEMANTIC
    assert 0.95 <= paraphrase.cache.similarity < 1.0
    assert paraphrase.cache.cached_query == QUESTION
    for different in (
        "How often is the Aurora 7 impeller not inspected?",
        "How often is the Aurora 8 impeller inspected?",
    ):
        assert not ask(stub, tenant, different).cache.hit, different


def test_another_tenant_never_gets_the_cached_answer(
    cached_query: tuple[RunningService, query_pb2_grpc.QueryServiceStub],
) -> None:
    _, stub = cached_query
    # A's cache holds QUESTION. B asks it word for word (exact layer), C a paraphrase of it
    # (semantic layer); each tenant asks first, so any hit could only be A's answer.
    a = _tenant(stub, "isolated-a", "tenant-a")
    assert ask(stub, a, QUESTION).citations
    assert ask(stub, a, QUESTION).cache.hit
    b = _tenant(stub, "isolated-b", "tenant-b")
    c = _tenant(stub, "isolated-c", "tenant-b")
    for tenant, question in ((b, QUESTION), (c, PARAPHRASE)):
        response = ask(stub, tenant, question, top_k=10)
        assert not response.cache.hit, tenant
        assert {c.document_id for c in response.citations} == {"zephyr-kilns.md"}


def test_temperature_above_zero_bypasses_the_caches(
    cached_query: tuple[RunningService, query_pb2_grpc.QueryServiceStub],
) -> None:
    service, stub = cached_query
    before = service.metric("ragplane_query_cache_lookups_total", 'layer="exact",outcome="bypass"')
    tenant = _tenant(stub, "warm-a", "tenant-a")
    ask(stub, tenant, QUESTION)
    response = ask(stub, tenant, QUESTION, temperature=0.7)
    assert not response.cache.hit
    after = service.metric("ragplane_query_cache_lookups_total", 'layer="exact",outcome="bypass"')
    assert after == before + 1


def test_ingest_or_delete_for_a_tenant_invalidates_only_its_answers(
    cached_query: tuple[RunningService, query_pb2_grpc.QueryServiceStub],
) -> None:
    _, stub = cached_query
    a = _tenant(stub, "invalidated-a", "tenant-a")
    b = _tenant(stub, "invalidated-b", "tenant-b")
    b_question = "How long is the Zephyr kiln held at peak temperature?"
    for tenant, question in ((a, QUESTION), (b, b_question)):
        ask(stub, tenant, question)
        assert ask(stub, tenant, question).cache.hit

    ingest_folder(stub, a, DATA / "tenant-a")
    assert not ask(stub, a, QUESTION).cache.hit
    assert ask(stub, a, QUESTION).cache.hit
    assert ask(stub, b, b_question).cache.hit, "B's cache must survive A's ingest"

    removed = stub.DeleteDocuments(
        query_pb2.DeleteDocumentsRequest(tenant=b, document_ids=["no-such-document.md"]),
        timeout=60,
    )
    assert removed.deleted_chunks == 0
    assert not ask(stub, b, b_question).cache.hit
    assert ask(stub, a, QUESTION).cache.hit
