"""The embedding service's model called in process: its real vectors, without the service."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from ragplane.embedding.backends import EncodingModel, load_model
from ragplane.embedding.config import EmbeddingSettings


@functools.cache
def _model() -> EncodingModel:
    return load_model(EmbeddingSettings())


async def embed(texts: Sequence[str], timeout_s: float) -> list[list[float]]:
    """Dependencies.embed's signature; the timeout is moot in process."""
    vectors: list[list[float]] = _model().encode(list(texts)).tolist()
    return vectors
