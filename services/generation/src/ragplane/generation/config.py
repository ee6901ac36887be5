"""Generation service settings (environment variables prefixed GENERATION_)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, FilePath, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from ragplane.runtime.edge import StringLimits
from ragplane.runtime.settings import (
    BreakerSettings,
    Port,
    RedisSettings,
    Seconds,
    ServiceSettings,
)

Tier = Literal["small", "large"]


class ProviderSettings(BaseModel):
    """One OpenAI-compatible provider of the fallback chain (OpenAI, Groq, vLLM, llama.cpp, ...)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Name in responses, logs and metric labels.
    name: str = Field(min_length=1)
    base_url: str
    model: str
    # Where the API key is: the name of an environment variable, or a file (a mounted
    # secret); the key itself never appears in the configuration, so it cannot be logged.
    api_key_env: str | None = None
    api_key_file: FilePath | None = None
    tier: Tier = "small"
    input_price_per_mtok_usd: float = Field(default=0.0, ge=0)
    output_price_per_mtok_usd: float = Field(default=0.0, ge=0)
    request_timeout_s: float = Field(default=120.0, gt=0)
    # Prompt plus answer, in tokens.
    context_window: int = Field(default=2048, ge=16)
    # The model's tokenizer (a Hugging Face tokenizer.json): prompts are fitted to the context
    # window, and usage the provider omits is counted, with it. Unset: a conservative estimate
    # (3 ASCII characters per token, every other character as many tokens as it has UTF-8
    # bytes), which trims passages earlier than needed.
    tokenizer_path: FilePath | None = None

    @model_validator(mode="after")
    def _one_key_source(self) -> ProviderSettings:
        if self.api_key_env and self.api_key_file:
            raise ValueError(f"provider {self.name}: set api_key_env or api_key_file, not both")
        return self


class GenerationSettings(ServiceSettings, BreakerSettings, RedisSettings):
    model_config = SettingsConfigDict(env_prefix="GENERATION_")

    port: Port = 50054
    # The fallback chain, tried in order within the routed tier (GENERATION_PROVIDERS, JSON).
    # Empty means one provider made of the single-provider settings below.
    providers: list[ProviderSettings] = Field(default_factory=list)
    # The single-provider settings, kept so that a plain GENERATION_BASE_URL still works.
    provider_name: str = "local-smollm2"
    base_url: str = "http://127.0.0.1:8081/v1"
    # Used by providers without api_key_env (local servers ignore it).
    api_key: SecretStr = SecretStr("unused-by-local-servers")
    model: str = "smollm2-135m-instruct"
    request_timeout_s: float = Field(default=120.0, gt=0)
    context_window: int = Field(default=2048, ge=16)

    default_max_output_tokens: int = Field(default=256, ge=1)
    max_output_tokens_limit: int = Field(default=2048, ge=1)
    default_temperature: float = Field(default=0.2, ge=0, le=2)
    max_question_chars: int = Field(default=4_000, ge=1)
    max_passages: int = Field(default=50, ge=1)
    max_passage_chars: int = Field(default=8_000, ge=1)
    # Tenants that get a label of their own on the token and cost metrics; later ones share
    # the label "_other" (each label value is a time series Prometheus keeps).
    metrics_max_tenants: int = Field(default=100, ge=1)

    # Calls per provider for retryable failures (429, 5xx, timeouts, connection errors).
    retry_max_attempts: int = Field(default=3, ge=1)
    # Full-jitter exponential backoff: wait uniform(0, min(max, base * 2**retry)).
    retry_base_delay_s: float = Field(default=0.2, ge=0)
    retry_max_delay_s: float = Field(default=5.0, ge=0)
    # How long a provider's breaker stays open (GENERATION_BREAKER_FAIL_MAX failures open it).
    breaker_reset_timeout_s: Seconds = 30.0
    # Redis that shares breaker state between the replicas (GENERATION_REDIS_URL); empty keeps
    # each replica's breakers in its own memory. While Redis is down each replica falls back
    # to its own memory and tries Redis again every redis_retry_after_s.
    redis_timeout_s: Seconds = 0.1
    # How often each replica exchanges breaker state with Redis (in the background: breaker
    # state is read on the request path, which never waits for Redis).
    breaker_sync_interval_s: float = Field(default=0.2, gt=0)
    # Key prefix; each provider's breaker lives under "<namespace>:<provider name>:pybreaker:*".
    breaker_redis_namespace: str = Field(default="ragplane:generation:breaker", min_length=1)
    # An LLM call with less time than this left is not started: the extractive answer is
    # better than a call that cannot finish.
    min_call_time_s: float = Field(default=0.5, ge=0)
    # Kept back from the caller's deadline to build and send the response. Generous: on a
    # busy machine the event loop can wake well after a timer is due, and a call cut at the
    # deadline itself would leave no time for the extractive answer (measured: at 0.05 s,
    # make bench-generation on an overloaded 2-core machine lost 2 of 120 answers).
    deadline_reserve_s: float = Field(default=0.25, ge=0)
    # Tokens kept free in the context window besides the answer: the token estimate is rough.
    context_margin_tokens: int = Field(default=32, ge=0)
    # A stream that sends nothing for this long is ended (its caller gets UNAVAILABLE).
    stream_idle_timeout_s: float = Field(default=15.0, gt=0)
    # Passages quoted by the extractive answer.
    extractive_passages: int = Field(default=3, ge=1)

    def string_limits(self) -> StringLimits:
        return StringLimits(
            {
                "ragplane.v1.GenerateRequest.question": self.max_question_chars,
                "ragplane.v1.Passage.text": self.max_passage_chars,
            }
        )

    @model_validator(mode="after")
    def _unique_provider_names(self) -> GenerationSettings:
        names = [p.name for p in self.providers]
        if len(names) != len(set(names)):
            raise ValueError(f"provider names must be unique, got {names}")
        return self

    def chain(self) -> list[ProviderSettings]:
        """The configured providers, or the single provider of the older settings."""
        if self.providers:
            return list(self.providers)
        return [
            ProviderSettings(
                name=self.provider_name,
                base_url=self.base_url,
                model=self.model,
                request_timeout_s=self.request_timeout_s,
                context_window=self.context_window,
            )
        ]
