"""`ragplane ingest` and `ragplane ask`, as a person runs them."""

from __future__ import annotations

import json
import subprocess
import sys

from ragplane.cli.stack import Stack
from tests.conftest import DATA


def _ragplane(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    target = f"127.0.0.1:{stack.ports.query}"
    return subprocess.run(
        [sys.executable, "-m", "ragplane.cli", "--target", target, *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_ingest_a_folder_then_ask_with_citations(stack: Stack) -> None:
    ingested = _ragplane(stack, "ingest", str(DATA / "tenant-a"), "--tenant", "cli")
    assert ingested.returncode == 0, ingested.stderr
    assert "indexed 1 of 1 documents" in ingested.stdout

    asked = _ragplane(stack, "ask", "How often is the impeller inspected?", "--tenant", "cli")
    assert asked.returncode == 0, asked.stderr
    assert "Sources:\n  [1] aurora-pumps.md" in asked.stdout
    [timings] = [line for line in asked.stdout.splitlines() if line.startswith("Timings: ")]
    # The stack's answer caches run first (a miss here), then the pipeline's stages.
    assert timings.startswith("Timings: cache ")
    assert " embedding " in timings
    assert " generation " in timings

    as_json = _ragplane(stack, "ask", "impeller", "--tenant", "cli", "--json")
    response = json.loads(as_json.stdout)
    assert response["citations"][0]["documentId"] == "aurora-pumps.md"


def test_ask_reports_the_status_and_exits_1(stack: Stack) -> None:
    asked = _ragplane(stack, "ask", "anything", "--tenant", "no-documents-here")
    assert asked.returncode == 1
    assert "NOT_FOUND" in asked.stderr
