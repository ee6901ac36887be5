"""`ragplane ingest --journal`: interrupted with Ctrl-C, the same command resumes; no document
is lost or stored twice."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

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


def _ingest(stack: Stack, corpus: Path, journal: Path) -> list[str]:
    return [
        sys.executable,
        *("-m", "ragplane.cli", "--target", f"127.0.0.1:{stack.ports.query}"),
        *("ingest", str(corpus), "--tenant", TENANT, "--journal", str(journal)),
        *("--batch-documents", "2", "--concurrency", "1"),
    ]


def _journaled(journal: Path) -> dict[str, int]:
    if not journal.exists():
        return {}
    lines = journal.read_text().splitlines()
    return {entry["document_id"]: entry["chunks"] for entry in map(json.loads, lines)}


def test_an_interrupted_ingestion_resumes_with_nothing_lost_or_stored_twice(
    stack: Stack, retrieval: retrieval_pb2_grpc.RetrievalServiceStub, tmp_path: Path
) -> None:
    corpus, journal = tmp_path / "corpus", tmp_path / "ingest.journal"
    document_ids = _corpus(corpus)

    first = subprocess.Popen(_ingest(stack, corpus, journal), text=True, stderr=subprocess.PIPE)
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
