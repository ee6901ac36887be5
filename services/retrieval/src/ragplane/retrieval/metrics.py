"""Prometheus metrics of the retrieval service."""

from __future__ import annotations

from typing import Literal

from prometheus_client import Counter

# What a retried Weaviate call was doing: a bounded label.
WeaviateOperation = Literal["tenant_lookup", "store", "remove_stale", "delete"]

WEAVIATE_FAILURES = Counter(
    "ragplane_retrieval_weaviate_failures_total",
    "Weaviate calls that failed for a transient reason, and writes whose objects Weaviate "
    "rejected in part, by operation; each is retried while attempts and the deadline allow. "
    "A rise in `store` means writes were cut off mid-way.",
    ["operation"],
)

WEAVIATE_RESENT_WRITES = Counter(
    "ragplane_retrieval_resent_writes_total",
    "Final chunk writes that broke off and that weaviate-client sent again by itself; Weaviate "
    "keeps an object written again unchanged as it was, so each is written again as a pair.",
)
