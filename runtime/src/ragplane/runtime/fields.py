"""Rules for request fields that more than one service checks, so each refuses for one reason.

The query service checks a request at its edge with the same rule the service behind it would
apply: a bad tenant name is refused before it costs a rate-limit token, a Redis key or an
embedding call.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from ragplane.runtime.errors import InvalidArgument

# Weaviate tenant names; fullmatch, so that a trailing newline is not accepted as "$" would.
TENANT_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
TENANT_RULE = "must be 1-64 letters, digits, '-' or '_', starting with a letter or digit"
# The range OpenAI-compatible providers accept.
MAX_TEMPERATURE = 2.0


def check_tenant(tenant: str, field: str = "tenant") -> None:
    if not tenant:
        raise InvalidArgument.of(field, "is required")
    if TENANT_PATTERN.fullmatch(tenant) is None:
        raise InvalidArgument.of(field, TENANT_RULE)


def check_temperature(temperature: float | None) -> None:
    """Unset is fine (the provider's default); set, it must be finite and within 0-2."""
    if temperature is None:
        return
    if not (math.isfinite(temperature) and 0.0 <= temperature <= MAX_TEMPERATURE):
        raise InvalidArgument.of(
            "temperature", f"must be between 0 and {MAX_TEMPERATURE:g}, got {temperature}"
        )


def check_alpha(alpha: float | None) -> None:
    if alpha is not None and not (math.isfinite(alpha) and 0.0 <= alpha <= 1.0):
        raise InvalidArgument.of("alpha", f"must be between 0 and 1, got {alpha}")


def check_top_k(top_k: int, max_top_k: int, zero_means_default: bool) -> None:
    low = 0 if zero_means_default else 1
    if not low <= top_k <= max_top_k:
        default = " (0 for the default)" if zero_means_default else ""
        raise InvalidArgument.of(
            "top_k", f"must be between 1 and {max_top_k}{default}, got {top_k}"
        )


def check_min_score(min_score: float | None) -> None:
    if min_score is not None and not (math.isfinite(min_score) and min_score >= 0):
        raise InvalidArgument.of("min_score", f"must be a finite number >= 0, got {min_score}")


def check_rerank_candidates(rerank_candidates: int) -> None:
    if rerank_candidates < 0:
        raise InvalidArgument.of(
            "rerank_candidates", f"must be 0 (service default) or more, got {rerank_candidates}"
        )


def check_max_output_tokens(max_output_tokens: int, limit: int) -> None:
    """0 asks for the generation service's default; otherwise at most ``limit`` tokens."""
    if not 0 <= max_output_tokens <= limit:
        raise InvalidArgument.of(
            "max_output_tokens", f"must be between 0 and {limit}, got {max_output_tokens}"
        )


def check_question(text: str, field: str, max_chars: int) -> None:
    """A question: not blank, within ``max_chars``, and with something to read in it."""
    if not text.strip():
        raise InvalidArgument.of(field, "is required and must not be blank")
    if len(text) > max_chars:
        raise InvalidArgument.of(field, f"has {len(text)} characters; the limit is {max_chars}")
    require_words(text, field)


def require_words(text: str, field: str) -> None:
    """Text that something is meant to be read from: at least one letter or digit.

    Blank strings, control characters and invisible spaces ask nothing and index nothing.
    """
    if not any(char.isalnum() for char in text):
        raise InvalidArgument.of(field, "has no letter or digit")


def check_vector(values: Sequence[float], dimensions: int, field: str) -> None:
    if len(values) != dimensions:
        raise InvalidArgument.of(
            field, f"has {len(values)} values; the embedding model's vectors have {dimensions}"
        )
    if not all(math.isfinite(value) for value in values):
        raise InvalidArgument.of(field, "holds NaN or infinity")
