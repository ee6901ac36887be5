"""Prometheus metrics and OpenTelemetry tracing shared by every service."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from wsgiref.simple_server import WSGIServer

import prometheus_client
from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)

RPC_REQUESTS = prometheus_client.Counter(
    "ragplane_rpc_requests_total",
    "gRPC calls handled, by method and status code.",
    ["service", "method", "code"],
)
RPC_DURATION = prometheus_client.Histogram(
    "ragplane_rpc_duration_seconds",
    "Time to handle a gRPC call, by method.",
    ["service", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)
RPC_IN_FLIGHT = prometheus_client.Gauge(
    "ragplane_rpc_in_flight", "gRPC calls being handled now.", ["service", "method"]
)


class BoundedLabel:
    """Values for one metric label, from a bounded set: every series costs memory until the
    process ends, so after ``limit`` distinct values the rest share the value OTHER."""

    OTHER = "_other"

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._seen: set[str] = set()

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        if len(self._seen) < self._limit:
            self._seen.add(value)
            return value
        return self.OTHER


class JsonLinesSpanExporter(SpanExporter):
    """Each finished span as one JSON line appended to a file: a trace without a collector."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = "".join(json.dumps(json.loads(span.to_json())) + "\n" for span in spans)
        with self._lock, self._path.open("a") as out:
            out.write(lines)
        return SpanExportResult.SUCCESS


def configure_tracing(service: str) -> None:
    """Install a tracer provider; spans go out over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set,
    and to the file RAGPLANE_TRACES_FILE names when it is set (one JSON line a span).

    Without either spans are still created, so trace ids reach the logs and travel to the
    next service in the call's metadata.
    """
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
    if traces_file := os.environ.get("RAGPLANE_TRACES_FILE"):
        provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(Path(traces_file))))
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)


class MetricsEndpoint:
    """The /metrics HTTP endpoint, on its own thread."""

    def __init__(self, host: str, port: int) -> None:
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._host = host
        self._port = port

    def start(self) -> None:
        if self._port:
            self._server, self._thread = prometheus_client.start_http_server(
                self._port, addr=self._host
            )

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
