"""`ragplane ingest` and `ragplane ask`, as a person runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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


def test_batch_submit_follow_and_results(stack: Stack, tmp_path: Path) -> None:
    ingested = _ragplane(stack, "ingest", str(DATA / "tenant-a"), "--tenant", "cli-batch")
    assert ingested.returncode == 0, ingested.stderr
    questions = tmp_path / "questions.jsonl"
    asked = [f"How often is the impeller inspected? ({n})" for n in range(3)]
    questions.write_text(
        "\n".join(json.dumps({"query": q, "maxOutputTokens": 8}) for q in asked) + "\n"
    )
    submitted = _ragplane(stack, "batch", "submit", str(questions), "--tenant", "cli-batch")
    assert submitted.returncode == 0, submitted.stderr
    batch_id = submitted.stdout.strip()

    # --follow polls GetBatch until the batch ends, drawing its progress bar on stderr.
    followed = _ragplane(
        stack, "batch", "status", batch_id, "--tenant", "cli-batch", "--follow", "--interval", "0.5"
    )
    assert followed.returncode == 0, followed.stderr
    assert followed.stdout.startswith("done: 3 done, 0 failed"), followed.stdout
    assert "3/3" in followed.stderr

    results = _ragplane(stack, "batch", "results", batch_id, "--tenant", "cli-batch")
    lines = [json.loads(line) for line in results.stdout.splitlines()]
    assert [line["query"] for line in lines] == asked
    assert all(line["status"] == "BATCH_ITEM_STATUS_DONE" for line in lines)
