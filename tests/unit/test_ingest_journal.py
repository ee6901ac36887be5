"""The ingest journal: one ingestion at a time writes it."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragplane.cli.journal import IngestJournal, JournalBusy


def test_a_second_ingestion_is_refused_while_the_first_writes_the_journal(
    tmp_path: Path,
) -> None:
    path = tmp_path / "run" / "demo.journal"
    first = IngestJournal(path, "demo")
    first.record("a.md", "digest-a", chunks=3)
    with pytest.raises(JournalBusy, match="another ingestion is writing"):
        IngestJournal(path, "demo")
    first.close()

    after = IngestJournal(path, "demo")
    assert after.holds("a.md", "digest-a")
    after.close()
