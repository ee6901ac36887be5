"""Query service settings (environment variables prefixed QUERY_)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ragplane.query.flags.source import FlagsFileError, parse_flags
from ragplane.query.quality.confidence import LARGE_TIER, SMALL_TIER, ConfidenceRouter
from ragplane.query.quality.faithfulness import EvidenceThresholds
from ragplane.query.quality.judge import JudgeSettings
from ragplane.runtime.auth import load_key_ring
from ragplane.runtime.bundled import bundled_model_dir
from ragplane.runtime.edge import StringLimits
from ragplane.runtime.settings import (
    BreakerSettings,
    Port,
    RedisSettings,
    Seconds,
    ServiceSettings,
    WeaviateSettings,
)

_T = TypeVar("_T")
# How the retrieval service ranks a question's chunks (its Search contract's DocumentRanking).
DocumentRanking = Literal["best_chunk", "chunk_sum"]


def bundled_tokenizer_path() -> Path:
    """tokenizer.json of all-MiniLM-L6-v2, the model the embedding service runs by default."""
    return bundled_model_dir() / "tokenizer.json"


class QuerySettings(ServiceSettings, BreakerSettings):
    model_config = SettingsConfigDict(env_prefix="QUERY_")

    port: Port = 50051
    embedding_target: str = "127.0.0.1:50052"
    retrieval_target: str = "127.0.0.1:50053"
    generation_target: str = "127.0.0.1:50054"
    # The deadline of a query whose caller sets none.
    default_timeout_s: float = Field(default=60.0, gt=0)
    # Stage caps. Each stage gets at most its cap, and never the time the stages after it
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
    default_top_k: int = Field(default=5, ge=1)
    # "chunk_sum": the passages come grouped by document, the document whose chunks score best
    # together first (measured better by `make eval-retrieval`, README "Retrieval quality");
    # "best_chunk" is what the retrieval contract does for callers that do not say.
    document_ranking: DocumentRanking = "chunk_sum"
    max_top_k: int = Field(default=20, ge=1)
    max_query_chars: int = Field(default=2_000, ge=1)
    max_output_tokens_limit: int = Field(default=1024, ge=1)
    # Passages shown with each citation are cut to this many characters.
    snippet_chars: int = Field(default=240, ge=0)
    # One Ingest call must finish within ingest_timeout_s on a small machine: at the slowest
    # ingestion measured (14 chunks/s on 2 cores), 1,000,000 characters are about 1,450 chunks
    # and 100 s. Larger corpora go in several calls (the CLI batches them).
    max_documents_per_ingest: int = Field(default=256, ge=1)
    max_document_chars: int = Field(default=1_000_000, ge=1)
    max_ingest_chars: int = Field(default=1_000_000, ge=1)
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
    # Faithfulness of each generated answer (quality/faithfulness.py); off saves its Embed call.
    faithfulness_enabled: bool = True
    # Cap on the scoring's Embed call; past it the sentences are judged by their words alone.
    faithfulness_timeout_s: float = Field(default=0.3, gt=0)
    # Share of a sentence's content words found in its cited passages: at or above the first
    # it is supported, below the second unsupported; in between its embedding decides.
    faithfulness_supported_coverage: float = Field(default=0.7, gt=0, le=1)
    faithfulness_unsupported_coverage: float = Field(default=0.2, ge=0, lt=1)
    # Cosine similarity to the closest cited passage sentence that supports a sentence.
    faithfulness_similarity: float = Field(default=0.6, gt=0, le=1)
    # Sentences per answer compared by embedding (each adds two texts to one Embed call).
    faithfulness_max_embedded: int = Field(default=4, ge=0)
    # LLM-as-judge (quality/judge.py): "on" asks the generation service, on this tier, whether
    # the passages support each sentence: one more LLM call per answer, for providers that can
    # afford it. Its cap is taken from the query's deadline, before the evidence score's that
    # replaces it when it fails; answers with more sentences than the last are not judged.
    faithfulness_judge: Literal["off", "on"] = "off"
    faithfulness_judge_tier: Literal["small", "large"] = "small"
    faithfulness_judge_timeout_s: float = Field(default=10.0, gt=0)
    faithfulness_judge_max_sentences: int = Field(default=12, ge=1)
    # Retrieval confidence (quality/confidence.py) is always reported; with routing on, a
    # question whose closest passage is below the first similarity gets the not-found answer,
    # and one whose confidence is below the second goes to the large tier. The defaults sit
    # between the all-MiniLM-L6-v2 similarities measured on the demo corpus: answerable
    # questions 0.44-0.80, unrelated ones 0.03-0.17.
    confidence_routing: bool = False
    # Passage texts (cut to 500 characters, personal data masked) on the retrieval span.
    trace_passages: bool = False
    not_found_similarity: float = Field(default=0.3, ge=0, le=1)
    escalate_confidence: float = Field(default=0.45, ge=0, le=1)

    def string_limits(self) -> StringLimits:
        return StringLimits(
            {
                "ragplane.v1.QueryRequest.query": self.max_query_chars,
                "ragplane.v1.Document.text": self.max_document_chars,
            }
        )

    @model_validator(mode="after")
    def _overlap_smaller_than_chunk(self) -> QuerySettings:
        if self.chunk_overlap_tokens >= self.chunk_tokens // 2:
            raise ValueError(
                "QUERY_CHUNK_OVERLAP_TOKENS must be less than half of QUERY_CHUNK_TOKENS"
            )
        return self

    @model_validator(mode="after")
    def _coverage_thresholds_ordered(self) -> QuerySettings:
        if self.faithfulness_unsupported_coverage >= self.faithfulness_supported_coverage:
            raise ValueError(
                "QUERY_FAITHFULNESS_UNSUPPORTED_COVERAGE must be less than "
                "QUERY_FAITHFULNESS_SUPPORTED_COVERAGE"
            )
        return self

    @model_validator(mode="after")
    def _judge_needs_scoring(self) -> QuerySettings:
        if self.faithfulness_judge == "on" and not self.faithfulness_enabled:
            raise ValueError(
                "QUERY_FAITHFULNESS_JUDGE=on needs QUERY_FAITHFULNESS_ENABLED=true "
                "(the judge falls back to the evidence score)"
            )
        return self

    def resolved_tokenizer_path(self) -> Path:
        return self.tokenizer_path or bundled_tokenizer_path()

    def confidence_router(self) -> ConfidenceRouter:
        return ConfidenceRouter(
            self.confidence_routing, self.not_found_similarity, self.escalate_confidence
        )

    def evidence_thresholds(self) -> EvidenceThresholds:
        return EvidenceThresholds(
            supported_coverage=self.faithfulness_supported_coverage,
            unsupported_coverage=self.faithfulness_unsupported_coverage,
            similarity=self.faithfulness_similarity,
            max_embedded=self.faithfulness_max_embedded,
        )

    def judge_settings(self) -> JudgeSettings | None:
        """The LLM judge's settings; None when it is off."""
        if self.faithfulness_judge == "off":
            return None
        return JudgeSettings(
            tier=LARGE_TIER if self.faithfulness_judge_tier == "large" else SMALL_TIER,
            min_s=self.generation_min_s,
            max_sentences=self.faithfulness_judge_max_sentences,
        )


