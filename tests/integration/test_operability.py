"""What operators rely on: reflection, health probes, metrics, request ids and traces in logs."""

from __future__ import annotations

import json
import subprocess
import urllib.request

import pytest

from ragplane.cli.stack import Stack
from ragplane.v1 import query_pb2, query_pb2_grpc
from tests.conftest import REPO

SERVICES = {
    "query": "ragplane.v1.QueryService",
    "embedding": "ragplane.v1.EmbeddingService",
    "retrieval": "ragplane.v1.RetrievalService",
    "generation": "ragplane.v1.GenerationService",
}


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_grpcurl_lists_the_service_and_grpc_health_probe_says_serving(
    stack: Stack, service: str
) -> None:
    port = getattr(stack.ports, service)
    listed = subprocess.run(
        [str(REPO / ".bin" / "grpcurl"), "-plaintext", f"127.0.0.1:{port}", "list"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.split()
    assert SERVICES[service] in listed
    assert "grpc.health.v1.Health" in listed
    probe = subprocess.run(
        [str(REPO / ".bin" / "grpc_health_probe"), f"-addr=127.0.0.1:{port}"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert probe.returncode == 0, probe.stderr
    assert "SERVING" in probe.stdout + probe.stderr


def _log_lines(stack: Stack, service: str, request_id: str) -> list[dict[str, object]]:
    lines = []
    for line in stack.log_file(service).read_text().splitlines():
        if request_id in line and line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def test_one_request_id_and_trace_id_follow_a_query_through_every_service(
    stack: Stack, query: query_pb2_grpc.QueryServiceStub, docs_tenant: str
) -> None:
    response = query.Query(
        query_pb2.QueryRequest(tenant=docs_tenant, query="What is venv?", max_output_tokens=8),
        timeout=120,
    )
    trace_ids = set()
    for service in SERVICES:
        lines = _log_lines(stack, service, response.request_id)
        assert lines, f"no log line of {service} carries request id {response.request_id}"
        finished = [line for line in lines if line["event"] == "rpc finished"]
        assert finished
        assert all(line["code"] == "OK" for line in finished)
        trace_ids |= {line["trace_id"] for line in lines}
    assert len(trace_ids) == 1


def test_metrics_count_calls_by_method_and_status_code(
    stack: Stack, query: query_pb2_grpc.QueryServiceStub
) -> None:
    with pytest.raises(Exception):  # noqa: B017, PT011 - the status itself is tested elsewhere
        query.Query(query_pb2.QueryRequest(tenant="docs", query=""), timeout=10)
    url = f"http://127.0.0.1:{stack.ports.query_metrics}/metrics"
    with urllib.request.urlopen(url, timeout=10) as reply:
        metrics = reply.read().decode()
    assert (
        'ragplane_rpc_requests_total{code="INVALID_ARGUMENT",'
        'method="/ragplane.v1.QueryService/Query",service="query"}'
    ) in metrics
    assert "ragplane_rpc_duration_seconds_bucket" in metrics
