"""Network faults from a real toxiproxy-server between the generation service and a real
llama-cpp-python server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from ragplane.cli.stack import Stack
from ragplane.v1 import generation_pb2, generation_pb2_grpc
from tests.integration.generation_chain import PASSAGES, QUESTION, ask, chain_env, provider
from tests.integration.services import RunningService, service_process
from tests.integration.toxiproxy import Proxy, Toxiproxy

FAILED = generation_pb2.ATTEMPT_OUTCOME_FAILED


# Generous: a first call to a cold llama server on a busy 2-core machine takes a few seconds.
PROVIDER_TIMEOUT_S = 6


@pytest.fixture
def llm2_proxy(toxiproxy: Toxiproxy, stack: Stack) -> Iterator[Proxy]:
    """toxiproxy in front of the stack's second LLM server (the first one is the secondary)."""
    proxy = toxiproxy.create_proxy("generation-primary", f"127.0.0.1:{stack.ports.llm2}")
    try:
        yield proxy
    finally:
        proxy.delete()


@pytest.fixture
def service(stack: Stack, llm2_proxy: Proxy, tmp_path: Path) -> Iterator[RunningService]:
    env = chain_env(
        provider("primary", llm2_proxy.port, request_timeout_s=PROVIDER_TIMEOUT_S),
        provider("secondary", stack.ports.llm),
        retry_max_attempts="2",
        breaker_fail_max="100",
        stream_idle_timeout_s="1.5",
    )
    with service_process("generation", env, tmp_path) as running:
        yield running


def test_latency_beyond_the_provider_timeout_falls_back_to_the_secondary(
    llm2_proxy: Proxy, service: RunningService
) -> None:
    llm2_proxy.add_latency(PROVIDER_TIMEOUT_S * 3000)
    response = ask(service, timeout_s=120)
    assert response.provider == "secondary"
    assert not response.degradations
    first = response.attempts[0]
    assert (first.provider, first.outcome, first.calls) == ("primary", FAILED, 2)
    assert "timed out" in first.reason


def test_connections_reset_by_the_peer_are_retried_then_fall_back(
    llm2_proxy: Proxy, service: RunningService
) -> None:
    llm2_proxy.add_reset_peer()
    response = ask(service, timeout_s=120)
    assert response.provider == "secondary"
    first = response.attempts[0]
    assert (first.provider, first.outcome, first.calls) == ("primary", FAILED, 2)
    assert "unreachable" in first.reason


def _stream(
    service: RunningService, on_first_delta: Callable[[], object] = lambda: None
) -> tuple[list[str], generation_pb2.GenerateResponse | None, grpc.RpcError | None]:
    """The deltas, the final message (None if the stream failed) and the error, if any."""
    request = generation_pb2.GenerateStreamRequest(
        request=generation_pb2.GenerateRequest(
            question=QUESTION, passages=PASSAGES, max_output_tokens=64
        )
    )
    deltas: list[str] = []
    with grpc.insecure_channel(service.target) as channel:
        stub = generation_pb2_grpc.GenerationServiceStub(channel)
        try:
            for message in stub.GenerateStream(request, timeout=120):
                if message.WhichOneof("event") == "done":
                    return deltas, message.done, None
                deltas.append(message.text_delta)
                if len(deltas) == 1:
                    on_first_delta()
        except grpc.RpcError as error:
            return deltas, None, error
    raise AssertionError("the stream ended without its final message")


def test_a_stream_that_goes_silent_after_its_first_token_ends_with_a_clear_status(
    llm2_proxy: Proxy, service: RunningService
) -> None:
    # From the first delta on, nothing more gets through and the connection stays open.
    deltas, done, error = _stream(service, on_first_delta=lambda: llm2_proxy.add_timeout(0))
    assert done is None
    assert deltas  # the primary's first token(s), never followed by another provider's text
    assert isinstance(error, grpc.Call)
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    details = error.details() or ""
    assert "primary failed mid-stream" in details
    assert "stream stalled" in details


def test_a_stream_whose_primary_sends_nothing_falls_back_before_the_first_token(
    llm2_proxy: Proxy, service: RunningService
) -> None:
    llm2_proxy.add_timeout(0)
    deltas, done, error = _stream(service)
    assert error is None
    assert done is not None
    assert done.provider == "secondary"
    assert "".join(deltas) == done.text  # every delta from the secondary: nothing spliced
    first = done.attempts[0]
    assert (first.provider, first.outcome) == ("primary", FAILED)
