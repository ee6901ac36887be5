"""The rules every request meets before anything else: decodable, sized, known enums, finite."""

from __future__ import annotations

import pytest

from ragplane.runtime.edge import DEFAULT_STRING_CHARS, StringLimits, decode_request
from ragplane.runtime.errors import InvalidArgument
from ragplane.v1 import (
    common_pb2,
    embedding_pb2,
    generation_pb2,
    query_pb2,
    retrieval_pb2,
)

LIMITS = StringLimits({"ragplane.v1.QueryRequest.query": 2_000})


def _refusal(message: object, limits: StringLimits = LIMITS) -> str:
    raw = message.SerializeToString()  # type: ignore[attr-defined]
    with pytest.raises(InvalidArgument) as refused:
        decode_request(raw, type(message).FromString, limits)  # type: ignore[attr-defined]
    return refused.value.message


def test_a_valid_request_comes_back_decoded() -> None:
    request = query_pb2.QueryRequest(tenant="demo", query="How do I read a CSV file?", alpha=0.5)
    decoded = decode_request(request.SerializeToString(), query_pb2.QueryRequest.FromString, LIMITS)
    assert decoded == request


def test_invalid_utf8_is_invalid_argument_not_a_decode_error() -> None:
    # Field 1 (tenant), length-delimited, two bytes that are not UTF-8.
    raw = b"\x0a\x02\xff\xfe"
    with pytest.raises(InvalidArgument) as refused:
        decode_request(raw, query_pb2.QueryRequest.FromString, LIMITS)
    assert "invalid UTF-8" in refused.value.message


@pytest.mark.parametrize(
    ("message", "field"),
    [
        (query_pb2.QueryRequest(tenant="t" * 1_000_000), "tenant:"),
        (query_pb2.QueryRequest(query="q" * 2_001), "query:"),
        (
            query_pb2.IngestRequest(
                documents=[query_pb2.Document(), query_pb2.Document(title="x" * 2_000)]
            ),
            "documents[1].title:",
        ),
        (
            query_pb2.QueryRequest(filters=[common_pb2.MetadataFilter(any_of=["ok", "v" * 5_000])]),
            "filters[0].any_of[1]:",
        ),
        (
            retrieval_pb2.UpsertRequest(
                chunks=[
                    retrieval_pb2.ChunkWithVector(
                        chunk=retrieval_pb2.Chunk(metadata={"k": "v" * 5_000})
                    )
                ]
            ),
            "chunks[0].chunk.metadata['k']:",
        ),
        (
            retrieval_pb2.UpsertRequest(
                chunks=[
                    retrieval_pb2.ChunkWithVector(
                        chunk=retrieval_pb2.Chunk(metadata={"k" * 5_000: "v"})
                    )
                ]
            ),
            "chunks[0].chunk.metadata (a key):",
        ),
        (embedding_pb2.EmbedRequest(texts=["fine", "x" * 1_000_000]), "texts[1]:"),
    ],
)
def test_an_oversized_string_is_refused_naming_its_field(message: object, field: str) -> None:
    assert _refusal(message).startswith(field)


def test_fields_without_a_limit_of_their_own_get_the_default() -> None:
    at_limit = query_pb2.QueryRequest(tenant="t" * DEFAULT_STRING_CHARS)
    raw = at_limit.SerializeToString()
    assert decode_request(raw, query_pb2.QueryRequest.FromString, LIMITS) == at_limit
    assert "the limit is 1,024" in _refusal(query_pb2.QueryRequest(tenant="t" * 1_025))


@pytest.mark.parametrize(
    ("message", "field"),
    [
        (query_pb2.QueryRequest(fusion_type=99), "fusion_type: 99 is not a FusionType"),  # type: ignore[arg-type]
        (retrieval_pb2.SearchRequest(rerank=77), "rerank: 77 is not a RerankMode"),  # type: ignore[arg-type]
        (embedding_pb2.EmbedRequest(truncation=99), "truncation: 99 is not a TruncationPolicy"),  # type: ignore[arg-type]
        (generation_pb2.GenerateRequest(tier=99), "tier: 99 is not a ModelTier"),  # type: ignore[arg-type]
    ],
)
def test_an_unknown_enum_value_is_refused_not_read_as_the_default(
    message: object, field: str
) -> None:
    assert _refusal(message).startswith(field)


@pytest.mark.parametrize(
    ("message", "field"),
    [
        (query_pb2.QueryRequest(temperature=float("nan")), "temperature:"),
        (query_pb2.QueryRequest(alpha=float("inf")), "alpha:"),
        (retrieval_pb2.SearchRequest(query_vector=[0.1, float("-inf")]), "query_vector[1]:"),
        (
            retrieval_pb2.UpsertRequest(
                chunks=[retrieval_pb2.ChunkWithVector(vector=[float("nan")])]
            ),
            "chunks[0].vector[0]:",
        ),
    ],
)
def test_nan_and_infinity_are_refused_in_every_float(message: object, field: str) -> None:
    assert _refusal(message).startswith(field)
