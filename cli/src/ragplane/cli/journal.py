"""What an ingestion has already stored, so that an interrupted one resumes where it stopped.

One JSON line per document the query service reported INDEXED: tenant, document id, the
SHA-256 of the text sent and the chunks stored. A line is written (and fsynced) only after the
service acknowledged the document, so a document in flight when the run was interrupted is sent
again next time; chunk ids are deterministic, so sending it again replaces it, never adds a copy.
A document whose text changed since its line was written has another hash and is sent again.
One ingestion at a time writes a journal (an exclusive lock on FILE.lock), so two runs never
send the same documents side by side.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from pathlib import Path
from typing import TextIO


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", errors="surrogatepass")).hexdigest()


class JournalBusy(Exception):
    """Another ingestion holds the journal's lock."""


class IngestJournal:
    def __init__(self, path: Path, tenant: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = path.with_name(path.name + ".lock").open("a")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise JournalBusy(f"another ingestion is writing {path}") from None
        self._path = path
        self._tenant = tenant
        self._stored: dict[str, str] = {}
        self._file: TextIO | None = None
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                entry = _parse(line)
                if entry is not None and entry["tenant"] == tenant:
                    self._stored[str(entry["document_id"])] = str(entry["sha256"])

    def holds(self, document_id: str, digest: str) -> bool:
        """True when this text of the document was acknowledged before."""
        return self._stored.get(document_id) == digest

    def record(self, document_id: str, digest: str, chunks: int) -> None:
        if self._file is None:
            self._file = self._path.open("a", encoding="utf-8")
        entry = {"tenant": self._tenant, "document_id": document_id, "sha256": digest}
        self._file.write(json.dumps({**entry, "chunks": chunks}) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self._stored[document_id] = digest

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._lock.close()


def _parse(line: str) -> dict[str, object] | None:
    """A line cut short by a crash is ignored: its document is simply sent again."""
    try:
        entry = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(entry, dict) or not {"tenant", "document_id", "sha256"} <= entry.keys():
        return None
    return entry
