"""Shared test helpers."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"

# The session stack and its stubs, for the integration tests and the fuzz suite alike.
pytest_plugins = ["tests.stack_fixtures"]
