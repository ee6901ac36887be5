"""The embedding service against the real all-MiniLM-L6-v2 model."""

from __future__ import annotations

import math

import grpc
import torch

from ragplane.v1 import embedding_pb2, embedding_pb2_grpc
from tests.integration.errors import expect_status


def test_embeds_many_texts_into_normalised_384_dim_vectors(
    embedding: embedding_pb2_grpc.EmbeddingServiceStub,
) -> None:
    texts = ["How do I create a virtual environment?", "venv creates isolated environments", "x"]
    response = embedding.Embed(embedding_pb2.EmbedRequest(texts=texts), timeout=60)
    assert response.dimensions == 384
    assert response.model == "all-MiniLM-L6-v2"
    assert len(response.embeddings) == 3
    for item in response.embeddings:
        assert len(item.values) == 384
        assert math.isclose(math.sqrt(sum(v * v for v in item.values)), 1.0, rel_tol=1e-4)
        assert item.token_count >= 3  # [CLS] text [SEP]
        assert not item.truncated
    question, answer, unrelated = (list(e.values) for e in response.embeddings)
    similarity = sum(a * b for a, b in zip(question, answer, strict=True))
    assert similarity > sum(a * b for a, b in zip(question, unrelated, strict=True))


def test_text_over_the_token_limit_is_truncated_and_flagged(
    embedding: embedding_pb2_grpc.EmbeddingServiceStub,
) -> None:
    long_text = "pumps and valves " * 300
    response = embedding.Embed(embedding_pb2.EmbedRequest(texts=["short", long_text]), timeout=60)
    short, long = response.embeddings
    assert not short.truncated
    assert long.truncated
    assert long.token_count > 256


def test_refused_truncation_names_the_long_text(
    embedding: embedding_pb2_grpc.EmbeddingServiceStub,
) -> None:
    request = embedding_pb2.EmbedRequest(
        texts=["short", "pumps and valves " * 300],
        truncation=embedding_pb2.TRUNCATION_POLICY_REJECT,
    )
    expect_status(
        lambda: embedding.Embed(request, timeout=60),
        grpc.StatusCode.INVALID_ARGUMENT,
        "texts[1]",
        "tokens",
    )


def test_bad_input_is_invalid_argument_naming_the_field(
    embedding: embedding_pb2_grpc.EmbeddingServiceStub,
) -> None:
    expect_status(
        lambda: embedding.Embed(embedding_pb2.EmbedRequest(texts=[]), timeout=10),
        grpc.StatusCode.INVALID_ARGUMENT,
        "texts",
    )
    expect_status(
        lambda: embedding.Embed(embedding_pb2.EmbedRequest(texts=["fine", "  "]), timeout=10),
        grpc.StatusCode.INVALID_ARGUMENT,
        "texts[1]",
        "empty",
    )
    expect_status(
        lambda: embedding.Embed(embedding_pb2.EmbedRequest(texts=["a" * 8_001]), timeout=10),
        grpc.StatusCode.INVALID_ARGUMENT,
        "texts[0]",
        "the limit is 8,000",
    )


def test_info_describes_the_model(embedding: embedding_pb2_grpc.EmbeddingServiceStub) -> None:
    info = embedding.Info(embedding_pb2.InfoRequest(), timeout=10)
    assert (info.model, info.dimensions, info.max_tokens) == ("all-MiniLM-L6-v2", 384, 256)
    # The stack leaves EMBEDDING_DEVICE at auto: the GPU when this machine has one.
    assert info.device == ("cuda" if torch.cuda.is_available() else "cpu")
