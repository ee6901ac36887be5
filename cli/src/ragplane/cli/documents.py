"""Files on disk as documents to ingest."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from ragplane.v1 import query_pb2

TEXT_SUFFIXES = (".txt", ".rst", ".md")
# A reStructuredText title: a line of text underlined (and maybe overlined) with = - ~ * # ^.
_RST_TITLE = re.compile(r"^(?:[=\-~*#^]{3,}\n)?([^\n]+)\n[=\-~*#^]{3,}\s*$", re.MULTILINE)


def find_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name.endswith(TEXT_SUFFIXES))


def select(files: list[Path], root: Path, prefixes: list[str]) -> list[Path]:
    """The files whose document id starts with one of the prefixes (all files when none):
    "tutorial/" selects a folder, "library/venv.rst.txt" one page."""
    if not prefixes:
        return files
    return [path for path in files if document_id_for(path, root).startswith(tuple(prefixes))]


def title_of(text: str, fallback: str) -> str:
    match = _RST_TITLE.search(text[:4000])
    if match:
        title = match.group(1).strip().strip("*`:").strip()
        if title:
            return title
    for line in text.splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return fallback


def _relative(path: Path, root: Path) -> Path:
    return path.relative_to(root) if path != root else Path(path.name)


def document_id_for(path: Path, root: Path) -> str:
    """The path relative to root."""
    return _relative(path, root).as_posix()


def read_text(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")


def document_for(path: Path, root: Path) -> query_pb2.Document:
    """Document id = the path relative to root; metadata "section" = its first folder."""
    relative = _relative(path, root)
    document_id = document_id_for(path, root)
    text = read_text(path)
    section = relative.parts[0] if len(relative.parts) > 1 else "top"
    return query_pb2.Document(
        document_id=document_id,
        text=text,
        title=title_of(text, relative.stem),
        metadata={"section": section, "path": document_id},
    )


def batches(
    files: list[Path], root: Path, max_documents: int, max_chars: int
) -> Iterator[list[query_pb2.Document]]:
    """Documents grouped so that one Ingest call stays small enough to finish promptly."""
    batch: list[query_pb2.Document] = []
    size = 0
    for path in files:
        document = document_for(path, root)
        if batch and (len(batch) >= max_documents or size + len(document.text) > max_chars):
            yield batch
            batch, size = [], 0
        batch.append(document)
        size += len(document.text)
    if batch:
        yield batch
