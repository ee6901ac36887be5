"""Health Watch, the stream every client's health checking opens, passes the interceptors."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from ragplane.runtime.interceptors import ObservabilityInterceptor


async def test_watch_streams_the_serving_status_through_the_interceptors() -> None:
    server = grpc.aio.server(interceptors=[ObservabilityInterceptor("unit-test")])
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            watch = health_pb2_grpc.HealthStub(channel).Watch(
                health_pb2.HealthCheckRequest(), timeout=5
            )
            first = await watch.read()
            watch.cancel()
    finally:
        await server.stop(None)
    assert first.status == health_pb2.HealthCheckResponse.SERVING
