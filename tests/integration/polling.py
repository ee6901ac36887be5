"""Waiting for something a test can observe (a metric, a health status, a log line), by polling.

A test never sleeps for a fixed time to let something happen: it polls the state that shows
it happened, and fails with what it was waiting for when that state never comes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path


def wait_until(
    condition: Callable[[], bool], timeout_s: float, what: str, interval_s: float = 0.05
) -> None:
    """Return once ``condition()`` is true; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"waited {timeout_s} s for {what}"
        time.sleep(interval_s)


def log_lines_with(log: Path, needle: str) -> int:
    """How many lines of ``log`` contain ``needle`` (0 while the file does not exist)."""
    try:
        text = log.read_text(errors="replace")
    except FileNotFoundError:
        return 0
    return sum(needle in line for line in text.splitlines())
