"""Token counts and cost in US dollars."""

from __future__ import annotations

import math
from collections.abc import Sequence

from ragplane.generation.config import ProviderSettings

# Tokenizers of current models average 3.5-4.5 characters per English token; 3 over-counts on
# purpose, so that a prompt estimated to fit really fits and a locally counted cost is not low.
CHARS_PER_TOKEN = 3
# Chat templates add role markers around every message.
TOKENS_PER_MESSAGE = 4


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def estimate_prompt_tokens(messages: Sequence[dict[str, str]]) -> int:
    return sum(estimate_tokens(m["content"]) + TOKENS_PER_MESSAGE for m in messages)


def cost_usd(provider: ProviderSettings, input_tokens: int, output_tokens: int) -> float:
    return (
        input_tokens * provider.input_price_per_mtok_usd
        + output_tokens * provider.output_price_per_mtok_usd
    ) / 1_000_000
