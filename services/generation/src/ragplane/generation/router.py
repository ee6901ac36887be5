"""A cheap, explainable complexity router: which model tier a question deserves."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ragplane.generation.config import Tier

# Words that ask for reasoning over several facts rather than looking one up.
_ANALYSIS_CUES = (
    "compare",
    "comparison",
    "difference",
    "differences",
    "versus",
    "vs",
    "why",
    "trade-off",
    "tradeoff",
    "pros and cons",
    "advantages",
    "disadvantages",
    "explain",
    "analyse",
    "analyze",
    "evaluate",
)
_CUE = re.compile(r"\b(" + "|".join(re.escape(c) for c in _ANALYSIS_CUES) + r")\b", re.IGNORECASE)
# Signals of a hard question besides the cues: its length, its question marks, and the
# passages it needs.
LONG_QUESTION_CHARS = 300
MANY_QUESTIONS = 2
MANY_PASSAGES = 8


@dataclass(frozen=True)
class Route:
    tier: Tier
    reason: str


def route(question: str, passage_count: int) -> Route:
    """Large when any signal of a hard question fires; the reason names every signal seen."""
    signals: list[str] = []
    if len(question) >= LONG_QUESTION_CHARS:
        signals.append(f"long question ({len(question)} chars)")
    questions = question.count("?")
    if questions >= MANY_QUESTIONS:
        signals.append(f"{questions} questions")
    cues = sorted({m.group(1).lower() for m in _CUE.finditer(question)})
    if cues:
        signals.append("analysis cue " + ", ".join(repr(c) for c in cues))
    if passage_count >= MANY_PASSAGES:
        signals.append(f"{passage_count} passages")
    if signals:
        return Route("large", "; ".join(signals))
    return Route("small", "short single factual question")
