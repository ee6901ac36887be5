"""Phase (a): the limit, i.e. what SentenceTransformer.encode reaches in-process on one big list.

No server, no network, no per-call overhead: the best any service around this model on this
machine can hope for. The model is set up as the service can set it up: torch on every core (fp16
on a GPU), and on CPU also ONNX Runtime on the service's own cached export. Each backend and batch
size is timed separately; the fastest of all is the limit.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from sentence_transformers import SentenceTransformer

from ragplane.embedding.config import EmbeddingSettings
from ragplane.embedding.model import onnx_model_dir

CPU_BATCH_SIZES = (16, 32, 64, 128)
# A GPU only fills up with larger batches.
GPU_BATCH_SIZES = (32, 64, 128, 256, 512)
# ONNX Runtime runs on CPU only here (the onnxruntime package has no CUDA provider).
CPU_BACKENDS = ("torch", "onnx")
GPU_BACKENDS = ("torch",)


@dataclass(frozen=True)
class BatchTiming:
    backend: str
    batch_size: int
    texts: int
    seconds: float

    @property
    def texts_per_s(self) -> float:
        return self.texts / self.seconds


@dataclass(frozen=True)
class LimitResult:
    device: str
    mean_tokens_per_text: float
    timings: tuple[BatchTiming, ...]
    # Backend -> why it could not be timed.
    failed_backends: dict[str, str] = field(default_factory=dict)

    @property
    def best(self) -> BatchTiming:
        return max(self.timings, key=lambda timing: timing.texts_per_s)


def precision(device: str) -> str:
    return "fp16" if device == "cuda" else "fp32"


def load_model(model_path: Path, device: str, backend: str) -> SentenceTransformer:
    if device == "cpu":
        # The service uses one intra-op thread per core; so does the limit.
        torch.set_num_threads(os.cpu_count() or 1)
    if backend == "onnx":
        # The export the service itself runs (made once and cached by the service's code).
        settings = EmbeddingSettings()
        exported = onnx_model_dir(model_path, settings.onnx_cache_dir, settings.model_name)
        onnx_model: SentenceTransformer = SentenceTransformer(
            str(exported),
            device=device,
            backend="onnx",
            local_files_only=True,
            model_kwargs={"provider": "CPUExecutionProvider", "file_name": "onnx/model.onnx"},
        )
        return onnx_model
    model: SentenceTransformer = SentenceTransformer(
        str(model_path), device=device, local_files_only=True
    )
    if device == "cuda":
        model.half()
    return model


def encode(model: SentenceTransformer, texts: Sequence[str], batch_size: int) -> None:
    # The same call the service makes, normalised vectors as numpy included.
    model.encode(
        list(texts),
        batch_size=batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )


def time_batch_size(
    model: SentenceTransformer,
    backend: str,
    texts: Sequence[str],
    batch_size: int,
    min_seconds: float,
) -> BatchTiming:
    """Encodes all texts again and again until min_seconds have passed (a GPU is done fast)."""
    encode(model, texts[: batch_size * 2], batch_size)  # warm-up: allocations, kernel choice
    done = 0
    started = time.perf_counter()
    while True:
        encode(model, texts, batch_size)
        done += len(texts)
        elapsed = time.perf_counter() - started
        if elapsed >= min_seconds:
            return BatchTiming(backend, batch_size, done, elapsed)


def mean_token_count(model: SentenceTransformer, texts: Sequence[str]) -> float:
    encoded = model.tokenizer(list(texts), add_special_tokens=True)
    return sum(len(ids) for ids in encoded["input_ids"]) / len(texts)


def time_backend(
    model_path: Path, device: str, backend: str, texts: Sequence[str], min_seconds: float
) -> tuple[list[BatchTiming], float]:
    """Every batch size on one backend, and the texts' mean token count."""
    batch_sizes = GPU_BATCH_SIZES if device == "cuda" else CPU_BATCH_SIZES
    label = f"{backend} {precision(device)}"
    model = load_model(model_path, device, backend)
    try:
        timings = []
        for batch_size in batch_sizes:
            timing = time_batch_size(model, label, texts, batch_size, min_seconds)
            print(
                f"      {label:<10} batch {batch_size:>4}: {timing.texts_per_s:8.1f} texts/s",
                flush=True,
            )
            timings.append(timing)
        return timings, mean_token_count(model, texts)
    finally:
        del model
        free_memory()


def measure_limit(model_path: Path, texts: Sequence[str], min_seconds: float) -> LimitResult:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    timings: list[BatchTiming] = []
    failed: dict[str, str] = {}
    mean_tokens = 0.0
    for backend in GPU_BACKENDS if device == "cuda" else CPU_BACKENDS:
        try:
            backend_timings, mean_tokens = time_backend(
                model_path, device, backend, texts, min_seconds
            )
        except (ImportError, RuntimeError, OSError, ValueError) as error:
            # A backend that cannot load here is reported, not fatal: torch alone is a limit.
            failed[backend] = f"{type(error).__name__}: {error}"
            print(f"      {backend}: could not be timed: {failed[backend]}", flush=True)
            continue
        timings.extend(backend_timings)
    if not timings:
        raise RuntimeError(f"no backend could be timed: {failed}")
    return LimitResult(device, mean_tokens, tuple(timings), failed)


def free_memory() -> None:
    """Gives the model's memory back before the next model or server: on a GPU they need it."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
