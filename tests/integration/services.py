"""Extra service processes for tests that need their own settings or their own fate."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ragplane.cli.stack import (
    OFFLINE_ENV,
    free_ports,
    grpc_serving,
    local_embedding_env,
    stop_process,
)


@dataclass
class RunningService:
    process: subprocess.Popen[bytes]
    port: int
    metrics_port: int
    log: Path

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def metric(self, name: str, labels: str = "") -> float:
        return metric(self.metrics_port, name, labels)


def metric(metrics_port: int, name: str, labels: str = "", host: str = "127.0.0.1") -> float:
    """Current value of a Prometheus sample, 0 when it has not been recorded yet."""
    url = f"http://{host}:{metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as reply:
        text = reply.read().decode()
    pattern = re.escape(name) + (re.escape("{" + labels + "}") if labels else "") + r" (\S+)"
    match = re.search(f"^{pattern}$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


@contextmanager
def service_process(
    name: str,
    env: dict[str, str],
    log_dir: Path,
    ready_timeout_s: float = 120,
    ready: Callable[[int], Callable[[], bool]] = grpc_serving,
) -> Iterator[RunningService]:
    """Run ``python -m ragplane.<name>`` on free ports with extra settings; stop it after."""
    # An embedding service runs as the local stack's does, unless ``env`` names its backend.
    # First: the first call exports the model (seconds), and ports picked before may be taken.
    local = {}
    if name == "embedding" and "EMBEDDING_BACKEND" not in env:
        local = local_embedding_env(sys.executable)
    port, metrics_port = free_ports(2)
    prefix = name.upper()
    settings = {
        f"{prefix}_PORT": str(port),
        f"{prefix}_METRICS_PORT": str(metrics_port),
        **local,
        **env,
    }
    log = log_dir / f"{name}-{port}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", f"ragplane.{name}"],
            env={**os.environ, **OFFLINE_ENV, **settings},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    service = RunningService(process, port, metrics_port, log)
    try:
        deadline = time.monotonic() + ready_timeout_s
        while not ready(service.port)():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield service
    finally:
        stop_process(process)
