"""Protobuf messages that more than one service builds: one function owns each.

Each takes any object with the message's fields (a Protocol), so every service keeps its own
domain types and none of them depends on another's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from ragplane.v1 import common_pb2, retrieval_pb2


class ChunkFields(Protocol):
    """A chunk as the retrieval contract carries it (query's Chunk, retrieval's StoredChunk)."""

    @property
    def chunk_id(self) -> str: ...
    @property
    def document_id(self) -> str: ...
    @property
    def chunk_index(self) -> int: ...
    @property
    def text(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def metadata(self) -> Mapping[str, str]: ...


class UsageFields(Protocol):
    """Tokens an LLM call took: a generated answer, a batch answer, the judge's calls."""

    @property
    def input_tokens(self) -> int: ...
    @property
    def output_tokens(self) -> int: ...


def chunk_message(chunk: ChunkFields) -> retrieval_pb2.Chunk:
    return retrieval_pb2.Chunk(
        chunk_id=chunk.chunk_id,
        document_id=chunk.document_id,
        chunk_index=chunk.chunk_index,
        text=chunk.text,
        title=chunk.title,
        metadata=chunk.metadata,
    )


def usage_message(usage: UsageFields) -> common_pb2.TokenUsage:
    return common_pb2.TokenUsage(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens)
