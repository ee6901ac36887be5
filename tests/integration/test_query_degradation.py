"""The query response carries what the generation service reports: degradation and cost."""

from __future__ import annotations

from pathlib import Path

import grpc

from ragplane.cli.stack import Stack
from ragplane.v1 import common_pb2, query_pb2, query_pb2_grpc
from tests.integration.services import service_process
from tests.integration.test_generation_fallback import chain_env, dead_port, provider


def test_every_llm_down_gives_a_cited_extractive_answer_flagged_degraded(
    stack: Stack, docs_tenant: str, tmp_path: Path
) -> None:
    generation_env = chain_env(provider("down-a", dead_port()), provider("down-b", dead_port()))
    with service_process("generation", generation_env, tmp_path) as generation:
        query_env = {
            "QUERY_EMBEDDING_TARGET": f"127.0.0.1:{stack.ports.embedding}",
            "QUERY_RETRIEVAL_TARGET": f"127.0.0.1:{stack.ports.retrieval}",
            "QUERY_GENERATION_TARGET": generation.target,
        }
        with (
            service_process("query", query_env, tmp_path) as query,
            grpc.insecure_channel(query.target) as channel,
        ):
            response = query_pb2_grpc.QueryServiceStub(channel).Query(
                query_pb2.QueryRequest(tenant=docs_tenant, query="How do I create a venv?"),
                timeout=60,
            )
    assert response.answer.strip()
    assert response.citations
    assert [d.stage for d in response.degradations] == [common_pb2.STAGE_GENERATION]
    assert "down-a" in response.degradations[0].reason
    assert response.cost_usd == 0.0
