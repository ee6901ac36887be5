"""QueryStream: sources first, then the answer as it is generated, then everything Query says."""

from __future__ import annotations

from pathlib import Path

from ragplane.cli.stack import Stack
from ragplane.v1 import common_pb2, query_pb2, query_pb2_grpc
from tests.integration.orchestrator import query_service, stack_caches
from tests.integration.polling import log_lines_with, wait_until
from tests.integration.services import metric

QUESTION = "How do I create a virtual environment?"
GENERATE_STREAM = "/ragplane.v1.GenerationService/GenerateStream"
# llama-cpp-python's server prints this when the client of a streamed completion disconnects
# after the model started (the line printed before it starts says "before llm invoked").
LLM_STOPPED = "Disconnected from client (via refresh/close) Address("


def test_sources_come_first_then_answer_deltas_then_the_final_message(
    query: query_pb2_grpc.QueryServiceStub, docs_tenant: str
) -> None:
    request = query_pb2.QueryRequest(tenant=docs_tenant, query=QUESTION)
    events = list(query.QueryStream(request, timeout=120))
    kinds = [event.WhichOneof("event") for event in events]
    assert kinds[0] == "sources"
    assert kinds[-1] == "done"
    assert set(kinds[1:-1]) == {"answer_delta"}, kinds
    sources = events[0].sources.citations
    assert sources
    assert all(c.chunk_id.startswith(c.document_id + "#") for c in sources)
    done = events[-1].done
    assert "".join(event.answer_delta for event in events[1:-1]) == done.answer
    assert done.citations
    assert {c.chunk_id for c in done.citations} <= {c.chunk_id for c in sources}
    stages = [timing.stage for timing in done.timings]
    assert common_pb2.STAGE_GENERATION in stages
    assert done.usage.output_tokens > 0
    assert done.budget_ms > 0
    assert done.request_id


AUDITED_CANCEL = '"outcome": "CANCELLED"'


def test_a_cancelled_stream_stops_the_generation_call(
    stack: Stack, docs_tenant: str, tmp_path: Path
) -> None:
    # The stack's generation service: its metrics count the stream it served as cancelled.
    # Prometheus writes labels in name order.
    cancelled = f'code="CANCELLED",method="{GENERATE_STREAM}",service="generation"'

    def cancelled_streams() -> float:
        return metric(stack.ports.generation_metrics, "ragplane_rpc_requests_total", cancelled)

    # The stack's first LLM server (the generation service's first provider) says in its log
    # when a client went away while it was still writing the answer, and stops writing it.
    llm_log = stack.log_file("llm")
    before = cancelled_streams(), log_lines_with(llm_log, LLM_STOPPED)
    with query_service(stack, tmp_path) as service:
        # One passage: a short prompt, so that the model's first token comes well before the
        # stream-stall limit even on a busy machine (a stalled model would be replaced by the
        # extractive answer, which ends the stream at once and leaves nothing to cancel).
        request = query_pb2.QueryRequest(
            tenant=docs_tenant, query=QUESTION, max_output_tokens=400, top_k=1
        )
        stream = service.stub.QueryStream(request, timeout=120)
        kinds = []
        for event in stream:
            kinds.append(event.WhichOneof("event"))
            if kinds[-1] == "answer_delta":
                break
        stream.cancel()
        assert kinds == ["sources", "answer_delta"]
        wait_until(lambda: cancelled_streams() > before[0], 30, "a cancelled GenerateStream")
        wait_until(
            lambda: log_lines_with(llm_log, LLM_STOPPED) > before[1],
            30,
            f"{LLM_STOPPED!r} in {llm_log}",
        )
        # The query service's audit trail records the call as the caller's cancel.
        wait_until(
            lambda: log_lines_with(service.process.log, AUDITED_CANCEL) == 1,
            30,
            f"{AUDITED_CANCEL!r} in {service.process.log}",
        )
    assert (cancelled_streams(), log_lines_with(llm_log, LLM_STOPPED)) == (
        before[0] + 1,
        before[1] + 1,
    )


def test_a_cached_answer_streams_as_sources_one_delta_and_done(
    stack: Stack, docs_tenant: str, tmp_path: Path
) -> None:
    with query_service(stack, tmp_path, **stack_caches(stack)) as service:
        request = query_pb2.QueryRequest(tenant=docs_tenant, query="What is a venv for?")
        first = service.stub.Query(request, timeout=120)
        events = list(service.stub.QueryStream(request, timeout=60))
    assert not first.cache.hit
    assert [event.WhichOneof("event") for event in events] == ["sources", "answer_delta", "done"]
    done = events[-1].done
    assert done.cache.hit
    assert done.cache.layer == query_pb2.CACHE_LAYER_EXACT
    assert done.answer == first.answer == events[1].answer_delta
