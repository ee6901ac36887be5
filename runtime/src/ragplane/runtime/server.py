"""One way to run a ragplane service: health, reflection, observability, graceful shutdown."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Sequence
from typing import Protocol

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry.instrumentation.grpc import aio_server_interceptor

from ragplane.runtime.health import HealthServicer
from ragplane.runtime.interceptors import ObservabilityInterceptor
from ragplane.runtime.logs import configure_logging
from ragplane.runtime.settings import ServiceSettings
from ragplane.runtime.telemetry import MetricsEndpoint, configure_tracing

log = structlog.get_logger("ragplane.server")


class Application(Protocol):
    """What a service gives the bootstrap: its servicers and its start-up and shutdown work."""

    @property
    def service_names(self) -> Sequence[str]:
        """Full gRPC service names, for example ``ragplane.v1.EmbeddingService``."""

    def register(self, server: grpc.aio.Server) -> None:
        """Add the servicers to the server."""

    async def warm_up(self) -> None:
        """Load models and connect to dependencies; health says NOT_SERVING until this returns."""

    async def close(self) -> None:
        """Release resources after the last in-flight call has finished."""


def server_options(settings: ServiceSettings) -> list[tuple[str, int]]:
    return [
        ("grpc.max_send_message_length", settings.max_message_bytes),
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.keepalive_time_ms", int(settings.keepalive_time_s * 1000)),
        ("grpc.keepalive_timeout_ms", int(settings.keepalive_timeout_s * 1000)),
        ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.max_connection_age_ms", round(settings.max_connection_age_s * 1000)),
        ("grpc.max_connection_age_grace_ms", round(settings.max_connection_age_grace_s * 1000)),
        # Reusing a port another process still listens on would hide a misconfiguration.
        ("grpc.so_reuseport", 0),
    ]


class ServiceRunner:
    """Runs an application until SIGTERM or SIGINT, then drains it within the grace period."""

    def __init__(
        self,
        name: str,
        app: Application,
        settings: ServiceSettings,
        interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
    ) -> None:
        self._name = name
        self._app = app
        self._settings = settings
        # Run inside the observability interceptor, so their errors are mapped and logged.
        self._interceptors = list(interceptors)
        self._health = HealthServicer()
        self._stop_requested = asyncio.Event()
        self._metrics = MetricsEndpoint(settings.host, settings.metrics_port)

    def _build_server(self) -> grpc.aio.Server:
        server = grpc.aio.server(
            interceptors=[
                aio_server_interceptor(),
                ObservabilityInterceptor(self._name, self._settings.string_limits()),
                *self._interceptors,
            ],
            options=server_options(self._settings),
        )
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        self._app.register(server)
        reflection.enable_server_reflection(
            [*self._app.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], server
        )
        address = f"{self._settings.host}:{self._settings.port}"
        tls = self._settings.tls
        try:
            if tls.serves_tls:
                server.add_secure_port(address, tls.server_credentials())
            else:
                server.add_insecure_port(address)
        except RuntimeError as error:
            raise SystemExit(f"{self._name}: cannot listen on {address} ({error})") from None
        return server

    async def _set_health(self, status: health_pb2.HealthCheckResponse.ServingStatus) -> None:
        for service in ("", *self._app.service_names):
            await self._health.set(service, status)

    def _install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._stop_requested.set)

    async def run(self) -> int:
        """Serve until asked to stop; returns the process exit code."""
        self._install_signal_handlers()
        server = self._build_server()
        await self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        await server.start()
        self._metrics.start()
        tls = self._settings.tls
        log.info(
            "listening",
            port=self._settings.port,
            metrics_port=self._settings.metrics_port,
            tls="mutual" if tls.require_client_cert else "on" if tls.serves_tls else "off",
        )
        exit_code = 0
        try:
            if await self._warm_up():
                await self._set_health(health_pb2.HealthCheckResponse.SERVING)
                log.info("serving")
                await self._stop_requested.wait()
        except Exception:
            log.exception("warm-up failed")
            exit_code = 1
        await self._drain(server)
        return exit_code

    async def _warm_up(self) -> bool:
        """Warm the application up; False when a stop was requested first."""
        warm_up = asyncio.create_task(self._app.warm_up())
        stop = asyncio.create_task(self._stop_requested.wait())
        await asyncio.wait({warm_up, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if not warm_up.done():
            warm_up.cancel()
            log.info("stopped during warm-up")
            return False
        warm_up.result()
        return True

    async def _drain(self, server: grpc.aio.Server) -> None:
        log.info("draining", grace_period_s=self._settings.grace_period_s)
        await self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        await asyncio.sleep(self._settings.drain_delay_s)
        await server.stop(self._settings.grace_period_s)
        await self._app.close()
        self._metrics.stop()
        log.info("stopped")


def run_service(
    name: str,
    app: Application,
    settings: ServiceSettings,
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
) -> None:
    """Entry point of every service process."""
    configure_logging(name, settings.log_level)
    configure_tracing(name)
    exit_code = asyncio.run(ServiceRunner(name, app, settings, interceptors).run())
    raise SystemExit(exit_code)
