"""Token-aware chunking with overlap."""

from __future__ import annotations

import itertools

import pytest

from ragplane.query.chunking import Chunker
from ragplane.query.config import bundled_tokenizer_path


@pytest.fixture(scope="module")
def chunker() -> Chunker:
    return Chunker.from_file(bundled_tokenizer_path(), chunk_tokens=64, overlap_tokens=12)


def _tokens(chunker: Chunker, text: str) -> int:
    return len(chunker._tokenizer.encode(text, add_special_tokens=False).ids)


def test_short_text_is_one_chunk(chunker: Chunker) -> None:
    [chunk] = chunker.split("  Pumps move water.  ")
    assert (chunk.index, chunk.text) == (0, "Pumps move water.")


def test_every_chunk_fits_the_token_limit_and_the_text_is_covered(chunker: Chunker) -> None:
    sentences = [f"Sentence number {n} talks about valve {n * 7}." for n in range(60)]
    text = " ".join(sentences)
    chunks = chunker.split(text)
    assert len(chunks) > 3
    assert [c.index for c in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        assert _tokens(chunker, chunk.text) <= 64
    for sentence in sentences:
        assert any(sentence in chunk.text for chunk in chunks), sentence


def test_consecutive_chunks_overlap(chunker: Chunker) -> None:
    text = " ".join(f"word{n}" for n in range(400))
    chunks = chunker.split(text)
    for before, after in itertools.pairwise(chunks):
        assert before.text.split()[-1] in after.text.split()[:12]


def test_chunks_end_at_paragraph_breaks_when_there_is_one(chunker: Chunker) -> None:
    paragraph = "Flanges join pipes with bolts and a gasket between them. " * 3
    text = "\n\n".join([paragraph.strip()] * 6)
    for chunk in chunker.split(text)[:-1]:
        assert chunk.text.endswith("between them."), chunk.text[-40:]


def test_splitting_is_deterministic(chunker: Chunker) -> None:
    text = "Deterministic chunk ids need deterministic chunks. " * 50
    assert chunker.split(text) == chunker.split(text)
