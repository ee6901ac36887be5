"""The batch queue and result store against a real redis-server, without the gRPC service.

A worker that dies holding a question leaves it pending; another worker takes it over once it
has been idle long enough. A question answered twice keeps one result, counted once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from ragplane.query.batches.model import BatchState, ItemResult, ItemStatus
from ragplane.query.batches.queue import BatchQueue, Taken
from ragplane.query.batches.store import BatchStore
from ragplane.query.domain import MetadataFilter, Question, ValueBounds
from ragplane.runtime.redis_client import SharedRedis
from ragplane.runtime.settings import RedisSettings
from tests.integration.redis_server import RedisServer, redis_server

QUESTIONS = [
    Question("acme", "How often is the impeller inspected?", 5),
    Question(
        "acme",
        "Which pump fails first?",
        3,
        alpha=0.5,
        filters=(MetadataFilter("year", bounds=ValueBounds(greater_or_equal="2020")),),
    ),
]


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with redis_server(tmp_path_factory.mktemp("batch-redis")) as server:
        yield server


def _shared(redis: RedisServer) -> SharedRedis:
    return SharedRedis.connect("test-batches", RedisSettings(redis_url=redis.url()))


def _answered(index: int, cost_usd: float) -> ItemResult:
    return ItemResult(
        index,
        ItemStatus.DONE,
        QUESTIONS[index].text,
        "answer",
        cost_usd=cost_usd / 2,
        interactive_cost_usd=cost_usd,
    )


async def _take_over(redis: RedisServer) -> None:
    shared = _shared(redis)
    store = BatchStore(shared, ttl_s=3600)
    dead = BatchQueue(shared, "worker-that-dies", claim_idle_s=0.2)
    await dead.ensure_group()
    batch_id = await store.submit("acme", QUESTIONS)
    first = await dead.take()
    assert first is not None
    assert first.item.batch_id == batch_id
    assert first.item.work == QUESTIONS[0]
    assert await store.record(batch_id, _answered(0, 0.002))
    # The first worker dies here: answered, not acknowledged. The second takes its entry
    # over once it has been idle 0.2 s (polled, not slept), then the second question.
    heir = BatchQueue(shared, "heir", claim_idle_s=0.2)
    taken: list[Taken] = []
    while len(taken) < 2:
        entry = await heir.take()
        if entry is not None:
            taken.append(entry)
    taken.sort(key=lambda t: t.item.index)
    assert [t.item.index for t in taken] == [0, 1]
    assert taken[1].item.work == QUESTIONS[1]
    assert await store.answered(taken[0].item)
    assert not await store.record(batch_id, _answered(0, 0.002)), "written twice"
    assert await store.record(batch_id, _answered(1, 0.004))
    for entry in taken:
        await heir.done(entry)
    assert await heir.take() is None
    status = await store.status(batch_id, with_results=True)
    assert status is not None
    assert status.state is BatchState.DONE
    assert (status.progress.done, status.progress.failed, status.progress.queued) == (2, 0, 0)
    assert [r.index for r in status.results] == [0, 1]
    assert status.interactive_cost_usd == pytest.approx(0.006)
    assert status.saved_usd == pytest.approx(0.003)
    await shared.close()


def test_a_question_held_by_a_dead_worker_is_taken_over_and_answered_once(
    redis: RedisServer,
) -> None:
    asyncio.run(_take_over(redis))


async def _cancel(redis: RedisServer) -> None:
    shared = _shared(redis)
    store = BatchStore(shared, ttl_s=3600)
    batch_id = await store.submit("acme", QUESTIONS)
    assert not await store.cancelled(batch_id)
    await store.record(batch_id, _answered(0, 0.0))
    await store.cancel(batch_id)
    assert await store.cancelled(batch_id)
    status = await store.status(batch_id, with_results=False)
    assert status is not None
    assert status.state is BatchState.CANCELLED
    assert (status.progress.done, status.progress.cancelled) == (1, 1)
    await shared.close()


def test_a_cancelled_batch_keeps_its_results_and_counts_the_rest_cancelled(
    redis: RedisServer,
) -> None:
    asyncio.run(_cancel(redis))
