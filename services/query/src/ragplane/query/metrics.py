"""Metrics of the query service's caches and limits.

The names and labels are a contract with the Helm chart's alerts and dashboard. Every label
value is created at import, so each series appears in /metrics before the first query.
"""

from __future__ import annotations

import prometheus_client

CACHE_LAYERS = ("exact", "semantic")
CACHE_OUTCOMES = ("hit", "miss", "bypass", "error")
LIMIT_REASONS = ("rate", "budget")

CACHE_LOOKUPS = prometheus_client.Counter(
    "ragplane_query_cache_lookups_total",
    "Answer cache lookups by layer and outcome (hit, miss, bypass, error).",
    ["layer", "outcome"],
)
CACHE_SAVED_USD = prometheus_client.Counter(
    "ragplane_query_cache_saved_usd",
    "Cost in US dollars of the LLM calls that answer cache hits avoided.",
)
REDIS_AVAILABLE = prometheus_client.Gauge(
    "ragplane_query_redis_available",
    "1 while the query service reaches Redis (caches and shared limits on), else 0.",
)
RATE_LIMITED = prometheus_client.Counter(
    "ragplane_query_rate_limited_total",
    "Queries refused by a tenant's rate limit or daily spend budget.",
    ["reason"],
)

for _layer in CACHE_LAYERS:
    for _outcome in CACHE_OUTCOMES:
        CACHE_LOOKUPS.labels(_layer, _outcome)
for _reason in LIMIT_REASONS:
    RATE_LIMITED.labels(_reason)
DEGRADATIONS = prometheus_client.Counter(
    "ragplane_query_degradations_total",
    "Answers given with a stage degraded, by stage and cause (one answer may count several).",
    ["stage", "cause"],
)

# Answer quality (quality/), by the model tier that answered ("none": extractive or not-found).
TIERS = ("none", "small", "large")
CONFIDENCE_ROUTES = ("answered", "escalated", "not_found")
_SHARES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0)
FAITHFULNESS = prometheus_client.Histogram(
    "ragplane_query_faithfulness",
    "Faithfulness of scored answers: the share of sentences their cited passages support.",
    ["tier"],
    buckets=_SHARES,
)
UNSUPPORTED_ANSWERS = prometheus_client.Counter(
    "ragplane_query_unsupported_answers_total",
    "Scored answers with at least one sentence their cited passages do not support.",
    ["tier"],
)
RETRIEVAL_CONFIDENCE = prometheus_client.Histogram(
    "ragplane_query_retrieval_confidence",
    "Retrieval confidence of answered questions (closest passage's similarity, with agreement).",
    ["tier"],
    buckets=_SHARES,
)
CONFIDENCE_ROUTED = prometheus_client.Counter(
    "ragplane_query_confidence_routes_total",
    "Questions by what retrieval confidence did: answered, escalated (large tier), not_found.",
    ["route"],
)


def tier_label(tier: int) -> str:
    """The label of the generation service's ModelTier value ``tier``."""
    return TIERS[tier] if 0 <= tier < len(TIERS) else TIERS[0]


for _tier in TIERS:
    FAITHFULNESS.labels(_tier)
    UNSUPPORTED_ANSWERS.labels(_tier)
    RETRIEVAL_CONFIDENCE.labels(_tier)
for _route in CONFIDENCE_ROUTES:
    CONFIDENCE_ROUTED.labels(_route)
RATINGS = ("up", "down")
FEEDBACK = prometheus_client.Counter(
    "ragplane_query_feedback_total",
    "Users' verdicts on answers (Feedback RPC), by rating and the tier that answered.",
    ["rating", "tier"],
)
FEEDBACK_FAITHFULNESS = prometheus_client.Histogram(
    "ragplane_query_feedback_faithfulness",
    "Faithfulness of the scored answers users rated, by rating.",
    ["rating"],
    buckets=_SHARES,
)
for _rating in RATINGS:
    FEEDBACK_FAITHFULNESS.labels(_rating)
    for _tier in TIERS:
        FEEDBACK.labels(_rating, _tier)

# The LLM-as-judge (quality/judge.py, QUERY_FAITHFULNESS_JUDGE=on); the generation service
# counts the same tokens again under its own metrics, with the answer's tenant.
JUDGE_OUTCOMES = ("judged", "unreadable", "failed", "skipped")
JUDGE_CALLS = prometheus_client.Counter(
    "ragplane_query_faithfulness_judge_total",
    "Answers the LLM judge was to score, by outcome: judged, or scored by evidence instead "
    "because its reply was unreadable, the call failed, or it was skipped (no time, too long).",
    ["outcome"],
)
JUDGE_TOKENS = prometheus_client.Counter(
    "ragplane_query_faithfulness_judge_tokens_total",
    "Tokens of the LLM judge's calls, by direction (input, output).",
    ["direction"],
)
JUDGE_COST = prometheus_client.Counter(
    "ragplane_query_faithfulness_judge_cost_usd_total",
    "Cost in US dollars of the LLM judge's calls (included in the answers' cost_usd).",
)
for _outcome in JUDGE_OUTCOMES:
    JUDGE_CALLS.labels(_outcome)
for _direction in ("input", "output"):
    JUDGE_TOKENS.labels(_direction)

# A/B variants (flags/): what `make load` and the dashboards compare variants by. The label
# values come from the flags file (experiment and variant names); "" outside experiments.
VARIANT_ANSWERS = prometheus_client.Counter(
    "ragplane_query_variant_answers_total",
    "Answers by experiment, variant and how they were made: cached, generated, degraded.",
    ["experiment", "variant", "outcome"],
)
VARIANT_LATENCY = prometheus_client.Histogram(
    "ragplane_query_variant_latency_seconds",
    "Time the query service spent on an answer, by experiment and variant.",
    ["experiment", "variant"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64),
)
VARIANT_COST_USD = prometheus_client.Counter(
    "ragplane_query_variant_cost_usd",
    "LLM cost in US dollars of answers, by experiment and variant.",
    ["experiment", "variant"],
)
