"""Lexical evidence: an answer split into cited sentences, and the words a passage must hold.

A claim that carries a number, a name or a code identifier is only supported by a passage that
carries the same one: embeddings rate "Python 3.6" and "Python 3.8" as near identical, a
reader does not.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_CITATION = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
# A sentence ends at . ! or ? followed by a space or the end, its citations included
# ("... on PATH. [2]" and "... on PATH [2]." both end after the [2]).
_SENTENCE = re.compile(r"\S.*?(?:[.!?](?:\s*\[\d+(?:\s*,\s*\d+)*\])*|$)(?=\s|$)", re.DOTALL)
# Left where a citation stood between the last word and the full stop ("bin [1].").
_SPACE_BEFORE_END = re.compile(r"\s+([.!?])$")
_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*(?!\w)")
_IDENTIFIERS = (
    re.compile(r"`([^`]+)`"),
    # Dotted names (os.path.join), names with underscores, camelCase and CapWords with an
    # inner capital (ArgumentParser), command-line flags.
    re.compile(r"\b[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+"),
    re.compile(r"\b\w*_\w+"),
    re.compile(r"\b[A-Za-z][a-z0-9]+[A-Z]\w*"),
    re.compile(r"(?<!\S)--?[A-Za-z][\w-]*"),
)
_CAPITALISED = re.compile(r"\b[A-Z][\w-]*")
_WORD = re.compile(r"[a-z][a-z0-9_]+")
_STOPWORD_TEXT = """
about above after again against all also and any are because been before being below
between both but can cannot could did does doing down during each even every few for from
further had has have having here how into its itself just like more most much must never not
now off once only other our out over own same should since some such than that the their
them then there these they this those through too under until upon very was way were what
when where which while who whom why will with within without would yes yet you your"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


@dataclass(frozen=True)
class Sentence:
    """One sentence of an answer: its text without the citation marks, and what it cites."""

    text: str
    # Passage numbers as the answer writes them, from 1.
    cited: tuple[int, ...]


def split_sentences(answer: str) -> list[Sentence]:
    sentences = []
    for match in _SENTENCE.finditer(answer):
        raw = match.group(0)
        cited = tuple(
            dict.fromkeys(int(n) for group in _CITATION.findall(raw) for n in group.split(","))
        )
        text = _SPACE_BEFORE_END.sub(r"\1", " ".join(_CITATION.sub(" ", raw).split()))
        if any(character.isalnum() for character in text):
            sentences.append(Sentence(text, cited))
    return sentences


def key_terms(sentence: str) -> set[str]:
    """Numbers, code identifiers and names: each must appear in a supporting passage."""
    terms = {m.group(0) for m in _NUMBER.finditer(sentence)}
    for pattern in _IDENTIFIERS:
        terms.update(m.group(m.lastindex or 0).strip() for m in pattern.finditer(sentence))
    # A capital at the start says nothing: the sentence's first word is not taken as a name.
    stripped = sentence.lstrip()
    terms.update(m.group(0) for m in _CAPITALISED.finditer(stripped) if m.start() > 0)
    return {term.rstrip(".,:;") for term in terms if term.rstrip(".,:;")}


def _stem(word: str) -> str:
    # Crude on purpose: "creates", "created" and "creating" meet at "creat".
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> set[str]:
    return {_stem(w) for w in _WORD.findall(text.lower()) if w not in _STOPWORDS}


@dataclass(frozen=True)
class PassageEvidence:
    """What a set of passages offers to check a sentence against, computed once per answer."""

    text: str
    words: frozenset[str]
    sentences: tuple[str, ...]

    @classmethod
    def of(cls, passages: Iterable[str]) -> PassageEvidence:
        texts = list(passages)
        joined = " ".join(" ".join(texts).split())
        sentences = tuple(s.text for text in texts for s in split_sentences(text))
        return cls(joined, frozenset(content_words(joined)), sentences)

    def missing_terms(self, sentence: str) -> set[str]:
        """The sentence's key terms that no passage holds (names compared case-blind)."""
        lowered = self.text.lower()
        return {
            term
            for term in key_terms(sentence)
            if not re.search(rf"(?<!\w)(?<!\d[.,]){re.escape(term.lower())}(?!\w|[.,]\d)", lowered)
        }

    def coverage(self, sentence: str) -> float:
        """Share of the sentence's content words found in the passages."""
        words = content_words(sentence)
        if not words:
            return 1.0
        return len(words & self.words) / len(words)

    def closest_sentence(self, sentence: str) -> str:
        """The passage sentence sharing the most content words: what an embedding compares."""
        words = content_words(sentence)
        return max(self.sentences, key=lambda s: len(words & content_words(s)), default="")
