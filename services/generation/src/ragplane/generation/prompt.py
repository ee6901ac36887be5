"""The prompt: a fixed instruction prefix (one per prompt version), numbered passages, then the
question."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

# Kept byte-for-byte stable so that providers with prompt caching can reuse the prefix.
SYSTEM_PROMPT = (
    "You answer questions using only the numbered context passages you are given. "
    "After each sentence, cite the passages it relies on with their numbers in square "
    "brackets, for example [1] or [2][3]. If the passages do not contain the answer, "
    "say that you do not know."
)
# The instructions by prompt version (the contract's PromptVersion values): a new version is
# added beside the old ones, so that callers can compare them on the same questions.
PROMPT_CITED = 1
PROMPT_CONCISE = 2
SYSTEM_PROMPTS = {
    PROMPT_CITED: SYSTEM_PROMPT,
    PROMPT_CONCISE: f"{SYSTEM_PROMPT} Answer in at most three sentences.",
}

_CITATION = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")


@dataclass(frozen=True)
class ContextPassage:
    document_id: str
    chunk_id: str
    text: str
    score: float


def numbered_passage(number: int, passage: ContextPassage) -> str:
    return f"[{number}] (from {passage.document_id})\n{passage.text.strip()}"


def build_messages(
    question: str, passages: Sequence[ContextPassage], system: str = SYSTEM_PROMPT
) -> list[dict[str, str]]:
    numbered = "\n\n".join(
        numbered_passage(number, passage) for number, passage in enumerate(passages, start=1)
    )
    user = f"Context passages:\n\n{numbered}\n\nQuestion: {question.strip()}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def cited_passage_numbers(answer: str, passage_count: int) -> list[int]:
    """Passage numbers the answer cites, in order of first citation, ignoring out-of-range ones."""
    cited: list[int] = []
    for match in _CITATION.finditer(answer):
        for part in match.group(1).split(","):
            number = int(part)
            if 1 <= number <= passage_count and number not in cited:
                cited.append(number)
    return cited
