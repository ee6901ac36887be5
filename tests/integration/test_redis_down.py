"""Redis stopped in the middle of a run: queries are still answered and flagged, the gauge
drops, limits follow their policy, and everything comes back when Redis does.

The test runs its own redis-server: the session stack's Redis is shared by other tests.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from ragplane.cli.stack import Stack, free_ports, redis_pong
from ragplane.v1 import common_pb2, query_pb2_grpc
from tests.conftest import DATA
from tests.integration.conftest import ingest_folder
from tests.integration.guarded import ask, details_of, query_env, status_of
from tests.integration.services import service_process

TENANT = "redis-down"
QUESTION = "How often is the Aurora 7 impeller inspected?"
RETRY_AFTER_S = 1.0


class OwnRedis:
    def __init__(self, folder: Path) -> None:
        self.port = free_ports(1)[0]
        self._folder = folder
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        argv = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port)]
        argv += ["--dir", str(self._folder), "--save", "", "--appendonly", "no"]
        self._process = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
        _wait_for(redis_pong(self.port), "redis-server to answer PING")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(timeout=30)


def _wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout_s} s for {what}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def own_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnRedis]:
    redis = OwnRedis(tmp_path_factory.mktemp("own-redis"))
    redis.start()
    try:
        yield redis
    finally:
        redis.stop()


def test_queries_survive_redis_going_away_and_say_so(
    stack: Stack, own_redis: OwnRedis, tmp_path: Path
) -> None:
    settings = {"redis_url": own_redis.url, "redis_retry_after_s": str(RETRY_AFTER_S)}
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

        own_redis.stop()
        during = ask(open_stub, TENANT, QUESTION)
        assert during.answer
        assert during.citations
        assert not during.cache.hit
        cache_flags = [d for d in during.degradations if d.stage == common_pb2.STAGE_CACHE]
        assert cache_flags, during.degradations
        assert any("rate limits not enforced" in d.reason for d in cache_flags)
        assert fail_open.metric("ragplane_query_redis_available") == 0.0
        with pytest.raises(grpc.RpcError) as refused:
            ask(closed_stub, TENANT, QUESTION)
        assert status_of(refused.value) == grpc.StatusCode.UNAVAILABLE
        assert "Redis" in details_of(refused.value)

        own_redis.start()
        time.sleep(RETRY_AFTER_S + 0.5)
        after = ask(open_stub, TENANT, QUESTION)
        assert not [d for d in after.degradations if d.stage == common_pb2.STAGE_CACHE]
        assert fail_open.metric("ragplane_query_redis_available") == 1.0
        # The restarted Redis kept nothing; the answer is cached again from here on.
        assert ask(open_stub, TENANT, QUESTION).cache.hit
