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
