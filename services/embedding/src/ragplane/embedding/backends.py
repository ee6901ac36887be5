"""The model behind the service: ONNX Runtime alone (backend onnxruntime, the CPU image), or
sentence-transformers on torch or ONNX Runtime (the CUDA image and the local stack)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from ragplane.embedding.config import EmbeddingSettings
from ragplane.embedding.ort_model import OrtEmbeddingModel


class EncodingModel(Protocol):
    """Tokenizes and encodes texts; blocking calls, run off the event loop by the caller."""

    backend: str
    device: str
    max_tokens: int
    dimensions: int

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...

    def encode(self, texts: list[str]) -> NDArray[np.float32]: ...


def load_model(settings: EmbeddingSettings) -> EncodingModel:
    path = settings.resolved_model_path()
    if settings.backend == "onnxruntime":
        return OrtEmbeddingModel(path, settings.cpu_threads)
    # Imported only here: the CPU image has no torch or sentence-transformers to import.
    from ragplane.embedding import model

    device = model.pick_device(settings.device)
    return model.EmbeddingModel(
        path,
        device,
        model.pick_backend(settings.backend, device),
        settings.cpu_threads,
        settings.onnx_cache_dir,
        settings.model_name,
    )
