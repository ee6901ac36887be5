"""Retrieval service settings (environment variables prefixed RETRIEVAL_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from ragplane.runtime.settings import ServiceSettings


class RetrievalSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="RETRIEVAL_")

    port: int = Field(default=50053, ge=1, le=65535)
    weaviate_host: str = "127.0.0.1"
    weaviate_http_port: int = Field(default=8080, ge=1, le=65535)
    weaviate_grpc_port: int = Field(default=50060, ge=1, le=65535)
    # Seconds to wait for one Weaviate call.
    weaviate_timeout_s: float = Field(default=30.0, gt=0)
    collection: str = Field(default="RagplaneChunk", pattern=r"^[A-Z][A-Za-z0-9_]*$")
    # Metadata keys stored as filterable properties; other metadata is kept but not filterable.
    filterable_metadata: tuple[str, ...] = ("section",)
    default_alpha: float = Field(default=0.5, ge=0, le=1)
    max_top_k: int = Field(default=100, ge=1, le=10_000)
    max_chunks_per_upsert: int = Field(default=1_000, ge=1)
