"""Token-aware chunking with overlap, cut at paragraph or sentence ends where possible."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer

_PARAGRAPH_END = "\n\n"
_SENTENCE_ENDS = (". ", ".\n", "? ", "! ", ":\n")


@dataclass(frozen=True)
class TextChunk:
    index: int
    text: str
    token_count: int


class Chunker:
    """Splits text into windows of at most ``chunk_tokens`` model tokens.

    Consecutive chunks share about ``overlap_tokens`` tokens so that a sentence cut at a
    boundary is still whole in one of them. A window ends at the last paragraph break in its
    second half, else at the last sentence end there, else at the token limit.
    """

    def __init__(self, tokenizer: Tokenizer, chunk_tokens: int, overlap_tokens: int) -> None:
        if overlap_tokens >= chunk_tokens // 2:
            raise ValueError("overlap must be less than half the chunk size")
        self._tokenizer = tokenizer
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        self._chunk_tokens = chunk_tokens
        self._overlap_tokens = overlap_tokens

    @classmethod
    def from_file(cls, path: Path, chunk_tokens: int, overlap_tokens: int) -> Chunker:
        return cls(Tokenizer.from_file(str(path)), chunk_tokens, overlap_tokens)

    def split(self, text: str) -> list[TextChunk]:
        offsets = self._tokenizer.encode(text, add_special_tokens=False).offsets
        chunks: list[TextChunk] = []
        start = 0
        while start < len(offsets):
            end = self._window_end(text, offsets, start)
            piece = text[offsets[start][0] : offsets[end - 1][1]].strip()
            if piece:
                chunks.append(TextChunk(len(chunks), piece, end - start))
            if end >= len(offsets):
                break
            start = self._next_start(offsets, start, end)
        return chunks

    def _next_start(self, offsets: list[tuple[int, int]], start: int, end: int) -> int:
        """Step back by the overlap, then forward to the start of a word."""
        following = max(end - self._overlap_tokens, start + 1)
        while following < end and not _word_starts_at(offsets, following):
            following += 1
        return following

    def _window_end(self, text: str, offsets: list[tuple[int, int]], start: int) -> int:
        """Exclusive token index where the window that begins at ``start`` ends."""
        limit = min(start + self._chunk_tokens, len(offsets))
        if limit == len(offsets):
            return limit
        earliest = start + self._chunk_tokens // 2
        for ends in ((_PARAGRAPH_END,), _SENTENCE_ENDS):
            for end in range(limit, earliest, -1):
                # The last character of the window, then what separates it from the next token.
                gap = text[offsets[end - 1][1] - 1 : offsets[end][0]]
                if any(mark in gap for mark in ends):
                    return end
        for end in range(limit, earliest, -1):
            if _word_starts_at(offsets, end):
                return end
        return limit


def _word_starts_at(offsets: list[tuple[int, int]], index: int) -> bool:
    """True when whitespace separates token ``index`` from the one before (not mid-word)."""
    return index == 0 or offsets[index][0] > offsets[index - 1][1]
