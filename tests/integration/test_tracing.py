"""One query's trace, written by the query service's file exporter: a span per stage, each with
what explains the answer (hits, alpha, tokens, model, finish reason, cost, faithfulness), the
call's span with the cache layer and degradations, and passage texts with personal data masked."""

from __future__ import annotations

from pathlib import Path

import grpc

from ragplane.cli.stack import Stack
from ragplane.v1 import query_pb2, query_pb2_grpc
from tests.integration.orchestrator import stack_targets
from tests.integration.polling import wait_until
from tests.integration.services import service_process
from tests.integration.tracing import spans_by_name

STAGES = ("query.embedding", "query.retrieval", "query.generation", "query.quality")
QUERY_SPAN = "/ragplane.v1.QueryService/Query"
DOCUMENT = (
    "To reset a ragplane test password, write to jane.doe@example.com with your account name. "
    "The password reset link is valid for 24 hours."
)


def test_a_querys_trace_shows_each_stage_span_with_its_attributes(
    stack: Stack, tmp_path: Path
) -> None:
    traces = tmp_path / "spans.jsonl"
    env = {
        **stack_targets(stack),
        "QUERY_TRACE_PASSAGES": "true",
        "RAGPLANE_TRACES_FILE": str(traces),
    }
    with (
        service_process("query", env, tmp_path) as service,
        grpc.insecure_channel(service.target) as channel,
    ):
        stub = query_pb2_grpc.QueryServiceStub(channel)
        document = query_pb2.Document(document_id="reset.txt", text=DOCUMENT)
        stub.Ingest(query_pb2.IngestRequest(tenant="traced", documents=[document]), timeout=120)
        stub.Query(
            query_pb2.QueryRequest(
                tenant="traced", query="How do I reset my password?", max_output_tokens=16
            ),
            timeout=120,
        )
        wait_until(
            lambda: {*STAGES, QUERY_SPAN} <= set(spans_by_name(traces)),
            timeout_s=30,
            what="a span for each stage and for the call",
        )
    spans = spans_by_name(traces)
    retrieval = spans["query.retrieval"]["attributes"]
    assert retrieval["ragplane.retrieval.hits"] == 1
    assert retrieval["ragplane.retrieval.reranked_hits"] == 0
    assert retrieval["ragplane.retrieval.alpha"] > 0
    assert retrieval["ragplane.retrieval.chunk_ids"] == ["reset.txt#0"]
    [passage] = retrieval["ragplane.retrieval.passages"]
    assert "[email]" in passage
    assert "jane.doe" not in passage
    generation = spans["query.generation"]["attributes"]
    assert generation["gen_ai.provider.name"] == "local-smollm2"
    assert generation["gen_ai.request.model"]
    assert generation["gen_ai.usage.input_tokens"] > 0
    assert generation["gen_ai.usage.output_tokens"] > 0
    assert generation["gen_ai.response.finish_reasons"] in (["stop"], ["length"])
    assert generation["ragplane.cost_usd"] >= 0
    assert generation["ragplane.tier"] == "small"
    quality = spans["query.quality"]["attributes"]
    assert quality["ragplane.faithfulness.method"] == "evidence"
    assert 0 <= quality["ragplane.faithfulness"] <= 1
    call = spans[QUERY_SPAN]["attributes"]
    assert call["ragplane.cache.layer"] == "none"
    assert call["ragplane.retrieval.confidence"] > 0
    assert "ragplane.degradations" in call
    trace_ids = {spans[name]["context"]["trace_id"] for name in (*STAGES, QUERY_SPAN)}
    assert len(trace_ids) == 1
