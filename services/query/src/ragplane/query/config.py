"""Query service settings (environment variables prefixed QUERY_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from ragplane.runtime.bundled import bundled_model_dir
from ragplane.runtime.settings import ServiceSettings


def bundled_tokenizer_path() -> Path:
    """tokenizer.json of all-MiniLM-L6-v2, the model the embedding service runs by default."""
    return bundled_model_dir() / "tokenizer.json"


class QuerySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="QUERY_")

    port: int = Field(default=50051, ge=1, le=65535)
    embedding_target: str = "127.0.0.1:50052"
    retrieval_target: str = "127.0.0.1:50053"
    generation_target: str = "127.0.0.1:50054"
    # Budget for a query when the caller sets no deadline.
    default_timeout_s: float = Field(default=60.0, gt=0)
    # Stage budgets. Each stage gets at most its cap, and never the time the stages after it
    # are promised: embedding keeps search + generation + respond free, search keeps generation
    # + respond, generation keeps respond.
    embed_timeout_s: float = Field(default=1.0, gt=0)
    search_timeout_s: float = Field(default=3.0, gt=0)
    generation_timeout_s: float = Field(default=120.0, gt=0)
    search_reserve_s: float = Field(default=0.2, ge=0)
    # Less time than this left for generation: the extractive answer is given without calling
    # the generation service.
    generation_min_s: float = Field(default=0.5, ge=0)
    # Kept back from generation for building the response (and the extractive answer when
    # generation fails), so the answer leaves before the caller's deadline.
    respond_reserve_s: float = Field(default=0.15, ge=0)
    # An embedding still missing after this long starts a BM25-only search beside it, so that
    # an embedding service that is slow costs no extra search time when it finally fails.
    bm25_hedge_after_s: float = Field(default=0.05, ge=0)
    # Passages quoted by the extractive answer.
    extractive_passages: int = Field(default=3, ge=1)
    # Circuit breakers on the calls to each dependency (embedding, retrieval, generation).
    breaker_fail_max: int = Field(default=5, ge=1)
    breaker_reset_timeout_s: float = Field(default=10.0, gt=0)
    default_top_k: int = Field(default=5, ge=1)
    max_top_k: int = Field(default=20, ge=1)
    max_query_chars: int = Field(default=2_000, ge=1)
    max_output_tokens_limit: int = Field(default=1024, ge=1)
    # Passages shown with each citation are cut to this many characters.
    snippet_chars: int = Field(default=240, ge=0)
    max_documents_per_ingest: int = Field(default=256, ge=1)
    max_document_chars: int = Field(default=2_000_000, ge=1)
    # Chunk size in model tokens, leaving room for the model's special tokens.
    chunk_tokens: int = Field(default=200, ge=16)
    chunk_overlap_tokens: int = Field(default=40, ge=0)
    # tokenizer.json of the embedding model; empty means the bundled all-MiniLM-L6-v2 one.
    tokenizer_path: Path | None = None
    # Chunks per Embed call during ingestion.
    embed_batch_size: int = Field(default=64, ge=1)
    # Chunks per Upsert call during ingestion.
    store_batch_chunks: int = Field(default=500, ge=1)
    ingest_timeout_s: float = Field(default=300.0, gt=0)

    @model_validator(mode="after")
    def _overlap_smaller_than_chunk(self) -> QuerySettings:
        if self.chunk_overlap_tokens >= self.chunk_tokens // 2:
            raise ValueError(
                "QUERY_CHUNK_OVERLAP_TOKENS must be less than half of QUERY_CHUNK_TOKENS"
            )
        return self

    def resolved_tokenizer_path(self) -> Path:
        return self.tokenizer_path or bundled_tokenizer_path()
