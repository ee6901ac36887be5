"""Failures no real server produces on demand (401, 429 with Retry-After, 503, context overflow),
injected by a test double in front of the real llama-cpp-python server."""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import pytest

from ragplane.cli.stack import Stack
from ragplane.v1 import common_pb2, generation_pb2, generation_pb2_grpc
from tests.integration.fault_injecting_proxy import Fault, FaultInjectingProxy, StreamFault
from tests.integration.generation_chain import (
    PASSAGES,
    QUESTION,
    ask,
    chain_env,
    provider,
)
from tests.integration.services import RunningService, service_process

OVERFLOW_MESSAGE = (
    "This model's maximum context length is 2048 tokens. However, you requested 4100 tokens."
)


@pytest.fixture(scope="module")
def proxy(stack: Stack) -> Iterator[FaultInjectingProxy]:
    with FaultInjectingProxy(stack.ports.llm) as running:
        yield running


@pytest.fixture(scope="module")
def service(
    stack: Stack, proxy: FaultInjectingProxy, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningService]:
    env = chain_env(
        provider("primary", proxy.port),
        provider("secondary", stack.ports.llm),
        retry_max_attempts="3",
        # High, so that the injected faults of one test do not open the breaker for the next.
        breaker_fail_max="100",
        stream_idle_timeout_s="1",
    )
    with service_process("generation", env, tmp_path_factory.mktemp("faults")) as running:
        yield running


@pytest.fixture(autouse=True)
def no_leftover_faults(proxy: FaultInjectingProxy) -> Iterator[None]:
    proxy.clear()
    yield
    proxy.clear()


def test_401_is_not_retried_and_the_next_provider_answers(
    proxy: FaultInjectingProxy, service: RunningService
) -> None:
    proxy.fail_next(Fault(401, "invalid api key"))
    before = proxy.completions
    response = ask(service)
    assert proxy.completions - before == 1
    assert response.provider == "secondary"
    first = response.attempts[0]
    assert (first.outcome, first.http_status, first.calls) == (
        generation_pb2.ATTEMPT_OUTCOME_FAILED,
        401,
        1,
    )


def test_429_with_retry_after_is_waited_out_when_the_deadline_allows(
    proxy: FaultInjectingProxy, service: RunningService
) -> None:
    proxy.fail_next(Fault(429, "slow down", {"Retry-After": "1"}))
    before = proxy.completions
    started = time.monotonic()
    response = ask(service, timeout_s=60)
    elapsed = time.monotonic() - started
    assert proxy.completions - before == 2
    assert elapsed >= 1.0
    assert response.provider == "primary"
    first = response.attempts[0]
    assert (first.outcome, first.calls) == (generation_pb2.ATTEMPT_OUTCOME_SUCCEEDED, 2)
    assert "429" in first.reason


def test_429_with_retry_after_past_the_deadline_goes_to_the_next_provider(
    proxy: FaultInjectingProxy, service: RunningService
) -> None:
    proxy.fail_next(Fault(429, "slow down", {"Retry-After": "30"}))
    before = proxy.completions
    started = time.monotonic()
    response = ask(service, timeout_s=10)
    elapsed = time.monotonic() - started
    assert proxy.completions - before == 1
    assert elapsed < 8
    assert response.provider == "secondary"
    first = response.attempts[0]
    assert (first.outcome, first.http_status) == (generation_pb2.ATTEMPT_OUTCOME_FAILED, 429)
    assert "miss the deadline" in first.reason


def test_5xx_is_retried_with_backoff(proxy: FaultInjectingProxy, service: RunningService) -> None:
    proxy.fail_next(Fault(503, "overloaded"), count=2)
    before = proxy.completions
    response = ask(service)
    assert proxy.completions - before == 3
    assert response.provider == "primary"
    assert response.attempts[0].calls == 3


def test_context_overflow_is_trimmed_and_retried_once(
    proxy: FaultInjectingProxy, service: RunningService
) -> None:
    passages = [
        common_pb2.Passage(
            document_id=f"doc{n}.md",
            chunk_id=f"doc{n}.md#0",
            text=f"Fact {n}: the Aurora 7 impeller is inspected every 400 hours.",
            score=1.0 / n,
        )
        for n in range(1, 5)
    ]
    proxy.fail_next(Fault(400, OVERFLOW_MESSAGE))
    before = proxy.completions
    response = ask(service, passages=passages)
    assert proxy.completions - before == 2
    assert response.provider == "primary"
    assert response.passages_dropped == 2  # half of the four, the lowest ranked
    [trimmed] = response.degradations
    assert trimmed.cause == common_pb2.DEGRADATION_CAUSE_CONTEXT_LIMIT
    assert {c.chunk_id for c in response.citations} <= {"doc1.md#0", "doc2.md#0"}


def test_context_overflow_is_not_retried_twice(
    proxy: FaultInjectingProxy, service: RunningService
) -> None:
    proxy.fail_next(Fault(400, OVERFLOW_MESSAGE), count=2)
    before = proxy.completions
    response = ask(service)
    assert proxy.completions - before == 2
    assert response.provider == "secondary"
    assert response.attempts[0].http_status == 400


def _stream_deltas(service: RunningService) -> tuple[list[str], grpc.RpcError | None]:
    request = generation_pb2.GenerateStreamRequest(
        request=generation_pb2.GenerateRequest(question=QUESTION, passages=PASSAGES)
    )
    deltas: list[str] = []
    with grpc.insecure_channel(service.target) as channel:
        stub = generation_pb2_grpc.GenerationServiceStub(channel)
        try:
            for message in stub.GenerateStream(request, timeout=30):
                if message.WhichOneof("event") == "text_delta":
                    deltas.append(message.text_delta)
        except grpc.RpcError as error:
            return deltas, error
    return deltas, None


@pytest.mark.parametrize(
    ("fault", "in_message"),
    [
        (StreamFault("cut"), "stream cut"),
        (StreamFault("stall", stall_s=3), "stream stalled"),
        (StreamFault("malformed"), "malformed stream chunk"),
    ],
)
def test_stream_that_breaks_after_the_first_token_ends_with_a_clear_status(
    proxy: FaultInjectingProxy, service: RunningService, fault: StreamFault, in_message: str
) -> None:
    proxy.fail_next(fault)
    before = proxy.completions
    deltas, error = _stream_deltas(service)
    # Never spliced with another provider's text: the first provider's delta, then the error.
    assert deltas == ["The impeller"]
    assert proxy.completions - before == 1
    assert isinstance(error, grpc.Call)
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    details = error.details() or ""
    assert "primary failed mid-stream" in details
    assert in_message in details


def test_a_caller_that_cancels_stops_the_upstream_request(
    proxy: FaultInjectingProxy, service: RunningService
) -> None:
    proxy.fail_next(StreamFault("slow"))
    request = generation_pb2.GenerateStreamRequest(
        request=generation_pb2.GenerateRequest(question=QUESTION, passages=PASSAGES)
    )
    with grpc.insecure_channel(service.target) as channel:
        call = generation_pb2_grpc.GenerationServiceStub(channel).GenerateStream(
            request, timeout=30
        )
        first = next(call)
        assert first.text_delta == "The impeller"
        call.cancel()
    # The upstream stream would run 10 s; the service hangs up on it as soon as we cancel.
    assert proxy.client_gone.wait(timeout=5)
