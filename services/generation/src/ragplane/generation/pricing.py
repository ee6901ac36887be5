"""Token counts and cost in US dollars."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

from tokenizers import Tokenizer

from ragplane.generation.config import ProviderSettings

# Tokenizers of current models average 3.5-4.5 characters per English token; 3 over-counts on
# purpose, so that a prompt estimated to fit really fits and a locally counted cost is not low.
ASCII_CHARS_PER_TOKEN = 3
# Chat templates add role markers around every message.
TOKENS_PER_MESSAGE = 4


# Tokens in a text, by a model's tokenizer or by the estimate.
TokenCount = Callable[[str], int]


def estimate_tokens(text: str) -> int:
    """A count no tokenizer exceeds by much: 3 ASCII characters per token, and every other
    character (CJK, accents, emoji) as many tokens as its UTF-8 bytes, the most a byte-level
    BPE makes of it. Per-character estimates for English are wrong by 3x for CJK."""
    if text.isascii():
        return math.ceil(len(text) / ASCII_CHARS_PER_TOKEN)
    ascii_chars = len(text.encode("ascii", "ignore"))
    other_bytes = len(text.encode("utf-8", "replace")) - ascii_chars
    return math.ceil(ascii_chars / ASCII_CHARS_PER_TOKEN) + other_bytes


def tokenizer_count(tokenizer_json: Path) -> TokenCount:
    """Counts with a model's own tokenizer (a Hugging Face tokenizer.json, read once)."""
    tokenizer = Tokenizer.from_file(str(tokenizer_json))
    # A tokenizer.json may carry its model's padding and truncation: both would hide the count.
    tokenizer.no_padding()
    tokenizer.no_truncation()

    def count(text: str) -> int:
        return len(tokenizer.encode(text, add_special_tokens=False).ids)

    return count


def estimate_prompt_tokens(
    messages: Sequence[dict[str, str]], count: TokenCount = estimate_tokens
) -> int:
    return sum(count(m["content"]) + TOKENS_PER_MESSAGE for m in messages)


def cost_usd(provider: ProviderSettings, input_tokens: int, output_tokens: int) -> float:
    return (
        input_tokens * provider.input_price_per_mtok_usd
        + output_tokens * provider.output_price_per_mtok_usd
    ) / 1_000_000
