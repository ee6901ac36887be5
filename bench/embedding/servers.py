"""Starting and stopping the servers under test, one at a time, as child processes."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from ragplane.cli.stack import stop_process

# Every server reads its model from a local directory; nothing may come from a model hub.
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}


class ServerFailed(Exception):
    """The server exited or never became ready; the message says which, with its last log lines."""


@dataclass(frozen=True)
class ServerSpec:
    name: str
    argv: list[str]
    # Added to this process's environment.
    env: Mapping[str, str]
    ready: Callable[[], bool]
    cwd: Path | None = None
    # Loading a model and warming it up takes a while on 2 cores.
    start_timeout_s: float = 180.0
    # Long enough for a graceful drain (ragplane waits for calls in flight).
    stop_timeout_s: float = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log_tail(log_path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def wait_until_ready(spec: ServerSpec, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + spec.start_timeout_s
    while not spec.ready():
        if process.poll() is not None:
            raise ServerFailed(
                f"{spec.name} exited with code {process.returncode} before it was ready; "
                f"last lines of {log_path}:\n{log_tail(log_path)}"
            )
        if time.monotonic() > deadline:
            raise ServerFailed(
                f"{spec.name} was not ready after {spec.start_timeout_s:.0f} s; "
                f"last lines of {log_path}:\n{log_tail(log_path)}"
            )
        time.sleep(0.5)


@contextlib.contextmanager
def running(spec: ServerSpec, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Runs the server while the block runs; it is stopped afterwards whatever happens."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            spec.argv,
            env={**os.environ, **OFFLINE_ENV, **spec.env},
            cwd=spec.cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until_ready(spec, process, log_path)
            yield process
        finally:
            stop_process(process, spec.stop_timeout_s)
