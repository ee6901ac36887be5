"""The generation service against the real llama-cpp-python server serving SmolLM2-135M."""

from __future__ import annotations

import grpc

from ragplane.v1 import common_pb2, generation_pb2, generation_pb2_grpc
from tests.integration.errors import expect_status


def test_generate_answers_and_reports_provider_model_and_tokens(
    generation: generation_pb2_grpc.GenerationServiceStub,
) -> None:
    request = generation_pb2.GenerateRequest(
        question="How often is the Aurora 7 impeller inspected?",
        passages=[
            common_pb2.Passage(
                document_id="aurora-pumps.md",
                chunk_id="aurora-pumps.md#0",
                text="The Aurora 7 impeller is inspected every 400 operating hours.",
                score=1.0,
            )
        ],
        max_output_tokens=24,
    )
    response = generation.Generate(request, timeout=120)
    assert response.text.strip()
    assert response.provider == "local-smollm2"
    assert response.model
    assert response.usage.input_tokens > 20  # the prompt holds the passage and the question
    assert 0 < response.usage.output_tokens <= 24
    for citation in response.citations:  # the small model may or may not cite
        assert citation.chunk_id == "aurora-pumps.md#0"


def test_blank_question_and_oversized_output_are_invalid_argument(
    generation: generation_pb2_grpc.GenerationServiceStub,
) -> None:
    expect_status(
        lambda: generation.Generate(generation_pb2.GenerateRequest(question=" "), timeout=10),
        grpc.StatusCode.INVALID_ARGUMENT,
        "question",
    )
    expect_status(
        lambda: generation.Generate(
            generation_pb2.GenerateRequest(question="why?", max_output_tokens=100_000), timeout=10
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "max_output_tokens",
    )
