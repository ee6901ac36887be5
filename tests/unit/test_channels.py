"""Channels between services: calls spread over replicas, idempotent reads retried on
UNAVAILABLE within the call's deadline, writes never retried."""

from __future__ import annotations

import json
import time

import grpc
import pytest
from pydantic import ValidationError

from ragplane.runtime.channels import IDEMPOTENT_METHODS, ChannelSettings, open_channel
from ragplane.v1 import embedding_pb2, embedding_pb2_grpc, retrieval_pb2, retrieval_pb2_grpc
from tests.unit.replica_doubles import UnavailableOnDemand, replica_double

# Short backoffs keep the retries quick; the policy under test is the same.
FAST_RETRIES = ChannelSettings(retry_initial_backoff_s=0.01, retry_max_backoff_s=0.02)


def test_only_the_reads_carry_a_retry_policy() -> None:
    config = json.loads(ChannelSettings().service_config())
    (method_config,) = config["methodConfig"]
    retried = {(name["service"], name["method"]) for name in method_config["name"]}
    assert retried == {
        (service, method) for service, methods in IDEMPOTENT_METHODS.items() for method in methods
    }
    writes = {"Upsert", "Delete", "Generate", "GenerateStream", "CreateTenant", "DeleteTenant"}
    assert not writes & {method for _, method in retried}
    assert method_config["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE"]
    assert config["loadBalancingConfig"] == [{"round_robin": {}}]


def test_one_attempt_means_no_retry_policy() -> None:
    config = json.loads(ChannelSettings(retry_max_attempts=1).service_config())
    assert "methodConfig" not in config


@pytest.mark.parametrize(
    "values",
    [
        {"retry_max_attempts": 6},
        {"retry_initial_backoff_s": 1.0, "retry_max_backoff_s": 0.5},
        {"load_balancing": "random"},
        {"keepalive_time_s": 1.0},
    ],
)
def test_out_of_range_settings_are_refused(values: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ChannelSettings.model_validate(values)


async def test_a_read_is_retried_on_unavailable() -> None:
    async with (
        replica_double(UnavailableOnDemand(failures=2)) as replica,
        open_channel(replica.address, settings=FAST_RETRIES) as channel,
    ):
        stub = retrieval_pb2_grpc.RetrievalServiceStub(channel)
        await stub.Search(retrieval_pb2.SearchRequest(), timeout=5)
    assert replica.behaviour.attempts["Search"] == 3


async def test_a_write_is_not_retried() -> None:
    async with (
        replica_double(UnavailableOnDemand(failures=1)) as replica,
        open_channel(replica.address, settings=FAST_RETRIES) as channel,
    ):
        stub = retrieval_pb2_grpc.RetrievalServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Upsert(retrieval_pb2.UpsertRequest(), timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert replica.behaviour.attempts["Upsert"] == 1


async def test_retries_end_at_the_deadline() -> None:
    # Five attempts of 0.4 s each would take 2 s; the call's 1 s deadline ends them.
    settings = ChannelSettings(
        retry_max_attempts=5, retry_initial_backoff_s=0.01, retry_max_backoff_s=0.02
    )
    async with (
        replica_double(UnavailableOnDemand(failures=5, delay_s=0.4)) as replica,
        open_channel(replica.address, settings=settings) as channel,
    ):
        stub = embedding_pb2_grpc.EmbeddingServiceStub(channel)
        started = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Embed(embedding_pb2.EmbedRequest(), timeout=1.0)
        elapsed = time.monotonic() - started
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert replica.behaviour.attempts["Embed"] <= 3
    assert elapsed < 1.5


async def test_calls_are_spread_over_every_replica() -> None:
    async with (
        replica_double(UnavailableOnDemand()) as first,
        replica_double(UnavailableOnDemand()) as second,
        open_channel(f"ipv4:{first.address},{second.address}") as channel,
    ):
        stub = embedding_pb2_grpc.EmbeddingServiceStub(channel)
        for _ in range(40):
            await stub.Embed(embedding_pb2.EmbedRequest(), timeout=5)
    served = [first.behaviour.attempts["Embed"], second.behaviour.attempts["Embed"]]
    assert sum(served) == 40
    assert min(served) >= 12, served


async def test_a_replica_reporting_not_serving_gets_no_calls() -> None:
    async with (
        replica_double(UnavailableOnDemand()) as serving,
        replica_double(UnavailableOnDemand()) as draining,
    ):
        await draining.set_serving(False)
        async with open_channel(f"ipv4:{serving.address},{draining.address}") as channel:
            stub = embedding_pb2_grpc.EmbeddingServiceStub(channel)
            for _ in range(20):
                await stub.Embed(embedding_pb2.EmbedRequest(), timeout=5)
    assert serving.behaviour.attempts["Embed"] == 20
    assert draining.behaviour.attempts["Embed"] == 0
