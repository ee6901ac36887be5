"""The answer of last resort: first sentences of the top passages, with their citations."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ragplane.generation.prompt import ContextPassage

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
MAX_SENTENCE_CHARS = 300


@dataclass(frozen=True)
class ExtractiveAnswer:
    text: str
    cited: list[ContextPassage]


def first_sentence(text: str) -> str:
    collapsed = " ".join(text.split())
    sentence = _SENTENCE_END.split(collapsed, maxsplit=1)[0]
    if len(sentence) > MAX_SENTENCE_CHARS:
        sentence = sentence[:MAX_SENTENCE_CHARS].rsplit(" ", 1)[0] + " ..."
    return sentence


def extractive_answer(passages: Sequence[ContextPassage], count: int) -> ExtractiveAnswer:
    """One sentence per top passage, each followed by its passage number as the model would."""
    parts: list[str] = []
    cited: list[ContextPassage] = []
    for number, passage in enumerate(passages[:count], start=1):
        sentence = first_sentence(passage.text)
        if sentence:
            parts.append(f"{sentence} [{number}]")
            cited.append(passage)
    if not parts:
        return ExtractiveAnswer("No answer could be generated and no passages were given.", [])
    return ExtractiveAnswer(" ".join(parts), cited)
