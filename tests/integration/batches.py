"""Helpers of the batch mode tests: a query service with batch settings, and its batches.

The query service runs beside the session stack (service_process), in front of a generation
service that prices the stack's free LLM servers, so that batch answers cost money and the
batch price shows. Its Redis database holds the queue, so a restarted service finds it.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import grpc
import redis

from ragplane.cli.stack import Stack
from ragplane.query.batches.queue import STREAM
from ragplane.v1 import query_pb2, query_pb2_grpc
from tests.conftest import DATA
from tests.integration.corpus import ingest_folder
from tests.integration.guarded import ask, query_env
from tests.integration.polling import wait_until
from tests.integration.services import RunningService, service_process

TENANT = "batches"
# A pump question per item, each its own text (no answer cache in these tests anyway).
QUESTION = "How often is the Aurora 7 impeller inspected? (item {index})"
PRICE_FACTOR = 0.5
RETRIES = 1
# Longer than the generation service beside the stack takes (GENERATION_MAX_QUESTION_CHARS):
# refused on every attempt, whichever provider would have answered it.
MAX_QUESTION_CHARS = 120
TOO_LONG = "Explain in detail " + "why the Aurora 7 impeller is inspected so often, " * 4


def batch_query_env(
    stack: Stack, generation_target: str, redis_db: int, **policies: object
) -> dict[str, str]:
    env = query_env(
        stack,
        redis_db=redis_db,
        answer_cache_enabled="false",
        tenant_policies=json.dumps(policies),
        batch_concurrency="2",
        batch_yield_in_flight="1",
        batch_retries=str(RETRIES),
        batch_retry_delay_s="0.2",
        batch_price_factor=str(PRICE_FACTOR),
        # A restarted service takes over its predecessor's questions after this long.
        batch_claim_idle_s="3",
        batch_poll_s="0.2",
        batch_pause_max_s="1",
    )
    env["QUERY_GENERATION_TARGET"] = generation_target
    return env


def questions(count: int) -> list[query_pb2.QueryRequest]:
    return [
        query_pb2.QueryRequest(query=QUESTION.format(index=index), max_output_tokens=8)
        for index in range(count)
    ]


def submit(
    stub: query_pb2_grpc.QueryServiceStub, tenant: str, asked: Sequence[query_pb2.QueryRequest]
) -> str:
    response = stub.SubmitBatch(
        query_pb2.SubmitBatchRequest(tenant=tenant, questions=asked), timeout=30
    )
    assert response.items == len(asked)
    return response.batch_id


def batch(
    stub: query_pb2_grpc.QueryServiceStub, tenant: str, batch_id: str, results: bool = False
) -> query_pb2.GetBatchResponse:
    request = query_pb2.GetBatchRequest(tenant=tenant, batch_id=batch_id, include_results=results)
    response: query_pb2.GetBatchResponse = stub.GetBatch(request, timeout=30)
    return response


def wait_for_batch(
    stub: query_pb2_grpc.QueryServiceStub,
    tenant: str,
    batch_id: str,
    condition: Callable[[query_pb2.GetBatchResponse], bool],
    timeout_s: float,
    what: str,
) -> query_pb2.GetBatchResponse:
    """Poll GetBatch until ``condition`` holds; the response that satisfied it."""
    seen: list[query_pb2.GetBatchResponse] = []

    def holds() -> bool:
        seen.append(batch(stub, tenant, batch_id))
        return condition(seen[-1])

    wait_until(holds, timeout_s, what, interval_s=0.2)
    return seen[-1]


def finished(response: query_pb2.GetBatchResponse) -> bool:
    return response.state in (query_pb2.BATCH_STATE_DONE, query_pb2.BATCH_STATE_CANCELLED)


def interactive_p50_ms(stub: query_pb2_grpc.QueryServiceStub, tenant: str, count: int) -> float:
    """Median latency of ``count`` interactive queries, one after the other, after one to
    warm up (the first query of a fresh service pays for its connections)."""
    ask(stub, tenant, "What does the Aurora 7 maintenance guide say?")
    latencies = []
    for index in range(count):
        started = time.perf_counter()
        ask(stub, tenant, f"What does the Aurora 7 maintenance guide say? ({index})")
        latencies.append((time.perf_counter() - started) * 1000)
    return statistics.median(latencies)


def queue_length(redis_url: str) -> int:
    """Entries still in the batch queue (answered, failed and cancelled ones are deleted)."""
    with redis.Redis.from_url(redis_url) as client:
        return int(client.xlen(STREAM))


def start_a_new_budget_day(redis_url: str, tenant: str) -> None:
    """What midnight UTC does to a tenant's spend: it starts again from nothing."""
    with redis.Redis.from_url(redis_url) as client:
        keys = client.keys(f"ragplane:spend:{tenant}:*")
        if keys:
            client.delete(*keys)


@contextmanager
def batch_service(
    env: dict[str, str], log_dir: Path, tenant: str | None = None
) -> Iterator[tuple[RunningService, query_pb2_grpc.QueryServiceStub]]:
    """A query service with batch settings, and a stub; ``tenant`` gets the test documents."""
    with (
        service_process("query", env, log_dir) as service,
        grpc.insecure_channel(service.target) as channel,
    ):
        stub = query_pb2_grpc.QueryServiceStub(channel)
        if tenant is not None:
            ingest_folder(stub, tenant, DATA / "tenant-a")
        yield service, stub
