"""The provider chain against real llama-cpp-python servers: fallback, breakers, cost, tiers.

Extra generation services run beside the stack (service_process) with their own chains, so
that stopping a primary here never disturbs the stack's own generation service.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ragplane.cli.stack import Stack, http_ok
from ragplane.v1 import common_pb2, generation_pb2, generation_pb2_grpc
from tests.integration.generation_chain import (
    PASSAGES,
    QUESTION,
    LlamaServer,
    ask,
    breaker_state,
    chain_env,
    dead_port,
    provider,
)
from tests.integration.polling import wait_until
from tests.integration.services import service_process


@pytest.fixture
def own_llama(tmp_path: Path) -> Iterator[LlamaServer]:
    server = LlamaServer(dead_port(), tmp_path / "own-llama.log")
    try:
        yield server
    finally:
        server.stop()


def test_stack_chain_is_llm_then_llm2(
    stack: Stack, generation: generation_pb2_grpc.GenerationServiceStub
) -> None:
    assert http_ok(f"http://127.0.0.1:{stack.ports.llm2}/v1/models")()
    response = generation.Generate(
        generation_pb2.GenerateRequest(question=QUESTION, passages=PASSAGES, max_output_tokens=8),
        timeout=60,
    )
    assert response.provider == "local-smollm2"
    assert [(a.provider, a.outcome, a.calls) for a in response.attempts] == [
        ("local-smollm2", generation_pb2.ATTEMPT_OUTCOME_SUCCEEDED, 1)
    ]
    assert not response.degradations


def test_primary_down_answers_from_secondary(stack: Stack, tmp_path: Path) -> None:
    env = chain_env(
        provider("primary", dead_port()),
        provider("secondary", stack.ports.llm),
        retry_max_attempts="2",
    )
    with service_process("generation", env, tmp_path) as service:
        response = ask(service)
    assert response.provider == "secondary"
    assert response.text.strip()
    assert not response.degradations
    first, second = response.attempts
    assert (first.provider, first.outcome, first.calls) == (
        "primary",
        generation_pb2.ATTEMPT_OUTCOME_FAILED,
        2,
    )
    assert "unreachable" in first.reason
    assert (second.provider, second.outcome) == (
        "secondary",
        generation_pb2.ATTEMPT_OUTCOME_SUCCEEDED,
    )


def test_breaker_opens_after_fail_max_and_closes_after_reset_timeout(
    stack: Stack, own_llama: LlamaServer, tmp_path: Path
) -> None:
    reset_timeout_s = 3.0
    env = chain_env(
        provider("primary", own_llama.port),
        provider("secondary", stack.ports.llm),
        retry_max_attempts="1",
        breaker_fail_max="2",
        breaker_reset_timeout_s=str(reset_timeout_s),
    )
    own_llama.start()
    with service_process("generation", env, tmp_path) as service:
        assert ask(service).provider == "primary"
        assert breaker_state(service, "primary") == 0

        own_llama.stop()  # the primary goes away mid-run
        for _ in range(2):
            response = ask(service)
            assert response.provider == "secondary"
            assert response.attempts[0].outcome == generation_pb2.ATTEMPT_OUTCOME_FAILED
        assert breaker_state(service, "primary") == 2  # open after fail_max failures

        started = time.monotonic()
        skipped = ask(service)
        assert skipped.provider == "secondary"
        assert (skipped.attempts[0].outcome, skipped.attempts[0].reason) == (
            generation_pb2.ATTEMPT_OUTCOME_SKIPPED,
            "circuit breaker open",
        )
        assert skipped.attempts[0].calls == 0

        own_llama.start()
        wait_until(
            lambda: breaker_state(service, "primary") == 1,
            reset_timeout_s + 30 - (time.monotonic() - started),
            "the breaker to turn half-open once reset_timeout passed",
            interval_s=0.2,
        )
        trial = ask(service)
        assert trial.provider == "primary"  # the trial call succeeded ...
        assert breaker_state(service, "primary") == 0  # ... and closed the breaker


def test_every_provider_down_gives_extractive_answer_with_citations(
    stack: Stack, tmp_path: Path
) -> None:
    env = chain_env(provider("a", dead_port()), provider("b", dead_port()), retry_max_attempts="2")
    with service_process("generation", env, tmp_path) as service:
        started = time.monotonic()
        response = ask(service, timeout_s=10)
        elapsed = time.monotonic() - started
        assert service.metric("ragplane_generation_extractive_answers_total") == 1
    assert elapsed < 5
    assert response.finish_reason == "extractive"
    assert response.provider == ""
    assert response.text == (
        "The Aurora 7 impeller is inspected every 400 operating hours. [1] "
        "Aurora pumps ship with a two-year warranty. [2]"
    )
    assert [c.chunk_id for c in response.citations] == ["aurora-pumps.md#0", "aurora-pumps.md#1"]
    [degradation] = response.degradations
    assert degradation.stage == common_pb2.STAGE_GENERATION
    assert "a: unreachable" in degradation.reason
    assert "b: unreachable" in degradation.reason
    assert [a.outcome for a in response.attempts] == [generation_pb2.ATTEMPT_OUTCOME_FAILED] * 2


def test_deadline_too_short_for_any_call_gives_extractive_answer(
    stack: Stack, tmp_path: Path
) -> None:
    env = chain_env(provider("primary", stack.ports.llm), min_call_time_s="2")
    with service_process("generation", env, tmp_path) as service:
        response = ask(service, timeout_s=1.0)
    assert response.degradations[0].stage == common_pb2.STAGE_GENERATION
    assert response.attempts[0].outcome == generation_pb2.ATTEMPT_OUTCOME_SKIPPED
    assert "no time left" in response.attempts[0].reason
    assert response.citations


def test_cost_and_tokens_by_provider_model_and_tenant(stack: Stack, tmp_path: Path) -> None:
    prices = {"input_price_per_mtok_usd": 150.0, "output_price_per_mtok_usd": 600.0}
    env = chain_env(provider("priced", stack.ports.llm, **prices))
    with service_process("generation", env, tmp_path) as service:
        response = ask(service, tenant="acme")
        # prometheus-client writes labels in alphabetical order.
        labels = f'model="{response.model}",provider="priced",tenant="acme"'
        cost_metric = service.metric("ragplane_generation_cost_usd_total", labels)
        input_tokens = service.metric(
            "ragplane_generation_tokens_total", 'direction="input",' + labels
        )
        output_tokens = service.metric(
            "ragplane_generation_tokens_total", 'direction="output",' + labels
        )
    usage = response.usage
    assert usage.input_tokens > 20
    assert 0 < usage.output_tokens <= 8
    expected = (usage.input_tokens * 150.0 + usage.output_tokens * 600.0) / 1e6
    assert response.cost_usd == pytest.approx(expected)
    assert cost_metric == pytest.approx(expected)
    assert (input_tokens, output_tokens) == (usage.input_tokens, usage.output_tokens)


def test_passages_over_the_context_window_are_dropped_lowest_ranked_first(
    stack: Stack, tmp_path: Path
) -> None:
    # A 600-token window leaves room for about two of these passages besides the answer.
    env = chain_env(provider("primary", stack.ports.llm, context_window=600))
    filler = "Pumps are inspected by certified staff following the maintenance handbook. " * 8
    passages = [
        common_pb2.Passage(
            document_id=f"doc{n}.md", chunk_id=f"doc{n}.md#0", text=filler, score=1.0 / n
        )
        for n in range(1, 7)
    ]
    with service_process("generation", env, tmp_path) as service:
        response = ask(service, passages=passages)
    assert response.provider == "primary"
    # Answered by the model, and said that not every passage made it into the prompt.
    [trimmed] = response.degradations
    assert trimmed.cause == common_pb2.DEGRADATION_CAUSE_CONTEXT_LIMIT
    assert "left out" in trimmed.reason
    assert 0 < response.passages_dropped < 6
    kept = {f"doc{n}.md#0" for n in range(1, 7 - response.passages_dropped)}
    assert {c.chunk_id for c in response.citations} <= kept


def test_router_picks_the_large_tier_for_comparisons_and_a_request_can_force_small(
    stack: Stack, tmp_path: Path
) -> None:
    env = chain_env(
        provider("small-model", stack.ports.llm, tier="small"),
        provider("large-model", stack.ports.llm, tier="large"),
    )
    compare = "Compare the Aurora 7 impeller inspection with the warranty terms."
    with service_process("generation", env, tmp_path) as service:
        routed = ask(service, question=compare)
        forced = ask(service, question=compare, tier=generation_pb2.MODEL_TIER_SMALL)
        simple = ask(service)
    assert (routed.provider, routed.tier) == ("large-model", generation_pb2.MODEL_TIER_LARGE)
    assert "compare" in routed.tier_reason
    assert (forced.provider, forced.tier, forced.tier_reason) == (
        "small-model",
        generation_pb2.MODEL_TIER_SMALL,
        "forced by the request",
    )
    assert (simple.provider, simple.tier) == ("small-model", generation_pb2.MODEL_TIER_SMALL)
