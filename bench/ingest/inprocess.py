"""The in-process limit: the embedding service's default backend encoding the slice's chunks.

Reuses bench/embedding/limit.py (load_model, time_batch_size) so both benches time the model
the same way; the backend and device are those EmbeddingSettings' defaults resolve to in the
service (model.py pick_device/pick_backend), so the limit is for the model the service runs.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from bench.embedding.limit import BatchTiming, free_memory, load_model, time_batch_size
from ragplane.embedding.config import EmbeddingSettings
from ragplane.embedding.model import pick_backend, pick_device

BATCH_SIZES = (32, 64)
SAMPLE_SIZE = 800
SAMPLE_SEED = 14


@dataclass(frozen=True)
class Limit:
    device: str
    backend: str
    sample: int
    timings: tuple[BatchTiming, ...]

    @property
    def best(self) -> BatchTiming:
        return max(self.timings, key=lambda timing: timing.texts_per_s)


def sample(texts: Sequence[str]) -> list[str]:
    """A fixed sample (same seed every run) keeps the limit to about a minute on 2 cores."""
    if len(texts) <= SAMPLE_SIZE:
        return list(texts)
    return random.Random(SAMPLE_SEED).sample(list(texts), SAMPLE_SIZE)


def measure(texts: Sequence[str]) -> Limit:
    settings = EmbeddingSettings()
    device = pick_device(settings.device)
    backend = pick_backend(settings.backend, device)
    if backend == "onnx-int8":
        raise SystemExit("EMBEDDING_BACKEND=onnx-int8: bench/embedding/limit.py times fp32 only")
    chosen = sample(texts)
    model = load_model(settings.resolved_model_path(), device, backend)
    try:
        # min_seconds=0: after time_batch_size's own warm-up, exactly one pass over the sample.
        timings = tuple(
            time_batch_size(model, backend, chosen, batch_size, 0.0) for batch_size in BATCH_SIZES
        )
    finally:
        del model
        free_memory()
    return Limit(device, backend, len(chosen), timings)
