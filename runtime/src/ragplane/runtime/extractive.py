"""The answer of last resort: first sentences of the top passages, with their citations.

Both the generation service (every provider failed) and the query service (the generation
service itself is down or out of time) fall back to it, so a caller always gets a cited answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
MAX_SENTENCE_CHARS = 300
NO_PASSAGES_TEXT = "No answer could be generated and no passages were given."


class HasText(Protocol):
    @property
    def text(self) -> str: ...


PassageT = TypeVar("PassageT", bound=HasText)


@dataclass(frozen=True)
class ExtractiveAnswer(Generic[PassageT]):
    text: str
    cited: list[PassageT]


def first_sentence(text: str) -> str:
    collapsed = " ".join(text.split())
    sentence = _SENTENCE_END.split(collapsed, maxsplit=1)[0]
    if len(sentence) > MAX_SENTENCE_CHARS:
        sentence = sentence[:MAX_SENTENCE_CHARS].rsplit(" ", 1)[0] + " ..."
    return sentence


def extractive_answer(passages: Sequence[PassageT], count: int) -> ExtractiveAnswer[PassageT]:
    """One sentence per top passage, each followed by its passage number as the model would."""
    parts: list[str] = []
    cited: list[PassageT] = []
    for number, passage in enumerate(passages[:count], start=1):
        sentence = first_sentence(passage.text)
        if sentence:
            parts.append(f"{sentence} [{number}]")
            cited.append(passage)
    if not parts:
        return ExtractiveAnswer(NO_PASSAGES_TEXT, [])
    return ExtractiveAnswer(" ".join(parts), cited)
