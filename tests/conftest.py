"""Shared test helpers."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"

# The session stack and its stubs, for the integration tests and the fuzz suite alike; the
# order modules start in when workers run them side by side; the fuzz suite's closing table.
pytest_plugins = ["tests.stack_fixtures", "tests.scheduling", "tests.fuzz.tally"]
