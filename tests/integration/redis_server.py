"""A redis-server of a test's own, to stop, pause and start again on the same port.

The session stack's Redis is shared by every test, so a test that takes Redis away runs its own.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ragplane.cli.stack import free_ports, redis_pong
from tests.integration.polling import wait_until


class RedisServer:
    def __init__(self, folder: Path, port: int | None = None) -> None:
        self.port = free_ports(1)[0] if port is None else port
        self._folder = folder
        self._process: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self, timeout_s: float = 30) -> None:
        argv = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port)]
        argv += ["--dir", str(self._folder), "--save", "", "--appendonly", "no"]
        with (self._folder / "redis.log").open("ab") as log:
            process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        self._process = process

        def answers() -> bool:
            assert process.poll() is None, "redis-server exited during start-up"
            return redis_pong(self.port)()

        wait_until(answers, timeout_s, "redis-server to answer PING", interval_s=0.1)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """End the process (SIGKILL: no shutdown at all) and wait until it is gone."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(sig)
            self._process.wait(timeout=30)
        self._process = None


@contextmanager
def redis_server(folder: Path) -> Iterator[RedisServer]:
    """A started redis-server on a free port, stopped after the block."""
    server = RedisServer(folder)
    server.start()
    try:
        yield server
    finally:
        server.stop()
