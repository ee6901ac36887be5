"""Fitting the prompt into a provider's context window: the best passages first, as many as fit.

Passages arrive best first. They are kept in that order while they fit whole; the first one that
does not fit is cut to the room left (when that room is worth a passage), and the rest are left
out. Each passage is counted once, so fitting 50 long passages costs 50 counts, not 50 squared.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from ragplane.generation.pricing import TokenCount, estimate_prompt_tokens, estimate_tokens
from ragplane.generation.prompt import (
    SYSTEM_PROMPT,
    ContextPassage,
    build_messages,
    numbered_passage,
)

# Less room than this is not worth a cut passage: the model would get a fragment.
MIN_CUT_PASSAGE_TOKENS = 48
# Tokens between two numbered passages (the blank line) beyond the passages' own.
_SEPARATOR_TOKENS = 2


@dataclass(frozen=True)
class FittedPrompt:
    messages: list[dict[str, str]]
    # The passages kept, a prefix of the ranked input, so that [n] keeps meaning passage n.
    passages: list[ContextPassage]
    # Passages left out whole, and whether the last one kept was cut short.
    dropped: int
    cut: bool
    estimated_tokens: int

    @property
    def trimmed(self) -> bool:
        return self.dropped > 0 or self.cut


def fit_prompt(
    question: str,
    passages: Sequence[ContextPassage],
    prompt_budget_tokens: int,
    count: TokenCount = estimate_tokens,
    system: str = SYSTEM_PROMPT,
) -> FittedPrompt | None:
    """The best passages that fit the budget with the question; None if the question alone
    does not fit. ``count`` is the provider's tokenizer where one is configured; ``system`` the
    prompt version's instructions."""
    used = estimate_prompt_tokens(build_messages(question, [], system), count)
    if used > prompt_budget_tokens:
        return None
    kept: list[ContextPassage] = []
    cut = False
    for passage in passages:
        number = len(kept) + 1
        cost = count(numbered_passage(number, passage)) + _SEPARATOR_TOKENS
        room = prompt_budget_tokens - used
        if cost <= room:
            kept.append(passage)
            used += cost
            continue
        # The sum of the parts over-counts a little: the whole prompt decides the last one.
        whole = build_messages(question, [*kept, passage], system)
        if estimate_prompt_tokens(whole, count) <= prompt_budget_tokens:
            kept.append(passage)
            break
        shortened = _cut_to(passage, number, room - _SEPARATOR_TOKENS, count)
        if shortened is not None:
            kept.append(shortened)
            cut = True
        break
    return _checked(question, passages, kept, cut, prompt_budget_tokens, count, system)


def _cut_to(
    passage: ContextPassage, number: int, room: int, count: TokenCount
) -> ContextPassage | None:
    """The passage's beginning, cut to fit ``room`` tokens; None when the room is too small."""
    if room < MIN_CUT_PASSAGE_TOKENS:
        return None
    text = passage.text.strip()
    full = count(numbered_passage(number, passage))
    length = int(len(text) * room / max(full, 1))
    # Tokens are not spread evenly over the text: shrink until the count agrees.
    for _ in range(8):
        shortened = replace(passage, text=text[:length])
        if count(numbered_passage(number, shortened)) <= room:
            return shortened
        length = int(length * 0.85)
    return None


def _checked(
    question: str,
    passages: Sequence[ContextPassage],
    kept: list[ContextPassage],
    cut: bool,
    budget: int,
    count: TokenCount,
    system: str,
) -> FittedPrompt:
    """Count the whole prompt once; joined text can count a little more than its parts."""
    while True:
        messages = build_messages(question, kept, system)
        tokens = estimate_prompt_tokens(messages, count)
        if tokens <= budget or not kept:
            return FittedPrompt(messages, kept, len(passages) - len(kept), cut, tokens)
        kept = kept[:-1]
        cut = False
