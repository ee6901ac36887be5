"""Escalation end to end: with confidence routing on, a question whose retrieval confidence is
low is answered by the generation service's large tier, and counted. (Questions with nothing
relevant get the not-found answer: test_not_found.py.)"""

from __future__ import annotations

from pathlib import Path

from ragplane.cli.stack import Stack
from ragplane.v1 import generation_pb2, query_pb2
from tests.integration.corpus import VENV_QUESTION, VENV_TOP_K
from tests.integration.generation_chain import chain_env, provider
from tests.integration.orchestrator import query_service
from tests.integration.services import service_process

# Above every similarity of the demo corpus's answerable questions (0.44-0.80), so that the
# question counts as low-confidence while its passages are still relevant (not not-found).
ESCALATE_BELOW = 0.95
ROUTES = "ragplane_query_confidence_routes_total"


def test_a_low_confidence_question_is_answered_by_the_large_tier(
    stack: Stack, docs_tenant: str, tmp_path: Path
) -> None:
    # The stack's LLM server behind both tiers: a small model entry and a large one.
    tiers = chain_env(
        provider("smollm2-small", stack.ports.llm, tier="small"),
        provider("smollm2-large", stack.ports.llm, tier="large"),
    )
    with (
        service_process("generation", tiers, tmp_path) as generation,
        query_service(
            stack,
            tmp_path,
            generation_target=generation.target,
            confidence_routing="true",
            escalate_confidence=str(ESCALATE_BELOW),
        ) as service,
    ):
        response = service.ask_briefly(docs_tenant, VENV_QUESTION, VENV_TOP_K)
        escalated = service.process.metric(ROUTES, 'route="escalated"')
        answered = service.process.metric(ROUTES, 'route="answered"')
    quality = response.quality
    assert quality.confidence_route == query_pb2.CONFIDENCE_ROUTE_ESCALATED, quality
    assert 0 < quality.retrieval_confidence < ESCALATE_BELOW
    assert (response.provider, response.tier) == ("smollm2-large", generation_pb2.MODEL_TIER_LARGE)
    assert "QUERY_ESCALATE_CONFIDENCE" in response.tier_reason
    assert response.citations
    assert (escalated, answered) == (1, 0)
