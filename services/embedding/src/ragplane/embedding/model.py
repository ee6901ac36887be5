"""The sentence-transformers model, on torch (CPU or CUDA fp16) or ONNX Runtime (CPU)."""

from __future__ import annotations

import copy
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import structlog
import torch
from numpy.typing import NDArray
from sentence_transformers import SentenceTransformer, export_dynamic_quantized_onnx_model

from ragplane.embedding.ort_model import onnx_session_options

log = structlog.get_logger(__name__)


def pick_device(requested: str) -> str:
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("EMBEDDING_DEVICE=cuda but no CUDA device is visible")
    return requested


def pick_backend(requested: str, device: str) -> str:
    if requested == "auto":
        return "torch" if device.startswith("cuda") else "onnx"
    if requested.startswith("onnx") and device.startswith("cuda"):
        raise RuntimeError(f"EMBEDDING_BACKEND={requested} runs on CPU only; use torch on CUDA")
    return requested


def _int8_instruction_set() -> str:
    """The widest integer instruction set this CPU has, for ONNX Runtime's int8 kernels."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "avx2"
    return "avx512_vnni" if "avx512_vnni" in flags else "avx2"


def onnx_model_dir(model_path: Path, cache_dir: Path, model_name: str) -> Path:
    """A copy of the model with its ONNX export and int8 variant, made once and reused after."""
    target = cache_dir / model_name
    if (target / "onnx" / "model.onnx").exists() and _int8_file(target) is not None:
        return target
    log.info("exporting the model to ONNX", source=str(model_path), target=str(target))
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir) as scratch:
        staged = Path(scratch) / "model"
        shutil.copytree(model_path, staged)
        exported = SentenceTransformer(str(staged), backend="onnx", local_files_only=True)
        exported.save_pretrained(str(staged))
        export_dynamic_quantized_onnx_model(exported, _int8_instruction_set(), str(staged))
        shutil.rmtree(target, ignore_errors=True)
        # A rename is atomic: another process never sees a half-written export.
        staged.rename(target)
    return target


def _int8_file(model_dir: Path) -> str | None:
    found = sorted((model_dir / "onnx").glob("model_qint8_*.onnx"))
    return f"onnx/{found[0].name}" if found else None


class EmbeddingModel:
    """Tokenizes and encodes texts; blocking calls, run off the event loop by the caller."""

    def __init__(
        self,
        path: Path,
        device: str,
        backend: str,
        cpu_threads: int,
        onnx_cache_dir: Path,
        name: str,
    ) -> None:
        # Texts longer than the model's limit are expected: they are truncated and flagged.
        logging.getLogger("transformers").setLevel(logging.ERROR)
        threads = cpu_threads or os.cpu_count() or 1
        if device == "cpu":
            torch.set_num_threads(threads)
        if backend.startswith("onnx"):
            path = onnx_model_dir(path, onnx_cache_dir, name)
            onnx_file = _int8_file(path) if backend == "onnx-int8" else "onnx/model.onnx"
            self._model = SentenceTransformer(
                str(path),
                device=device,
                backend="onnx",
                local_files_only=True,
                model_kwargs={
                    "provider": "CPUExecutionProvider",
                    "file_name": onnx_file,
                    "session_options": onnx_session_options(threads),
                },
            )
        else:
            self._model = SentenceTransformer(str(path), device=device, local_files_only=True)
            if device.startswith("cuda"):
                self._model.half()
        # Fast tokenizers refuse concurrent use ("Already borrowed"): counting tokens gets its
        # own copy so that it can run while the model encodes.
        self._counting_tokenizer = copy.deepcopy(self._model.tokenizer)
        self.backend = backend
        self.device = str(self._model.device)
        if device.startswith("cuda"):
            self.device = f"{self.device} ({torch.cuda.get_device_name(self._model.device)})"
        self.max_tokens = int(self._model.max_seq_length)
        dimensions = self._model.get_embedding_dimension()
        if dimensions is None:
            raise RuntimeError(f"model at {path} does not report its embedding dimension")
        self.dimensions = int(dimensions)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Model tokens of each whole text, special tokens included, before truncation."""
        encoded = self._counting_tokenizer(
            list(texts), add_special_tokens=True, truncation=False, return_attention_mask=False
        )
        return [len(ids) for ids in encoded["input_ids"]]

    def encode(self, texts: list[str]) -> NDArray[np.float32]:
        """L2-normalised vectors of the texts, in one forward pass."""
        vectors = self._model.encode(
            texts,
            batch_size=len(texts),
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)
