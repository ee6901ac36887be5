"""Metrics of batch mode (created at import, so each series is in /metrics from the start)."""

from __future__ import annotations

import prometheus_client

ITEM_OUTCOMES = ("done", "failed")

ITEMS = prometheus_client.Counter(
    "ragplane_query_batch_items_total",
    "Batch questions finished, by outcome (done, failed after every retry).",
    ["outcome"],
)
RUNNING = prometheus_client.Gauge(
    "ragplane_query_batch_running", "Batch questions this service is answering now."
)
RETRIES = prometheus_client.Counter(
    "ragplane_query_batch_retries_total", "Batch questions tried again after a failed attempt."
)
PAUSES = prometheus_client.Counter(
    "ragplane_query_batch_pauses_total",
    "Times a batch waited for its tenant's rate limit or budget.",
)
COST_USD = prometheus_client.Counter(
    "ragplane_query_batch_cost_usd", "LLM cost in US dollars of batch answers, at the batch price."
)
SAVED_USD = prometheus_client.Counter(
    "ragplane_query_batch_saved_usd",
    "What batch answers saved in US dollars against the interactive price.",
)

for _outcome in ITEM_OUTCOMES:
    ITEMS.labels(_outcome)
