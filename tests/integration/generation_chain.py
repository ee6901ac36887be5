"""The generation service's provider chains for tests: the question and passages they ask
about, providers and chain settings, dead ports, a call, the breaker gauge, and a
llama-cpp-python server of a test's own to stop and start at will."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc

from ragplane.cli.stack import LLM_MODEL_ALIAS, OFFLINE_ENV, bundled_gguf, free_ports, http_ok
from ragplane.v1 import common_pb2, generation_pb2, generation_pb2_grpc
from tests.integration.services import RunningService

QUESTION = "How often is the Aurora 7 impeller inspected?"
PASSAGES = [
    common_pb2.Passage(
        document_id="aurora-pumps.md",
        chunk_id="aurora-pumps.md#0",
        text="The Aurora 7 impeller is inspected every 400 operating hours. Seals last longer.",
        score=1.0,
    ),
    common_pb2.Passage(
        document_id="aurora-pumps.md",
        chunk_id="aurora-pumps.md#1",
        text="Aurora pumps ship with a two-year warranty.",
        score=0.5,
    ),
]
# Short answers keep these tests fast (the 135M model writes about 40 tokens/s here).
FAST = {
    "GENERATION_DEFAULT_MAX_OUTPUT_TOKENS": "8",
    "GENERATION_RETRY_BASE_DELAY_S": "0.05",
    "GENERATION_RETRY_MAX_DELAY_S": "0.2",
}


def provider(name: str, port: int, **extra: object) -> dict[str, object]:
    return {
        "name": name,
        "base_url": f"http://127.0.0.1:{port}/v1",
        "model": LLM_MODEL_ALIAS,
        "request_timeout_s": 30,
        **extra,
    }


def chain_env(*providers: dict[str, object], **settings: str) -> dict[str, str]:
    env = {"GENERATION_PROVIDERS": json.dumps(list(providers)), **FAST}
    env.update({f"GENERATION_{k.upper()}": v for k, v in settings.items()})
    return env


def dead_port() -> int:
    """A loopback port nothing listens on: calls to it are refused at once."""
    return free_ports(1)[0]


def ask(
    service: RunningService,
    timeout_s: float = 60,
    question: str = QUESTION,
    passages: list[common_pb2.Passage] | None = None,
    tenant: str = "",
    tier: generation_pb2.ModelTier.ValueType = generation_pb2.MODEL_TIER_UNSPECIFIED,
) -> generation_pb2.GenerateResponse:
    request = generation_pb2.GenerateRequest(
        question=question,
        passages=PASSAGES if passages is None else passages,
        tenant=tenant,
        tier=tier,
    )
    with grpc.insecure_channel(service.target) as channel:
        stub = generation_pb2_grpc.GenerationServiceStub(channel)
        return stub.Generate(request, timeout=timeout_s)


def breaker_state(service: RunningService, name: str) -> float:
    return service.metric("ragplane_generation_breaker_state", f'provider="{name}"')


class LlamaServer:
    """A llama-cpp-python server of our own, to stop and start again at will."""

    def __init__(self, port: int, log: Path) -> None:
        self.port = port
        self._log = log
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 120) -> None:
        argv = [sys.executable, "-m", "llama_cpp.server", "--model", str(bundled_gguf())]
        argv += ["--model_alias", LLM_MODEL_ALIAS, "--host", "127.0.0.1", "--port", str(self.port)]
        argv += ["--n_ctx", "2048", "--interrupt_requests", "False"]
        with self._log.open("ab") as output:
            self._process = subprocess.Popen(
                argv,
                env={**os.environ, **OFFLINE_ENV},
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        ready = http_ok(f"http://127.0.0.1:{self.port}/v1/models")
        deadline = time.monotonic() + timeout_s
        while not ready():
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"llama server did not start:\n{self._log.read_text()[-2000:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
