"""Fitting the prompt into a provider's context window by dropping the lowest-ranked passages."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ragplane.generation.pricing import TokenCount, estimate_prompt_tokens, estimate_tokens
from ragplane.generation.prompt import ContextPassage, build_messages


@dataclass(frozen=True)
class FittedPrompt:
    messages: list[dict[str, str]]
    # The passages kept, a prefix of the ranked input, so that [n] keeps meaning passage n.
    passages: list[ContextPassage]
    dropped: int
    estimated_tokens: int


def fit_prompt(
    question: str,
    passages: Sequence[ContextPassage],
    prompt_budget_tokens: int,
    count: TokenCount = estimate_tokens,
) -> FittedPrompt | None:
    """The largest prefix of ``passages`` whose prompt fits the budget; None if none fits.

    ``count`` is the provider's tokenizer where one is configured, else the estimate.
    """
    kept = list(passages)
    while True:
        messages = build_messages(question, kept)
        tokens = estimate_prompt_tokens(messages, count)
        if tokens <= prompt_budget_tokens:
            return FittedPrompt(messages, kept, len(passages) - len(kept), tokens)
        if not kept:
            return None
        # Passages arrive best first: the last one matters least.
        kept.pop()
