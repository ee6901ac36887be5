"""Stopping a process a test started: SIGTERM, then SIGKILL if it does not exit in time."""

from __future__ import annotations

import signal
import subprocess


def stop_process(process: subprocess.Popen[bytes], timeout_s: float = 30) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
