"""Dynamic batching, backpressure and the embedding cache, against the real model and Redis.

Each test runs its own embedding service with the settings it needs, and observes the model
through the service's metrics (ragplane_embedding_texts_embedded_total counts texts run through
the model, ragplane_embedding_batch_size_count counts model invocations), never through timing.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest

from ragplane.cli.stack import Stack
from ragplane.runtime.errors import retry_after_s
from ragplane.v1 import embedding_pb2, embedding_pb2_grpc
from tests.integration.polling import wait_until
from tests.integration.redis_server import redis_server
from tests.integration.services import RunningService, metric, service_process

NO_CACHE = {"EMBEDDING_REDIS_URL": ""}
INVOCATIONS = "ragplane_embedding_batch_size_count"
EMBEDDED = "ragplane_embedding_texts_embedded_total"


async def _embed_each(target: str, texts: list[str], deadline_s: float = 60) -> list[object]:
    """One concurrent Embed call per text; each result is a response or the RpcError."""
    async with grpc.aio.insecure_channel(target) as channel:
        stub = embedding_pb2_grpc.EmbeddingServiceStub(channel)
        calls = [
            stub.Embed(embedding_pb2.EmbedRequest(texts=[t]), timeout=deadline_s) for t in texts
        ]
        return list(await asyncio.gather(*calls, return_exceptions=True))


def _tolerance(target: str) -> float:
    """How far batched and unbatched vectors may differ on the device the service reports:
    float32 on a CPU; float16 on a GPU, where padding a text changes its rounding."""
    with grpc.insecure_channel(target) as channel:
        info = embedding_pb2_grpc.EmbeddingServiceStub(channel).Info(
            embedding_pb2.InfoRequest(), timeout=10
        )
    return 1e-5 if info.device == "cpu" else 2e-3


def _vector(response: object, index: int = 0) -> np.ndarray:
    assert isinstance(response, embedding_pb2.EmbedResponse), response
    return np.array(response.embeddings[index].values)


@pytest.fixture(scope="module")
def batching_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    env = {**NO_CACHE, "EMBEDDING_MAX_WAIT_MS": "50", "EMBEDDING_BACKEND": "torch"}
    with service_process("embedding", env, tmp_path_factory.mktemp("batching")) as service:
        yield service


def test_concurrent_calls_share_model_invocations_and_match_unbatched_vectors(
    batching_service: RunningService,
) -> None:
    texts = [f"Pump {n} moves {n * 3} litres of water per minute." for n in range(48)]
    before = batching_service.metric(INVOCATIONS)
    responses = asyncio.run(_embed_each(batching_service.target, texts))
    invocations = batching_service.metric(INVOCATIONS) - before
    assert 1 <= invocations < len(texts) / 4

    with grpc.insecure_channel(batching_service.target) as channel:
        stub = embedding_pb2_grpc.EmbeddingServiceStub(channel)
        alone = [stub.Embed(embedding_pb2.EmbedRequest(texts=[t]), timeout=60) for t in texts[:8]]
        together = stub.Embed(embedding_pb2.EmbedRequest(texts=texts[:8]), timeout=60)
    atol = _tolerance(batching_service.target)
    for index in range(8):
        unbatched = _vector(alone[index])
        np.testing.assert_allclose(_vector(responses[index]), unbatched, atol=atol)
        # A many-text call returns its vectors in the order of its texts.
        np.testing.assert_allclose(_vector(together, index), unbatched, atol=atol)


def test_each_response_reports_its_own_timings(batching_service: RunningService) -> None:
    with grpc.insecure_channel(batching_service.target) as channel:
        response = embedding_pb2_grpc.EmbeddingServiceStub(channel).Embed(
            embedding_pb2.EmbedRequest(texts=["a valve", "a much longer sentence about valves"]),
            timeout=60,
        )
    timings = response.timings
    assert timings.tokenize_ms > 0
    assert timings.inference_ms > 0
    assert timings.queue_ms >= 0
    assert response.cache_hits == 0


def test_a_flood_past_the_queue_limit_is_refused_with_a_retry_delay(tmp_path: Path) -> None:
    env = {
        **NO_CACHE,
        "EMBEDDING_MAX_QUEUED_REQUESTS": "4",
        "EMBEDDING_MAX_BATCH_SIZE": "8",
        "EMBEDDING_MAX_WAIT_MS": "0",
    }
    with service_process("embedding", env, tmp_path) as service:
        texts = [f"Flood text {n}: " + "gaskets and flanges " * 30 for n in range(64)]
        results = asyncio.run(_embed_each(service.target, texts))
        rejected = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
        admitted = [r for r in results if isinstance(r, embedding_pb2.EmbedResponse)]
        assert rejected
        assert admitted
        assert len(rejected) + len(admitted) == len(texts)
        for error in rejected:
            assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "queue is full" in (error.details() or "")
            delay = retry_after_s(error)
            assert delay is not None
            assert delay > 0
        assert all(len(r.embeddings) == 1 for r in admitted)
        assert service.metric("ragplane_embedding_rejected_total", 'reason="queue_full"') == len(
            rejected
        )
        assert service.metric(EMBEDDED) == len(admitted)


def test_a_call_whose_caller_gave_up_never_reaches_the_model(tmp_path: Path) -> None:
    # A long batching wait keeps the lone text queued past its caller's deadline.
    env = {**NO_CACHE, "EMBEDDING_MAX_WAIT_MS": "1500"}
    with service_process("embedding", env, tmp_path) as service:
        before = service.metric(EMBEDDED)
        [outcome] = asyncio.run(_embed_each(service.target, ["too late"], deadline_s=0.3))
        assert isinstance(outcome, grpc.aio.AioRpcError)
        assert outcome.code() == grpc.StatusCode.DEADLINE_EXCEEDED

        def dropped() -> float:
            return sum(
                service.metric("ragplane_embedding_dropped_texts_total", f'reason="{reason}"')
                for reason in ("cancelled", "expired")
            )

        # The text left the queue unembedded; once dropped it can never reach the model.
        wait_until(lambda: dropped() >= 1, 30, "the late text to be dropped")
        assert service.metric(EMBEDDED) == before
        assert dropped() == 1


def test_a_cache_hit_skips_the_model(stack: Stack) -> None:
    text = f"cache probe {time.time_ns()}"
    with grpc.insecure_channel(f"127.0.0.1:{stack.ports.embedding}") as channel:
        stub = embedding_pb2_grpc.EmbeddingServiceStub(channel)
        first = stub.Embed(embedding_pb2.EmbedRequest(texts=[text]), timeout=60)
        before = metric(stack.ports.embedding_metrics, EMBEDDED)
        second = stub.Embed(embedding_pb2.EmbedRequest(texts=[text]), timeout=60)
    assert (first.cache_hits, second.cache_hits) == (0, 1)
    assert metric(stack.ports.embedding_metrics, EMBEDDED) == before
    np.testing.assert_allclose(_vector(second), _vector(first), atol=1e-7)


def test_redis_going_down_leaves_the_service_serving(tmp_path: Path) -> None:
    with redis_server(tmp_path) as redis:
        env = {"EMBEDDING_REDIS_URL": redis.url()}
        with service_process("embedding", env, tmp_path) as service:
            with grpc.insecure_channel(service.target) as channel:
                stub = embedding_pb2_grpc.EmbeddingServiceStub(channel)
                stub.Embed(embedding_pb2.EmbedRequest(texts=["kept in redis"]), timeout=60)
                cached = stub.Embed(embedding_pb2.EmbedRequest(texts=["kept in redis"]), timeout=60)
                assert cached.cache_hits == 1

                redis.stop(signal.SIGKILL)
                for attempt in range(5):
                    response = stub.Embed(
                        embedding_pb2.EmbedRequest(texts=[f"after redis died {attempt}"]),
                        timeout=60,
                    )
                    assert len(response.embeddings[0].values) == 384
                    assert response.cache_hits == 0
            errors = service.metric("ragplane_embedding_cache_lookups_total", 'result="error"')
            assert errors >= 1
