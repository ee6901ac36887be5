"""Prometheus metrics of the embedding service."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)

BATCH_SIZE = Histogram(
    "ragplane_embedding_batch_size", "Texts per model invocation.", buckets=_SIZES
)
BATCH_TOKENS = Histogram(
    "ragplane_embedding_batch_tokens",
    "Padded tokens per model invocation.",
    buckets=(64, 256, 1024, 2048, 4096, 8192, 16384, 32768, 65536),
)
QUEUE_WAIT = Histogram(
    "ragplane_embedding_queue_wait_seconds",
    "Time a text waited in the queue before its batch started.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
INFERENCE = Histogram(
    "ragplane_embedding_inference_seconds",
    "Time of one model invocation.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
QUEUED_TEXTS = Gauge("ragplane_embedding_queue_depth", "Texts waiting for the model.")
QUEUED_REQUESTS = Gauge(
    "ragplane_embedding_queued_requests", "Calls with at least one text waiting for the model."
)
TEXTS_EMBEDDED = Counter(
    "ragplane_embedding_texts_embedded_total", "Texts run through the model (rate() = texts/s)."
)
CACHE_LOOKUPS = Counter(
    "ragplane_embedding_cache_lookups_total",
    "Embedding cache lookups per text, by result (hit, miss, error).",
    ["result"],
)
REJECTED = Counter(
    "ragplane_embedding_rejected_total", "Calls refused at admission, by reason.", ["reason"]
)
DROPPED = Counter(
    "ragplane_embedding_dropped_texts_total",
    "Queued texts dropped before the model because their call ended, by reason.",
    ["reason"],
)
