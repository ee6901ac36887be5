"""`ragplane ingest --journal`: interrupted with Ctrl-C, the same command resumes; no document
is lost or stored twice."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from ragplane.cli.main import EXIT_JOURNAL_BUSY
from ragplane.cli.stack import Stack
from ragplane.v1 import retrieval_pb2, retrieval_pb2_grpc
from tests.integration.polling import wait_until

TENANT = "resume"
DOCUMENTS = 40


def _corpus(folder: Path) -> list[str]:
    """Documents of a few chunks each, so that the ingestion takes a while."""
    folder.mkdir()
    for number in range(DOCUMENTS):
        paragraphs = [
            f"Pump model {number}-{part} is serviced by crew {part} every {number + part} weeks."
            for part in range(40)
        ]
        (folder / f"pump-{number:02d}.md").write_text("\n\n".join(paragraphs) + "\n")
    return sorted(path.name for path in folder.iterdir())


def _ingest(
    stack: Stack, corpus: Path, journal: Path, *only: str, tenant: str = TENANT
) -> list[str]:
    return [
        sys.executable,
        *("-m", "ragplane.cli", "--target", f"127.0.0.1:{stack.ports.query}"),
        *("ingest", str(corpus), "--tenant", tenant, "--journal", str(journal)),
        *("--batch-documents", "2", "--concurrency", "1"),
        *(f"--only={prefix}" for prefix in only),
    ]


def _ctrl_c_as_in_a_terminal() -> None:
    """SIGINT as a command typed in a terminal gets it: a test run started in the background
    (`cmd &` in a script) passes SIGINT on ignored, and Python then never raises
    KeyboardInterrupt (a fresh-clone run launched that way failed here)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _journal_lines(journal: Path) -> list[dict[str, Any]]:
    if not journal.exists():
        return []
    return [json.loads(line) for line in journal.read_text().splitlines()]


def _journaled(journal: Path) -> dict[str, int]:
    return {entry["document_id"]: entry["chunks"] for entry in _journal_lines(journal)}


def test_an_interrupted_ingestion_resumes_with_nothing_lost_or_stored_twice(
    stack: Stack, retrieval: retrieval_pb2_grpc.RetrievalServiceStub, tmp_path: Path
) -> None:
    corpus, journal = tmp_path / "corpus", tmp_path / "ingest.journal"
    document_ids = _corpus(corpus)

    first = subprocess.Popen(
        _ingest(stack, corpus, journal),
        text=True,
        stderr=subprocess.PIPE,
        preexec_fn=_ctrl_c_as_in_a_terminal,
    )
    wait_until(lambda: len(_journaled(journal)) >= 4, 300, "4 documents to be acknowledged", 0.005)
    first.send_signal(signal.SIGINT)
    _, first_errors = first.communicate(timeout=60)
    before = _journaled(journal)
    assert first.returncode == 130, first_errors
    assert "run the same command again to resume" in first_errors
    assert 4 <= len(before) < DOCUMENTS, "the first run was not interrupted part way"

    second = subprocess.run(
        _ingest(stack, corpus, journal), capture_output=True, text=True, timeout=600
    )
    assert second.returncode == 0, second.stderr
    assert f"resuming: {len(before)} of {DOCUMENTS} documents were ingested before" in (
        second.stdout
    )
    # Only what the first run had not finished was sent again.
    rest = DOCUMENTS - len(before)
    assert f"indexed {rest} of {rest} documents" in second.stdout

    after = _journaled(journal)
    assert sorted(after) == document_ids
    stored = retrieval.CountChunks(
        retrieval_pb2.CountChunksRequest(tenant=TENANT, document_ids=document_ids), timeout=60
    )
    assert dict(stored.per_document) == after
    assert stored.total == sum(after.values())


def test_first_pages_then_the_rest_in_the_background_send_each_document_once(
    stack: Stack, retrieval: retrieval_pb2_grpc.RetrievalServiceStub, tmp_path: Path
) -> None:
    """make run's demo: a slice first, then the whole folder with the same journal while a
    second run (the next make run) finds the journal busy and leaves the ingestion to it."""
    tenant = "first-pages"
    corpus, journal = tmp_path / "corpus", tmp_path / "ingest.journal"
    document_ids = _corpus(corpus)

    first = subprocess.run(
        _ingest(stack, corpus, journal, "pump-00", "pump-01", tenant=tenant),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert first.returncode == 0, first.stderr
    assert "indexed 2 of 2 documents" in first.stdout

    rest = subprocess.Popen(
        _ingest(stack, corpus, journal, tenant=tenant), text=True, stdout=subprocess.PIPE
    )
    wait_until(lambda: len(_journaled(journal)) >= 4, 300, "the rest to be under way")
    again = subprocess.run(
        _ingest(stack, corpus, journal, tenant=tenant), capture_output=True, text=True, timeout=60
    )
    assert again.returncode == EXIT_JOURNAL_BUSY, again.stderr
    assert "another ingestion is writing" in again.stderr
    rest_output, _ = rest.communicate(timeout=600)
    assert rest.returncode == 0
    assert f"resuming: 2 of {DOCUMENTS} documents were ingested before" in rest_output

    lines = _journal_lines(journal)
    assert sorted(entry["document_id"] for entry in lines) == document_ids, "sent twice"
    stored = retrieval.CountChunks(
        retrieval_pb2.CountChunksRequest(tenant=tenant, document_ids=document_ids), timeout=60
    )
    assert dict(stored.per_document) == _journaled(journal)
