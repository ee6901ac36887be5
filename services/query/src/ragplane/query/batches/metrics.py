"""Metrics of batch mode (created at import, so each series is in /metrics from the start)."""

from __future__ import annotations

import prometheus_client

from ragplane.query.metrics import counter

ITEMS = counter(
    "ragplane_query_batch_items_total",
    "Batch questions finished, by outcome (done, failed after every retry).",
    outcome=("done", "failed"),
)
RUNNING = prometheus_client.Gauge(
    "ragplane_query_batch_running", "Batch questions this service is answering now."
)
RETRIES = counter(
    "ragplane_query_batch_retries_total", "Batch questions tried again after a failed attempt."
)
PAUSES = counter(
    "ragplane_query_batch_pauses_total",
    "Times a batch waited for its tenant's rate limit or budget.",
)
COST_USD = counter(
    "ragplane_query_batch_cost_usd", "LLM cost in US dollars of batch answers, at the batch price."
)
SAVED_USD = counter(
    "ragplane_query_batch_saved_usd",
    "What batch answers saved in US dollars against the interactive price.",
)
