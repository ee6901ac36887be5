"""Longest test modules first, so that parallel workers (``make test`` runs pytest-xdist with
whole modules as units) finish together rather than one waiting on a long module started last.

Each module's time in the last run on this machine is kept in $RAGPLANE_CACHE (shared by every
clone, as mypy's cache is); a module with no time yet goes first, as it may be long. The order
only changes which module starts when: each module still runs whole, on one worker.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path

import pytest

DURATIONS_FILE = (
    Path(os.environ.get("RAGPLANE_CACHE", Path.home() / ".cache" / "ragplane"))
    / "test-module-seconds.json"
)
_seconds: defaultdict[str, float] = defaultdict(float)


def _known_seconds() -> dict[str, float]:
    try:
        known = json.loads(DURATIONS_FILE.read_text())
    except (OSError, ValueError):
        return {}
    return known if isinstance(known, dict) else {}


def _module(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    known = _known_seconds()
    # sorted() is stable: a module's tests keep their order, and so do modules of equal time.
    items[:] = sorted(items, key=lambda item: -known.get(_module(item.nodeid), float("inf")))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _seconds[_module(report.nodeid)] += report.duration


def pytest_sessionfinish(session: pytest.Session) -> None:
    # Workers report to the controller, which sees every module's reports: it alone writes.
    if hasattr(session.config, "workerinput") or not _seconds:
        return
    known = {**_known_seconds(), **_seconds}
    DURATIONS_FILE.parent.mkdir(parents=True, exist_ok=True)
    partial = DURATIONS_FILE.with_suffix(".partial")
    partial.write_text(json.dumps(known, indent=1, sort_keys=True))
    partial.replace(DURATIONS_FILE)
