"""Cases run and statuses seen per RPC in this session, printed at its end (a plugin of
tests/conftest.py: parallel workers hand their tallies to the controller, which prints)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

STATUSES: dict[str, Counter[str]] = {}
_WORKER_OUTPUT_KEY = "fuzz_statuses"


def record(rpc: str, status: str) -> None:
    STATUSES.setdefault(rpc, Counter())[status] += 1


def table() -> list[str]:
    lines = [f"{'RPC':<18} {'cases':>6}  statuses"]
    for rpc, seen in sorted(STATUSES.items()):
        statuses = ", ".join(f"{code} {count}" for code, count in seen.most_common())
        lines.append(f"{rpc:<18} {sum(seen.values()):>6}  {statuses}")
    return lines


def pytest_sessionfinish(session: pytest.Session) -> None:
    worker_output: dict[str, Any] | None = getattr(session.config, "workeroutput", None)
    if worker_output is not None:
        worker_output[_WORKER_OUTPUT_KEY] = {rpc: dict(seen) for rpc, seen in STATUSES.items()}


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """pytest-xdist's hook on the controller when a worker is done."""
    handed: dict[str, dict[str, int]] = getattr(node, "workeroutput", {}).get(
        _WORKER_OUTPUT_KEY, {}
    )
    for rpc, seen in handed.items():
        STATUSES.setdefault(rpc, Counter()).update(seen)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if STATUSES and not hasattr(terminalreporter.config, "workerinput"):
        terminalreporter.section("fuzz: cases and statuses per RPC")
        for line in table():
            terminalreporter.write_line(line)
