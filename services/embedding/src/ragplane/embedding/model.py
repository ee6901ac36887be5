"""The sentence-transformers model and its tokenizer."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray
from sentence_transformers import SentenceTransformer


@dataclass(frozen=True)
class EmbeddedText:
    vector: NDArray[np.float32]
    # Model tokens of the whole text, special tokens included.
    token_count: int
    truncated: bool


def pick_device(requested: str) -> str:
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("EMBEDDING_DEVICE=cuda but no CUDA device is visible")
    return requested


class EmbeddingModel:
    """A sentence-transformers model loaded from a local directory; blocking calls only."""

    def __init__(self, path: Path, device: str, batch_size: int, cpu_threads: int) -> None:
        # Texts longer than the model's limit are expected: they are truncated and flagged.
        logging.getLogger("transformers").setLevel(logging.ERROR)
        if device == "cpu":
            torch.set_num_threads(cpu_threads or os.cpu_count() or 1)
        self._model = SentenceTransformer(str(path), device=device, local_files_only=True)
        self._batch_size = batch_size
        self.device = str(self._model.device)
        self.max_tokens = int(self._model.max_seq_length)
        dimensions = self._model.get_embedding_dimension()
        if dimensions is None:
            raise RuntimeError(f"model at {path} does not report its embedding dimension")
        self.dimensions = int(dimensions)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        encoded = self._model.tokenizer(
            list(texts), add_special_tokens=True, truncation=False, return_attention_mask=False
        )
        return [len(ids) for ids in encoded["input_ids"]]

    def embed(self, texts: Sequence[str]) -> list[EmbeddedText]:
        token_counts = self.count_tokens(texts)
        vectors = self._model.encode(
            list(texts),
            batch_size=self._batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return [
            EmbeddedText(vector, count, count > self.max_tokens)
            for vector, count in zip(vectors, token_counts, strict=True)
        ]
