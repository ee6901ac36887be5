"""Health Watch, the stream every client's health checking opens, passes the interceptors."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.instrumentation.grpc import aio_server_interceptor

from ragplane.runtime.health import HealthServicer
from ragplane.runtime.interceptors import ObservabilityInterceptor

SERVING, NOT_SERVING = (
    health_pb2.HealthCheckResponse.SERVING,
    health_pb2.HealthCheckResponse.NOT_SERVING,
)


async def test_watch_streams_each_status_through_the_interceptors() -> None:
    # The interceptors of every ragplane server (ragplane.runtime.server).
    interceptors = [aio_server_interceptor(), ObservabilityInterceptor("unit-test")]
    server = grpc.aio.server(interceptors=interceptors)
    servicer = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        await servicer.set("", SERVING)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            watch = health_pb2_grpc.HealthStub(channel).Watch(
                health_pb2.HealthCheckRequest(), timeout=5
            )
            first = await watch.read()
            await servicer.set("", NOT_SERVING)
            second = await watch.read()
            watch.cancel()
    finally:
        await server.stop(None)
    assert (first.status, second.status) == (SERVING, NOT_SERVING)
