"""Circuit breakers shared by the replicas through a real redis-server, local while it is down,
and reported by the Providers RPC without ever turning the service's health NOT_SERVING."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ragplane.cli.stack import Stack
from ragplane.v1 import generation_pb2, generation_pb2_grpc
from tests.integration.generation_chain import (
    ask,
    breaker_state,
    chain_env,
    dead_port,
    provider,
)
from tests.integration.polling import wait_until
from tests.integration.redis_server import RedisServer, redis_server
from tests.integration.services import RunningService, service_process

SKIPPED = generation_pb2.ATTEMPT_OUTCOME_SKIPPED
FAILED = generation_pb2.ATTEMPT_OUTCOME_FAILED


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    with redis_server(tmp_path) as server:
        yield server


def providers(service: RunningService) -> dict[str, generation_pb2.ProviderStatus]:
    with grpc.insecure_channel(service.target) as channel:
        stub = generation_pb2_grpc.GenerationServiceStub(channel)
        reply = stub.Providers(generation_pb2.ProvidersRequest(), timeout=10)
    return {status.name: status for status in reply.providers}


def health(service: RunningService) -> health_pb2.HealthCheckResponse.ServingStatus.ValueType:
    with grpc.insecure_channel(service.target) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=10
        )
    return reply.status


def shared_env(stack: Stack, redis_url: str) -> dict[str, str]:
    """A dead primary (its calls are refused at once) before a live secondary."""
    return chain_env(
        provider("primary", dead_port()),
        provider("secondary", stack.ports.llm),
        retry_max_attempts="1",
        breaker_fail_max="2",
        breaker_reset_timeout_s="120",
        redis_url=redis_url,
        redis_retry_after_s="0.5",
    )


def test_two_replicas_see_the_same_open_breaker(
    stack: Stack, own_redis: RedisServer, tmp_path: Path
) -> None:
    env = shared_env(stack, own_redis.url())
    with ExitStack() as replicas:
        first = replicas.enter_context(service_process("generation", env, tmp_path))
        second = replicas.enter_context(service_process("generation", env, tmp_path))
        for _ in range(2):  # fail_max failures, all on the first replica
            assert ask(first).attempts[0].outcome == FAILED
        assert breaker_state(first, "primary") == 2

        # The second replica never called the primary, yet learns within a sync interval.
        wait_until(
            lambda: breaker_state(second, "primary") == 2,
            10,
            "the second replica to see the breaker the first one opened",
        )
        response = ask(second)
        assert response.provider == "secondary"
        skipped = response.attempts[0]
        assert (skipped.provider, skipped.outcome, skipped.calls, skipped.reason) == (
            "primary",
            SKIPPED,
            0,
            "circuit breaker open",
        )
        status = providers(second)["primary"]
        assert (status.breaker_state, status.failure_count, status.breaker_storage) == (
            generation_pb2.BREAKER_STATE_OPEN,
            2,
            generation_pb2.BREAKER_STORAGE_SHARED,
        )

        # Redis gone: the replica's own memory starts from the open breaker it last saw.
        own_redis.stop()
        assert ask(second).attempts[0].outcome == SKIPPED
        local = generation_pb2.BREAKER_STORAGE_LOCAL
        wait_until(
            lambda: providers(second)["primary"].breaker_storage == local,
            10,
            "the replica to notice Redis is gone",
        )
        assert ask(second).attempts[0].outcome == SKIPPED


def test_redis_down_keeps_answering_with_local_breakers_and_shares_again_on_its_return(
    stack: Stack, own_redis: RedisServer, tmp_path: Path
) -> None:
    with service_process("generation", shared_env(stack, own_redis.url()), tmp_path) as service:
        assert providers(service)["primary"].breaker_storage == (
            generation_pb2.BREAKER_STORAGE_SHARED
        )
        own_redis.stop()

        # Still answers; the failures are counted in this replica's memory and open its breaker.
        for _ in range(2):
            response = ask(service)
            assert (response.provider, response.attempts[0].outcome) == ("secondary", FAILED)
        local = generation_pb2.BREAKER_STORAGE_LOCAL
        wait_until(
            lambda: providers(service)["primary"].breaker_storage == local,
            10,
            "the replica to notice Redis is gone",
        )
        status = providers(service)["primary"]
        assert (status.breaker_storage, status.breaker_state) == (
            generation_pb2.BREAKER_STORAGE_LOCAL,
            generation_pb2.BREAKER_STATE_OPEN,
        )
        assert ask(service).attempts[0].outcome == SKIPPED

        # A Redis back (empty: it kept nothing) is used again once redis_retry_after_s passed.
        own_redis.start()
        shared = generation_pb2.BREAKER_STORAGE_SHARED
        wait_until(
            lambda: providers(service)["primary"].breaker_storage == shared,
            30,
            "the breaker state to be shared through Redis again",
        )
        response = ask(service)
        assert (response.provider, response.attempts[0].outcome) == ("secondary", FAILED)
        status = providers(service)["primary"]
        assert (status.breaker_storage, status.failure_count) == (
            generation_pb2.BREAKER_STORAGE_SHARED,
            1,
        )


def test_open_breakers_are_reported_and_never_make_the_service_not_serving(
    stack: Stack, tmp_path: Path
) -> None:
    env = chain_env(
        provider("a", dead_port(), tier="small"),
        provider("b", dead_port(), tier="large", model="other-model"),
        retry_max_attempts="1",
        breaker_fail_max="1",
    )
    with service_process("generation", env, tmp_path) as service:
        assert ask(service).degradations  # both fail: an extractive answer
        reported = providers(service)
        assert health(service) == health_pb2.HealthCheckResponse.SERVING
    assert list(reported) == ["a", "b"]
    a, b = reported["a"], reported["b"]
    assert (a.tier, b.tier, b.model) == (
        generation_pb2.MODEL_TIER_SMALL,
        generation_pb2.MODEL_TIER_LARGE,
        "other-model",
    )
    for status in (a, b):
        assert status.breaker_state == generation_pb2.BREAKER_STATE_OPEN
        assert status.failure_count == 1
        # No GENERATION_REDIS_URL: each replica keeps its own.
        assert status.breaker_storage == generation_pb2.BREAKER_STORAGE_LOCAL
