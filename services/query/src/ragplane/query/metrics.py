"""Metrics of the query service: caches, limits, breakers, quality, feedback, flags, shadows.

The names and labels are a contract with the Helm chart's alerts and dashboard. Each metric is
declared with its labels' values, and every combination of them is created at import, so each
series appears in /metrics before the first query; a label whose values are known only at run
time (an experiment's name) is declared with none.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TypeVar

import prometheus_client

_Metric = TypeVar("_Metric", prometheus_client.Counter, prometheus_client.Histogram)


def _with_series(metric: _Metric, labels: dict[str, Sequence[str]]) -> _Metric:
    if not labels:
        return metric  # one series, there from the start
    for values in itertools.product(*labels.values()):
        metric.labels(*values)
    return metric


def counter(name: str, documentation: str, **labels: Sequence[str]) -> prometheus_client.Counter:
    """A counter with a series for every combination of ``labels``' values."""
    return _with_series(prometheus_client.Counter(name, documentation, list(labels)), labels)


def histogram(
    name: str, documentation: str, buckets: Sequence[float], **labels: Sequence[str]
) -> prometheus_client.Histogram:
    """A histogram with a series for every combination of ``labels``' values."""
    metric = prometheus_client.Histogram(name, documentation, list(labels), buckets=buckets)
    return _with_series(metric, labels)


CACHE_LAYERS = ("exact", "semantic")
CACHE_OUTCOMES = ("hit", "miss", "bypass", "error")
CACHE_LOOKUPS = counter(
    "ragplane_query_cache_lookups_total",
    "Answer cache lookups by layer and outcome (hit, miss, bypass, error).",
    layer=CACHE_LAYERS,
    outcome=CACHE_OUTCOMES,
)
CACHE_SAVED_USD = counter(
    "ragplane_query_cache_saved_usd",
    "Cost in US dollars of the LLM calls that answer cache hits avoided.",
)
REDIS_AVAILABLE = prometheus_client.Gauge(
    "ragplane_query_redis_available",
    "1 while the query service reaches Redis (caches and shared limits on), else 0.",
)
DEPENDENCY_BREAKER_STATE = prometheus_client.Gauge(
    "ragplane_query_dependency_breaker_state",
    "Circuit breaker of each dependency of the query service: 0 closed, 1 half-open, 2 open.",
    ["dependency"],
)
RATE_LIMITED = counter(
    "ragplane_query_rate_limited_total",
    "Queries refused by a tenant's rate limit or daily spend budget.",
    reason=("rate", "budget"),
)
DEGRADATIONS = counter(
    "ragplane_query_degradations_total",
    "Answers given with a stage degraded, by stage and cause (one answer may count several).",
    stage=(),
    cause=(),
)

# Answer quality (quality/), by the model tier that answered ("none": extractive or not-found).
TIERS = ("none", "small", "large")
_SHARES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0)
FAITHFULNESS = histogram(
    "ragplane_query_faithfulness",
    "Faithfulness of scored answers: the share of sentences their cited passages support.",
    _SHARES,
    tier=TIERS,
)
UNSUPPORTED_ANSWERS = counter(
    "ragplane_query_unsupported_answers_total",
    "Scored answers with at least one sentence their cited passages do not support.",
    tier=TIERS,
)
RETRIEVAL_CONFIDENCE = histogram(
    "ragplane_query_retrieval_confidence",
    "Retrieval confidence of answered questions (closest passage's similarity, with agreement).",
    _SHARES,
    tier=TIERS,
)
CONFIDENCE_ROUTED = counter(
    "ragplane_query_confidence_routes_total",
    "Questions by what retrieval confidence did: answered, escalated (large tier), not_found.",
    route=("answered", "escalated", "not_found"),
)


def tier_label(tier: int) -> str:
    """The label of the generation service's ModelTier value ``tier``."""
    return TIERS[tier] if 0 <= tier < len(TIERS) else TIERS[0]


RATINGS = ("up", "down")
FEEDBACK = counter(
    "ragplane_query_feedback_total",
    "Users' verdicts on answers (Feedback RPC), by rating and the tier that answered.",
    rating=RATINGS,
    tier=TIERS,
)
FEEDBACK_FAITHFULNESS = histogram(
    "ragplane_query_feedback_faithfulness",
    "Faithfulness of the scored answers users rated, by rating.",
    _SHARES,
    rating=RATINGS,
)

# The LLM-as-judge (quality/judge.py, QUERY_FAITHFULNESS_JUDGE=on); the generation service
# counts the same tokens again under its own metrics, with the answer's tenant.
JUDGE_CALLS = counter(
    "ragplane_query_faithfulness_judge_total",
    "Answers the LLM judge was to score, by outcome: judged, or scored by evidence instead "
    "because its reply was unreadable, the call failed, or it was skipped (no time, too long).",
    outcome=("judged", "unreadable", "failed", "skipped"),
)
JUDGE_TOKENS = counter(
    "ragplane_query_faithfulness_judge_tokens_total",
    "Tokens of the LLM judge's calls, by direction (input, output).",
    direction=("input", "output"),
)
JUDGE_COST = counter(
    "ragplane_query_faithfulness_judge_cost_usd_total",
    "Cost in US dollars of the LLM judge's calls (included in the answers' cost_usd).",
)

# A/B variants (flags/): what `make load` and the dashboards compare variants by. The label
# values come from the flags file (experiment and variant names); "" outside experiments.
VARIANT_ANSWERS = counter(
    "ragplane_query_variant_answers_total",
    "Answers by experiment, variant and how they were made: cached, generated, degraded.",
    experiment=(),
    variant=(),
    outcome=(),
)
VARIANT_LATENCY = histogram(
    "ragplane_query_variant_latency_seconds",
    "Time the query service spent on an answer, by experiment and variant.",
    (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64),
    experiment=(),
    variant=(),
)
VARIANT_COST_USD = counter(
    "ragplane_query_variant_cost_usd",
    "LLM cost in US dollars of answers, by experiment and variant.",
    experiment=(),
    variant=(),
)
FLAG_RELOADS = counter(
    "ragplane_query_flags_reloads_total",
    "Changes of the flags file seen, by outcome: applied, or refused (the last good flags stay).",
    outcome=("applied", "refused"),
)

# Shadow generation (flags/shadow.py): the pairs, by variant of the caller's answer ("" outside
# experiments).
SHADOW_PAIRS = counter(
    "ragplane_query_shadow_pairs_total",
    "Shadow generations by outcome: compared (both answered), failed, timed_out, dropped "
    "(too many shadows running: shed first under load).",
    outcome=("compared", "failed", "timed_out", "dropped"),
    variant=("",),
)
SHADOW_COST = counter(
    "ragplane_query_shadow_cost_usd",
    "Cost in US dollars of shadow generations (not booked on any tenant's spend).",
)
SHADOW_SIMILARITY = histogram(
    "ragplane_query_shadow_similarity",
    "Cosine similarity of the embeddings of the caller's answer and the shadow's.",
    (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 1.0),
)
