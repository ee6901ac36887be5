"""Retrieval service settings (environment variables prefixed RETRIEVAL_)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from ragplane.runtime.edge import StringLimits
from ragplane.runtime.settings import (
    Port,
    RedisSettings,
    Seconds,
    ServiceSettings,
    WeaviateSettings,
)

MetadataType = Literal["text", "number"]


def _default_filterable() -> dict[str, MetadataType]:
    return {"section": "text"}


class RetrievalSettings(ServiceSettings, WeaviateSettings, RedisSettings):
    model_config = SettingsConfigDict(env_prefix="RETRIEVAL_")

    port: Port = 50053
    collection: str = Field(default="RagplaneChunk", pattern=r"^[A-Z][A-Za-z0-9_]*$")
    # Metadata keys stored as filterable properties, with their type (JSON, for example
    # {"section": "text", "year": "number"}); other metadata is kept but not filterable.
    filterable_metadata: dict[str, MetadataType] = Field(default_factory=_default_filterable)
    # Measured best of 0.25 / 0.5 / 0.75 by `make eval-retrieval` (README).
    default_alpha: float = Field(default=0.75, ge=0, le=1)
    default_fusion: Literal["relative_score", "ranked"] = "relative_score"
    max_top_k: int = Field(default=100, ge=1, le=10_000)
    max_chunks_per_upsert: int = Field(default=1_000, ge=1)
    # Chunks fetched (at least top_k) for a search ranked by DOCUMENT_RANKING_CHUNK_SUM, whose
    # scores are summed per document: 100 is what `make eval-retrieval` measured (README).
    document_candidates: int = Field(default=100, ge=1, le=10_000)
    # Dimensions of the embedding model's vectors (all-MiniLM-L6-v2: 384): every vector
    # written or searched with must have exactly this many.
    vector_dimensions: int = Field(default=384, ge=1)
    # Longest search text and chunk text, in characters: the query service's question limit,
    # and the embedding service's text limit (a longer chunk could not have been embedded).
    max_query_chars: int = Field(default=2_000, ge=1)
    max_chunk_chars: int = Field(default=8_000, ge=1)
    # Redis shared with the query service: deleting or deactivating a tenant bumps the tenant's
    # index version there, which invalidates its cached answers. Empty RETRIEVAL_REDIS_URL: no
    # answer caches to invalidate (the query service runs without Redis too).
    redis_timeout_s: Seconds = 1.0
    # Copies of each chunk on the Weaviate nodes (given when the collection is created; Weaviate
    # keeps a collection's factor), and how many copies must answer each read and acknowledge
    # each write: QUORUM, a majority, lets a factor of 3 lose one node; with one copy every
    # level is that copy.
    replication_factor: int = Field(default=1, ge=1)
    consistency_level: Literal["ONE", "QUORUM", "ALL"] = "QUORUM"
    # Tries of a Weaviate write that failed for a transient reason, and the first backoff.
    write_attempts: int = Field(default=5, ge=1, le=20)
    write_backoff_s: float = Field(default=0.25, gt=0, le=10)

    # Cross-encoder reranker: a local sentence-transformers CrossEncoder directory (`make
    # reranker` trains one). Unset: searches that ask for rerank keep hybrid order, flagged.
    reranker_path: Path | None = None
    # Rerank when the request does not say; off by default (see README: measured, not assumed).
    rerank_by_default: bool = False
    rerank_candidates: int = Field(default=30, ge=1)
    max_rerank_candidates: int = Field(default=200, ge=1)
    rerank_batch_size: int = Field(default=16, ge=1)
    rerank_max_length: int = Field(default=256, ge=16, le=512)
    # Time the reranker may take per request; also never past the caller's deadline less the
    # reserve kept for sending the reply.
    rerank_budget_ms: float = Field(default=2_000, ge=0)
    rerank_deadline_reserve_ms: float = Field(default=50, ge=0)

    @model_validator(mode="after")
    def _check(self) -> RetrievalSettings:
        if self.rerank_candidates > self.max_rerank_candidates:
            raise ValueError("rerank_candidates must not exceed max_rerank_candidates")
        for key in self.filterable_metadata:
            if not key.replace("_", "").isalnum():
                raise ValueError(f"filterable_metadata key {key!r}: letters, digits, '_' only")
        return self

    def string_limits(self) -> StringLimits:
        return StringLimits(
            {
                "ragplane.v1.SearchRequest.query_text": self.max_query_chars,
                "ragplane.v1.Chunk.text": self.max_chunk_chars,
            }
        )