class TenantPolicy(BaseModel):
    """Per-tenant overrides of the service-wide defaults; an unset field keeps the default."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rate_per_s: float | None = Field(default=None, ge=0)
    burst: int | None = Field(default=None, ge=1)
    daily_budget_usd: float | None = Field(default=None, ge=0)
    daily_hard_budget_usd: float | None = Field(default=None, ge=0)
    semantic_cache_enabled: bool | None = None
    semantic_threshold: float | None = Field(default=None, gt=0, le=1)


@dataclass(frozen=True)
class ResolvedPolicy:
    """What applies to one tenant: its overrides on top of the service-wide defaults."""

    rate_per_s: float
    burst: int
    daily_budget_usd: float | None
    daily_hard_budget_usd: float | None
    semantic_cache_enabled: bool
    semantic_threshold: float


class GuardSettings(RedisSettings, WeaviateSettings):
    """Caches, API keys, rate limits and spend budgets of the query service (prefix QUERY_).

    Kept apart from QuerySettings (same prefix) so that the orchestration settings stay small.
    """

    model_config = SettingsConfigDict(env_prefix="QUERY_", frozen=True, extra="ignore")

    # Redis (QUERY_REDIS_URL) shared by every replica: answer caches, index versions, rate
    # limits, spend. Empty turns all of them off (local development without Redis).
    # What rate limits and budgets do while Redis is down: "open" lets calls through,
    # "closed" refuses them with UNAVAILABLE.
    limits_when_redis_down: Literal["open", "closed"] = "open"

    answer_cache_enabled: bool = True
    answer_cache_ttl_s: int = Field(default=24 * 3600, ge=1)
    # Part of every cache key: change it when the model or the prompt changes.
    answer_cache_version: str = "v1"
    semantic_cache_enabled: bool = True
    semantic_threshold: float = Field(default=0.95, gt=0, le=1)
    # Semantic candidates above the threshold that the gate may look at before giving up.
    semantic_candidates: int = Field(default=3, ge=1)
    # v2: entries keyed by "index_version" (v1 collections, keyed by "generation", are ignored).
    semantic_collection: str = "RagplaneAnswerCacheV2"
    # How long an answer's identifiers are kept for a Feedback call about it.
    feedback_ttl_s: int = Field(default=7 * 24 * 3600, ge=1)
    # The semantic cache's Weaviate (QUERY_WEAVIATE_*): the timeout is each call's and also a
    # lookup's, store's or removal's in all (the client's own resends included), so that a
    # Weaviate down never holds a query longer.
    weaviate_timeout_s: Seconds = 2.0

    # API keys: a JSON or YAML file (a mounted secret), or the same JSON inline. Neither: auth off.
    api_keys_file: Path | None = None
    api_keys: str = ""

    # Token bucket per tenant: rate_per_s 0 means no limit.
    rate_per_s: float = Field(default=0.0, ge=0)
    burst: int = Field(default=20, ge=1)
    # Daily LLM spend per tenant (UTC day): past the soft budget the small tier is forced,
    # past the hard budget queries that need the LLM are refused. Unset: no budget.
    daily_budget_usd: float | None = Field(default=None, ge=0)
    daily_hard_budget_usd: float | None = Field(default=None, ge=0)
    # JSON object: tenant -> TenantPolicy overrides.
    tenant_policies: dict[str, TenantPolicy] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _keys_from_one_place(self) -> GuardSettings:
        if self.api_keys_file is not None and self.api_keys:
            raise ValueError("set QUERY_API_KEYS_FILE or QUERY_API_KEYS, not both")
        if self.api_keys_file is not None and not self.api_keys_file.is_file():
            raise ValueError(f"QUERY_API_KEYS_FILE {self.api_keys_file} is not a readable file")
        # Parsed now so that a bad key file stops the service at start-up, naming the problem.
        load_key_ring(self.api_keys_file, self.api_keys)
        return self

    @model_validator(mode="after")
    def _limits_need_redis(self) -> GuardSettings:
        policies = [self.policy_for(tenant) for tenant in ("", *self.tenant_policies)]
        limited = any(
            p.rate_per_s > 0
            or p.daily_budget_usd is not None
            or p.daily_hard_budget_usd is not None
            for p in policies
        )
        if limited and not self.redis_enabled:
            raise ValueError("rate limits and spend budgets need QUERY_REDIS_URL")
        return self

    def policy_for(self, tenant: str) -> ResolvedPolicy:
        override = self.tenant_policies.get(tenant, TenantPolicy())

        def pick(value: _T | None, default: _T) -> _T:
            return default if value is None else value

        return ResolvedPolicy(
            rate_per_s=pick(override.rate_per_s, self.rate_per_s),
            burst=pick(override.burst, self.burst),
            daily_budget_usd=pick(override.daily_budget_usd, self.daily_budget_usd),
            daily_hard_budget_usd=pick(override.daily_hard_budget_usd, self.daily_hard_budget_usd),
            semantic_cache_enabled=pick(
                override.semantic_cache_enabled, self.semantic_cache_enabled
            ),
            semantic_threshold=pick(override.semantic_threshold, self.semantic_threshold),
        )


class FlagSettings(BaseSettings):
    """Feature flags, A/B variants and shadow generation (prefix QUERY_; see flags/)."""

    model_config = SettingsConfigDict(env_prefix="QUERY_", frozen=True, extra="ignore")

    # The flags file (YAML or JSON; a mounted ConfigMap), re-read every flags_poll_s. Unset:
    # no flags, every behaviour as the settings above say.
    flags_file: Path | None = None
    flags_poll_s: float = Field(default=1.0, gt=0)
    # Where shadow generations go: a generation service (host:port) of their own, or empty for
    # QUERY_GENERATION_TARGET's. Which tier and prompt they use is a flag (shadow).
    shadow_generation_target: str = ""
    # Shadows running at once on this service; past it new ones are dropped (and counted).
    shadow_max_in_flight: int = Field(default=2, ge=1)
    shadow_timeout_s: float = Field(default=60.0, gt=0)
    # The pairs' JSON-lines records; unset: one line each on the ragplane.shadow logger.
    shadow_records_file: Path | None = None

    @model_validator(mode="after")
    def _flags_file_valid(self) -> FlagSettings:
        if self.flags_file is None:
            return self
        try:
            parse_flags(self.flags_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, FlagsFileError) as error:
            raise ValueError(f"QUERY_FLAGS_FILE {self.flags_file}: {error}") from error
        return self


class BatchSettings(BaseSettings):
    """Batch mode (prefix QUERY_BATCH_): the durable queue's worker and its results.

    Batches live in the Redis of QUERY_REDIS_URL; without it SubmitBatch is refused.
    """

    model_config = SettingsConfigDict(env_prefix="QUERY_BATCH_", frozen=True, extra="ignore")

    # Off: this service takes batches (SubmitBatch, GetBatch) but answers none; query services
    # with it on (the same pods, or a Deployment of their own) answer them.
    worker_enabled: bool = True
    # Questions of batches answered at once by one query service.
    concurrency: int = Field(default=2, ge=1)
    # Interactive queries in flight on this service at which the worker starts no new question.
    yield_in_flight: int = Field(default=1, ge=1)
    # Further attempts at a question that failed, before it is reported failed.
    retries: int = Field(default=2, ge=0)
    retry_delay_s: float = Field(default=1.0, gt=0)
    # How long a batch and its results are kept after its last activity.
    result_ttl_s: int = Field(default=7 * 24 * 3600, ge=60)
    # The batch price as a fraction of the interactive price (providers' batch endpoints ask
    # about half).
    price_factor: float = Field(default=0.5, gt=0, le=1)
    max_items: int = Field(default=10_000, ge=1)
    # The time one question may take, like an interactive query's deadline.
    item_timeout_s: float = Field(default=120.0, gt=0)
    # A question taken by a worker that died is taken over after it was idle this long.
    claim_idle_s: float = Field(default=30.0, gt=0)
    # How often an idle worker looks for work, and a busy one for a cancellation.
    poll_s: float = Field(default=0.5, gt=0)
    # A paused batch (rate limit, budget) is tried again after at most this long.
    pause_max_s: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _claim_after_an_item_could_finish(self) -> BatchSettings:
        if self.worker_enabled and self.claim_idle_s <= self.poll_s:
            raise ValueError("QUERY_BATCH_CLAIM_IDLE_S must be more than QUERY_BATCH_POLL_S")
        return self
