"""The fixed slice of the demo corpus, and its chunks as the query service itself cuts them.

The limit must encode exactly the texts the served path embeds, so the chunks come from the query
service's own Chunker with QuerySettings' defaults, not from a copy of its rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ragplane.cli.documents import document_for, find_files
from ragplane.query.chunking import Chunker
from ragplane.query.config import QuerySettings

# Whole folders, so that the slice is the same on every machine and every run: 104 documents
# of about 1.5 MB, a few thousand chunks; a few minutes at most on 2 cores.
SLICE_FOLDERS = ("c-api/", "extending/", "faq/", "tutorial/", "using/")


@dataclass(frozen=True)
class Slice:
    root: Path
    files: list[Path]
    chunk_texts: list[str]
    characters: int


def select_files(root: Path) -> list[Path]:
    return [
        path
        for path in find_files(root)
        if path.relative_to(root).as_posix().startswith(SLICE_FOLDERS)
    ]


def query_chunker() -> Chunker:
    """The chunker the query service builds at start-up (server.py warm_up), default settings."""
    settings = QuerySettings()
    return Chunker.from_file(
        settings.resolved_tokenizer_path(), settings.chunk_tokens, settings.chunk_overlap_tokens
    )


def load_slice(root: Path) -> Slice:
    files = select_files(root)
    chunker = query_chunker()
    texts: list[str] = []
    characters = 0
    for path in files:
        # The same Document the CLI sends, so the text is the one the service chunks.
        document = document_for(path, root)
        characters += len(document.text)
        texts.extend(piece.text for piece in chunker.split(document.text))
    return Slice(root, files, texts, characters)
