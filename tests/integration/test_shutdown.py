"""SIGTERM drains a service: in-flight calls finish, health turns NOT_SERVING, exit code 0."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ragplane.cli.stack import Stack
from ragplane.v1 import common_pb2, generation_pb2, generation_pb2_grpc
from tests.integration.hostile import rpc_metric
from tests.integration.polling import wait_until
from tests.integration.services import service_process

GRACE_PERIOD_S = 30.0
DRAIN_DELAY_S = 1.5


def _health(port: int) -> int | None:
    """The server's health status; None once it no longer answers."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=2
            )
        except grpc.RpcError:
            return None
    return int(reply.status)


def test_sigterm_lets_the_call_in_flight_finish_then_exits_zero(
    stack: Stack, tmp_path: Path
) -> None:
    env = {
        "GENERATION_BASE_URL": f"http://127.0.0.1:{stack.ports.llm}/v1",
        "GENERATION_GRACE_PERIOD_S": str(GRACE_PERIOD_S),
        "GENERATION_DRAIN_DELAY_S": str(DRAIN_DELAY_S),
    }
    with service_process("generation", env, tmp_path) as service:
        outcome: dict[str, object] = {}

        def call() -> None:
            with grpc.insecure_channel(service.target) as channel:
                outcome["response"] = generation_pb2_grpc.GenerationServiceStub(channel).Generate(
                    generation_pb2.GenerateRequest(
                        question="Write a long story about pumps.",
                        passages=[
                            common_pb2.Passage(document_id="d", chunk_id="d#0", text="Pumps.")
                        ],
                        max_output_tokens=96,
                    ),
                    timeout=120,
                )

        caller = threading.Thread(target=call)
        caller.start()
        # The call has reached the server: its handler is running (the LLM writes for seconds).
        wait_until(
            lambda: rpc_metric(service.metrics_port, "ragplane_rpc_in_flight", "Generate") >= 1,
            60,
            "the Generate call to be in flight",
        )
        assert caller.is_alive()
        signalled = time.monotonic()
        service.process.send_signal(signal.SIGTERM)

        # Health turns NOT_SERVING during the drain delay, before the server stops answering.
        not_serving = health_pb2.HealthCheckResponse.NOT_SERVING
        wait_until(lambda: _health(service.port) == not_serving, DRAIN_DELAY_S, "NOT_SERVING")

        caller.join(timeout=120)
        response = outcome.get("response")
        assert isinstance(response, generation_pb2.GenerateResponse), outcome
        assert response.text
        assert response.usage.output_tokens > 0

        exit_code = service.process.wait(timeout=GRACE_PERIOD_S + DRAIN_DELAY_S + 10)
        assert exit_code == 0, service.log.read_text()
        assert time.monotonic() - signalled < GRACE_PERIOD_S + DRAIN_DELAY_S + 5
