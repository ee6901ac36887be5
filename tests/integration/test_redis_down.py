"""Redis stopped in the middle of a run: queries are still answered and flagged, the gauge
drops, limits follow their policy, and everything comes back when Redis does.

The test runs its own redis-server (tests/integration/redis_server.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from ragplane.cli.stack import Stack
from ragplane.v1 import common_pb2, query_pb2, query_pb2_grpc
from tests.conftest import DATA
from tests.integration.corpus import ingest_folder
from tests.integration.guarded import ask, details_of, query_env, status_of
from tests.integration.polling import wait_until
from tests.integration.redis_server import RedisServer, redis_server
from tests.integration.services import service_process

TENANT = "redis-down"
QUESTION = "How often is the Aurora 7 impeller inspected?"
RETRY_AFTER_S = 1.0


def cache_degradations(response: query_pb2.QueryResponse) -> list[common_pb2.Degradation]:
    return [d for d in response.degradations if d.stage == common_pb2.STAGE_CACHE]


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    with redis_server(tmp_path) as redis:
        yield redis


def test_queries_survive_redis_going_away_and_say_so(
    stack: Stack, own_redis: RedisServer, tmp_path: Path
) -> None:
    settings = {"redis_url": own_redis.url(), "redis_retry_after_s": str(RETRY_AFTER_S)}
    settings["rate_per_s"], settings["burst"] = "100", "100"
    open_env = query_env(stack, redis_db=0, **settings)
    closed_env = query_env(stack, redis_db=0, limits_when_redis_down="closed", **settings)
    with (
        service_process("query", open_env, tmp_path) as fail_open,
        service_process("query", closed_env, tmp_path) as fail_closed,
        grpc.insecure_channel(fail_open.target) as open_channel,
        grpc.insecure_channel(fail_closed.target) as closed_channel,
    ):
        open_stub = query_pb2_grpc.QueryServiceStub(open_channel)
        closed_stub = query_pb2_grpc.QueryServiceStub(closed_channel)
        ingest_folder(open_stub, TENANT, DATA / "tenant-a")
        ask(open_stub, TENANT, QUESTION)
        assert ask(open_stub, TENANT, QUESTION).cache.hit

        own_redis.stop()  # SIGTERM: the redis-server process ends
        during = ask(open_stub, TENANT, QUESTION)
        assert during.answer
        assert during.citations
        assert not during.cache.hit
        cache_flags = cache_degradations(during)
        assert cache_flags, during.degradations
        assert any("rate limits not enforced" in d.reason for d in cache_flags)
        assert fail_open.metric("ragplane_query_redis_available") == 0.0
        with pytest.raises(grpc.RpcError) as refused:
            ask(closed_stub, TENANT, QUESTION)
        assert status_of(refused.value) == grpc.StatusCode.UNAVAILABLE
        assert "Redis" in details_of(refused.value)

        own_redis.start()
        # The service tries Redis again RETRY_AFTER_S after it gave up on it: asked until then,
        # it keeps saying the caches are off.
        wait_until(
            lambda: not cache_degradations(ask(open_stub, TENANT, QUESTION)),
            30 + RETRY_AFTER_S,
            "an answer without a cache degradation",
            interval_s=RETRY_AFTER_S / 4,
        )
        assert fail_open.metric("ragplane_query_redis_available") == 1.0
        # The restarted Redis kept nothing; the answer is cached again from here on.
        assert ask(open_stub, TENANT, QUESTION).cache.hit
