"""GenerateStream against the real llama-cpp-python server: deltas, TTFT, fallback, extractive."""

from __future__ import annotations

import time
from pathlib import Path

import grpc

from ragplane.cli.stack import Stack
from ragplane.v1 import common_pb2, generation_pb2, generation_pb2_grpc
from tests.integration.generation_chain import (
    PASSAGES,
    QUESTION,
    chain_env,
    dead_port,
    provider,
)
from tests.integration.services import service_process


def stream(
    target: str, max_output_tokens: int = 16, timeout_s: float = 60
) -> tuple[list[tuple[float, str]], generation_pb2.GenerateResponse, float]:
    """(arrival time, delta) pairs, the final response and its arrival time, from the start."""
    request = generation_pb2.GenerateStreamRequest(
        request=generation_pb2.GenerateRequest(
            question=QUESTION, passages=PASSAGES, max_output_tokens=max_output_tokens
        )
    )
    deltas: list[tuple[float, str]] = []
    with grpc.insecure_channel(target) as channel:
        stub = generation_pb2_grpc.GenerationServiceStub(channel)
        started = time.monotonic()
        for message in stub.GenerateStream(request, timeout=timeout_s):
            at = time.monotonic() - started
            if message.WhichOneof("event") == "text_delta":
                deltas.append((at, message.text_delta))
            else:
                return deltas, message.done, at
    raise AssertionError("the stream ended without its final message")


def test_first_token_arrives_before_the_full_answer_and_ttft_is_reported(stack: Stack) -> None:
    deltas, done, done_at = stream(f"127.0.0.1:{stack.ports.generation}")
    assert len(deltas) >= 2
    first_at = deltas[0][0]
    assert first_at < done_at
    assert done.text == "".join(text for _, text in deltas)
    assert done.provider == "local-smollm2"
    assert 0 < done.time_to_first_token_ms <= first_at * 1000
    assert done.usage.output_tokens > 0  # counted locally when the server sends no usage
    assert done.usage.input_tokens > 20
    assert not done.degradations


def test_stream_falls_back_before_the_first_token(stack: Stack, tmp_path: Path) -> None:
    env = chain_env(provider("primary", dead_port()), provider("secondary", stack.ports.llm))
    with service_process("generation", env, tmp_path) as service:
        deltas, done, _ = stream(service.target, max_output_tokens=8)
    assert deltas
    assert done.provider == "secondary"
    assert done.attempts[0].outcome == generation_pb2.ATTEMPT_OUTCOME_FAILED
    assert done.attempts[1].outcome == generation_pb2.ATTEMPT_OUTCOME_SUCCEEDED


def test_stream_with_every_provider_down_sends_the_extractive_answer(
    stack: Stack, tmp_path: Path
) -> None:
    env = chain_env(provider("primary", dead_port()), retry_max_attempts="1")
    with service_process("generation", env, tmp_path) as service:
        deltas, done, _ = stream(service.target)
    assert [text for _, text in deltas] == [done.text]
    assert "[1]" in done.text
    assert done.degradations[0].stage == common_pb2.STAGE_GENERATION
    assert [c.chunk_id for c in done.citations] == ["aurora-pumps.md#0", "aurora-pumps.md#1"]
