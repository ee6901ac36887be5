"""Prometheus metrics of the generation service."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

TOKENS = Counter(
    "ragplane_generation_tokens",
    "LLM tokens by provider, model, tenant and direction (input, output); locally estimated "
    "when the provider sends no usage.",
    ["provider", "model", "tenant", "direction"],
)
COST_USD = Counter(
    "ragplane_generation_cost_usd",
    "Cost of LLM calls in US dollars, from the configured price table.",
    ["provider", "model", "tenant"],
)
BREAKER_STATE = Gauge(
    "ragplane_generation_breaker_state",
    "Circuit breaker state per provider: 0 closed, 1 half-open (the next call is a trial), 2 open.",
    ["provider"],
)
ATTEMPTS = Counter(
    "ragplane_generation_provider_attempts",
    "Providers tried per request, by outcome (succeeded, failed, skipped).",
    ["provider", "outcome"],
)
EXTRACTIVE = Counter(
    "ragplane_generation_extractive_answers",
    "Answers extracted from the passages because no provider answered.",
)
TTFT = Histogram(
    "ragplane_generation_time_to_first_token_seconds",
    "GenerateStream: time from the request to the first text sent, by provider.",
    ["provider"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32),
)
