"""Per-tenant rate limits and daily spend budgets, with a priced provider chain.

A generation service beside the stack prices the stack's two free LLM servers (small tier
cheap, large tier dear), so that queries cost money and budgets bite.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import grpc
import pytest

from ragplane.cli.stack import Stack
from ragplane.runtime.errors import retry_after_s
from ragplane.v1 import generation_pb2, query_pb2_grpc
from tests.conftest import DATA
from tests.integration.corpus import ingest_folder
from tests.integration.generation_chain import chain_env, provider
from tests.integration.guarded import ask, details_of, query_env, status_of
from tests.integration.services import RunningService, service_process

POLICIES = {
    "limited": {"rate_per_s": 0.05, "burst": 2},
    "thrifty": {"daily_budget_usd": 1e-9},
    "capped": {"daily_hard_budget_usd": 1e-9},
}
# A tenant without limits or budgets (the defaults).
UNBUDGETED = "unbudgeted"
QUESTION = "How often is the Aurora 7 impeller inspected?"
# An analysis cue: the generation service's router sends this to the large tier.
HARD_QUESTION = "Explain why the Aurora 7 impeller is inspected so often"


@pytest.fixture(scope="module")
def limited_query(
    stack: Stack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RunningService, query_pb2_grpc.QueryServiceStub]]:
    log_dir = tmp_path_factory.mktemp("limits")
    generation_env = chain_env(
        provider(
            "cheap-small",
            stack.ports.llm,
            tier="small",
            input_price_per_mtok_usd=1.0,
            output_price_per_mtok_usd=2.0,
        ),
        provider(
            "dear-large",
            stack.ports.llm2,
            tier="large",
            input_price_per_mtok_usd=10.0,
            output_price_per_mtok_usd=20.0,
        ),
    )
    with service_process("generation", generation_env, log_dir) as generation:
        env = query_env(stack, redis_db=3, tenant_policies=json.dumps(POLICIES))
        env["QUERY_GENERATION_TARGET"] = generation.target
        with (
            service_process("query", env, log_dir) as service,
            grpc.insecure_channel(service.target) as channel,
        ):
            stub = query_pb2_grpc.QueryServiceStub(channel)
            for tenant in (*POLICIES, UNBUDGETED):
                ingest_folder(stub, tenant, DATA / "tenant-a")
            yield service, stub


def test_past_its_rate_a_tenant_gets_resource_exhausted_with_a_retry_delay(
    limited_query: tuple[RunningService, query_pb2_grpc.QueryServiceStub],
) -> None:
    service, stub = limited_query
    ask(stub, "limited", QUESTION)
    ask(stub, "limited", QUESTION)
    with pytest.raises(grpc.RpcError) as refused:
        ask(stub, "limited", QUESTION)
    assert status_of(refused.value) == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "rate limit" in details_of(refused.value)
    delay = retry_after_s(refused.value)
    # One token at 0.05/s takes 20 s; the bucket refilled a little during the two calls.
    assert delay is not None
    assert 0 < delay <= 20
    assert service.metric("ragplane_query_rate_limited_total", 'reason="rate"') >= 1
    # Another tenant is not affected.
    ask(stub, "thrifty", QUESTION)


def test_past_its_soft_budget_a_tenant_gets_the_small_tier(
    limited_query: tuple[RunningService, query_pb2_grpc.QueryServiceStub],
) -> None:
    _, stub = limited_query
    # Any answer the model writes costs more than thrifty's budget of 1e-9 USD a day.
    assert ask(stub, "thrifty", QUESTION).answer
    first = ask(stub, "thrifty", HARD_QUESTION)
    assert first.tier == generation_pb2.MODEL_TIER_SMALL
    assert "budget" in first.tier_reason
    assert first.provider == "cheap-small"


def test_without_budget_the_hard_question_goes_to_the_large_tier(
    limited_query: tuple[RunningService, query_pb2_grpc.QueryServiceStub],
) -> None:
    _, stub = limited_query
    response = ask(stub, UNBUDGETED, HARD_QUESTION)
    assert response.tier == generation_pb2.MODEL_TIER_LARGE
    assert response.provider == "dear-large"
    assert response.cost_usd > 0


def test_past_its_hard_budget_only_cached_answers_are_served(
    limited_query: tuple[RunningService, query_pb2_grpc.QueryServiceStub],
) -> None:
    service, stub = limited_query
    # The first answer costs more than capped's hard budget of 1e-9 USD a day, and is cached.
    assert ask(stub, "capped", HARD_QUESTION).answer
    repeated = ask(stub, "capped", HARD_QUESTION)
    # The cached answer costs nothing, so it is served past the budget, with what it saved.
    assert repeated.cache.hit
    assert repeated.cache.saved_usd > 0
    assert service.metric("ragplane_query_cache_saved_usd_total") >= repeated.cache.saved_usd
    with pytest.raises(grpc.RpcError) as refused:
        ask(stub, "capped", "How many operating hours between Aurora 7 inspections?")
    assert status_of(refused.value) == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "budget" in details_of(refused.value)
    delay = retry_after_s(refused.value)
    assert delay is not None
    assert 0 < delay <= 24 * 3600
    assert service.metric("ragplane_query_rate_limited_total", 'reason="budget"') >= 1
