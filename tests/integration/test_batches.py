"""Batch mode against the real stack: durable across a SIGKILL, yielding, paused, cancelled.

Each test runs its own query service (batch settings in tests/integration/batches.py) in
front of a generation service that prices the stack's LLM servers.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from ragplane.cli.documents import document_for, find_files
from ragplane.cli.stack import Stack
from ragplane.v1 import query_pb2, query_pb2_grpc
from tests.conftest import DATA
from tests.integration.batches import (
    MAX_QUESTION_CHARS,
    PRICE_FACTOR,
    RETRIES,
    TENANT,
    TOO_LONG,
    batch,
    batch_query_env,
    batch_service,
    finished,
    interactive_p50_ms,
    questions,
    queue_length,
    start_a_new_budget_day,
    submit,
    wait_for_batch,
)
from tests.integration.generation_chain import chain_env, provider
from tests.integration.guarded import ask, details_of, status_of
from tests.integration.polling import wait_until
from tests.integration.services import RunningService, service_process

REDIS_DB = 6
# The acceptance's 200 (about 3 minutes on 2 shared cores); BATCH_SIZE=40 for a quick run.
BATCH_SIZE = int(os.environ.get("BATCH_SIZE", "200"))
INTERACTIVE_QUERIES = 9
POLICIES = {
    "slow": {"rate_per_s": 0.5, "burst": 1},
    "capped": {"daily_hard_budget_usd": 1e-9},
}


@pytest.fixture(scope="module")
def priced_generation(
    stack: Stack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningService]:
    env = chain_env(
        provider(
            "priced",
            stack.ports.llm,
            input_price_per_mtok_usd=1.0,
            output_price_per_mtok_usd=2.0,
        ),
        max_question_chars=str(MAX_QUESTION_CHARS),
    )
    with service_process("generation", env, tmp_path_factory.mktemp("batch-generation")) as g:
        yield g


@pytest.fixture
def env(stack: Stack, priced_generation: RunningService) -> dict[str, str]:
    return batch_query_env(stack, priced_generation.target, REDIS_DB, **POLICIES)


def test_a_batch_survives_a_sigkill_answered_once_while_interactive_queries_keep_pace(
    env: dict[str, str], tmp_path: Path
) -> None:
    with batch_service(env, tmp_path, TENANT) as (first, stub):
        idle_p50 = interactive_p50_ms(stub, TENANT, INTERACTIVE_QUERIES)
        batch_id = submit(stub, TENANT, questions(BATCH_SIZE))
        wait_for_batch(stub, TENANT, batch_id, lambda b: b.progress.done > 0, 120, "a result")
        busy_p50 = interactive_p50_ms(stub, TENANT, INTERACTIVE_QUERIES)
        halfway = wait_for_batch(
            stub, TENANT, batch_id, lambda b: b.progress.done >= BATCH_SIZE // 2, 900, "half"
        )
        first.process.kill()
        first.process.wait(timeout=30)
    killed_at = time.monotonic()
    with batch_service(env, tmp_path) as (_, stub):
        done = wait_for_batch(stub, TENANT, batch_id, finished, 900, "the whole batch")
        finished_s = time.monotonic() - killed_at
        # Idle again, on the restarted service: the idle figure is the mean of two medians.
        idle_p50 = (idle_p50 + interactive_p50_ms(stub, TENANT, INTERACTIVE_QUERIES)) / 2
        print(
            f"\nbatch of {BATCH_SIZE}: killed at {halfway.progress.done} done "
            f"({halfway.progress.running} running), finished "
            f"{finished_s:.1f} s after the kill",
            file=sys.stderr,
        )
        print(
            f"interactive p50: idle {idle_p50:.0f} ms (before and after the batch), during "
            f"the batch {busy_p50:.0f} ms (ratio {busy_p50 / idle_p50:.2f})",
            file=sys.stderr,
        )
        results = batch(stub, TENANT, batch_id, results=True).results
    assert done.state == query_pb2.BATCH_STATE_DONE
    assert (done.progress.done, done.progress.failed) == (BATCH_SIZE, 0)
    assert [r.index for r in results] == list(range(BATCH_SIZE)), "lost or duplicated"
    for result in results:
        assert result.answer
        assert result.cost_usd == pytest.approx(result.interactive_cost_usd * PRICE_FACTOR)
    total = sum(r.cost_usd for r in results)
    assert total > 0
    assert done.cost_usd == pytest.approx(total)
    assert done.saved_usd == pytest.approx(sum(r.interactive_cost_usd for r in results) - total)


def test_a_question_failing_every_attempt_is_reported_and_the_rest_answered(
    env: dict[str, str], tmp_path: Path
) -> None:
    asked = questions(3)
    asked.insert(1, query_pb2.QueryRequest(query=TOO_LONG, max_output_tokens=8))
    with batch_service(env, tmp_path, TENANT) as (service, stub):
        batch_id = submit(stub, TENANT, asked)
        done = wait_for_batch(stub, TENANT, batch_id, finished, 300, "the batch")
        results = batch(stub, TENANT, batch_id, results=True).results
        retried = service.metric("ragplane_query_batch_retries_total")
    assert (done.progress.done, done.progress.failed) == (3, 1)
    failed = results[1]
    assert failed.status == query_pb2.BATCH_ITEM_STATUS_FAILED
    assert failed.attempts == RETRIES + 1
    assert "question" in failed.error, failed.error
    assert retried == RETRIES
    assert [r.status for r in results[::2]] == [query_pb2.BATCH_ITEM_STATUS_DONE] * 2


def test_a_batch_over_its_rate_limit_is_paused_then_resumed(
    env: dict[str, str], tmp_path: Path
) -> None:
    with batch_service(env, tmp_path, "slow") as (_, stub):
        batch_id = submit(stub, "slow", questions(4))
        paused = wait_for_batch(
            stub,
            "slow",
            batch_id,
            lambda b: b.state == query_pb2.BATCH_STATE_PAUSED,
            120,
            "the batch to pause",
        )
        done = wait_for_batch(stub, "slow", batch_id, finished, 300, "the batch")
    assert "rate limit" in paused.paused_reason
    assert done.state == query_pb2.BATCH_STATE_DONE
    assert (done.progress.done, done.progress.failed) == (4, 0)


def test_a_batch_over_its_budget_is_paused_until_the_budget_allows(
    env: dict[str, str], tmp_path: Path
) -> None:
    def paused_or_finished(b: query_pb2.GetBatchResponse) -> bool:
        return finished(b) or b.state == query_pb2.BATCH_STATE_PAUSED

    with batch_service(env, tmp_path, "capped") as (_, stub):
        batch_id = submit(stub, "capped", questions(3))
        reasons = []
        # One question spends the whole budget: each new budget day lets one more through.
        while not finished(
            status := wait_for_batch(
                stub, "capped", batch_id, paused_or_finished, 120, "a pause or the end"
            )
        ):
            reasons.append(status.paused_reason)
            start_a_new_budget_day(env["QUERY_REDIS_URL"], "capped")
    assert reasons, "never paused"
    assert all("budget" in reason for reason in reasons), reasons
    assert (status.progress.done, status.progress.failed) == (3, 0)


def test_cancel_stops_the_rest_within_seconds_and_keeps_the_answers(
    env: dict[str, str], tmp_path: Path
) -> None:
    with batch_service(env, tmp_path, TENANT) as (service, stub):
        batch_id = submit(stub, TENANT, questions(30))
        wait_for_batch(stub, TENANT, batch_id, lambda b: b.progress.done >= 2, 300, "answers")
        stub.CancelBatch(query_pb2.CancelBatchRequest(tenant=TENANT, batch_id=batch_id))
        cancelled_at = time.monotonic()
        # "A few seconds": nothing is being answered any more, and the queue is empty.
        wait_until(
            lambda: (
                service.metric("ragplane_query_batch_running") == 0
                and queue_length(env["QUERY_REDIS_URL"]) == 0
            ),
            5,
            "the worker to stop the cancelled batch",
        )
        print(f"\ncancel took effect in {time.monotonic() - cancelled_at:.2f} s", file=sys.stderr)
        status = batch(stub, TENANT, batch_id, results=True)
    progress = status.progress
    assert status.state == query_pb2.BATCH_STATE_CANCELLED
    assert progress.cancelled > 0
    assert progress.done + progress.failed + progress.cancelled == 30
    assert len(status.results) == progress.done + progress.failed
    assert all(r.answer for r in status.results)


def test_a_batch_with_a_bad_question_is_refused_whole_naming_it(
    query: query_pb2_grpc.QueryServiceStub,
) -> None:
    asked = [*questions(2), query_pb2.QueryRequest(query="   ")]
    with pytest.raises(grpc.RpcError) as refused:
        submit(query, TENANT, asked)
    assert status_of(refused.value) == grpc.StatusCode.INVALID_ARGUMENT
    assert details_of(refused.value).startswith("questions[2].query: "), details_of(refused.value)


def test_a_batch_of_documents_is_ingested_and_searchable(
    env: dict[str, str], tmp_path: Path
) -> None:
    folder = DATA / "tenant-b"
    documents = [document_for(path, folder) for path in find_files(folder)]
    with batch_service(env, tmp_path) as (_, stub):
        batch_id = stub.SubmitBatch(
            query_pb2.SubmitBatchRequest(tenant="bulk", documents=documents), timeout=30
        ).batch_id
        done = wait_for_batch(stub, "bulk", batch_id, finished, 300, "the documents")
        results = batch(stub, "bulk", batch_id, results=True).results
        answer = ask(stub, "bulk", "How long is the Zephyr kiln held at peak temperature?")
    assert (done.progress.done, done.progress.failed) == (len(documents), 0)
    assert [r.document_id for r in results] == [d.document_id for d in documents]
    assert all(r.chunks > 0 for r in results)
    assert answer.citations[0].document_id == documents[0].document_id
