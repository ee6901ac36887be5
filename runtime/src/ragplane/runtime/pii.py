"""Masking of personal data (emails, phone numbers, card numbers) in log lines and audit records.

Patterns, not a classifier: they catch the usual written forms and are checked against ids and
timestamps that every log line carries (hex request ids, ISO dates), which must survive intact.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, MutableMapping
from typing import Any

EMAIL_MASK = "[email]"
PHONE_MASK = "[phone]"
CARD_MASK = "[card]"

# Linear time: a match may only start where a run of local-part characters starts (the
# lookbehind), and the possessive ++ never backtracks into that run. Without both, a long run of
# word characters with no "@" costs quadratic time (a megabyte: hours).
EMAIL_PATTERN = re.compile(r"(?<![\w.+-])[\w.+-]++@[\w-]+(?:\.[\w-]+)+")
# 13-19 digits, optionally grouped by single spaces or dashes (as cards are printed).
_CARD = re.compile(r"(?<![\w+])\d(?:[ -]?\d){12,18}(?![\w])")
# An optional +country code, then digit groups separated by spaces, dots, dashes or brackets.
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d(?:[ .-]?\d){5,14}(?![\w])"
)
_MIN_PHONE_DIGITS = 7
# ISO dates and times look like digit groups; they are never phone numbers.
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
# Longer strings are cut before masking: a log line needs no more, and masking stays cheap.
MAX_MASKED_CHARS = 4_096


def _luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _mask_card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return CARD_MASK if _luhn_valid(digits) else match.group(0)


def _mask_phone(match: re.Match[str]) -> str:
    text = match.group(0)
    if _ISO_DATE.match(text) or sum(c.isdigit() for c in text) < _MIN_PHONE_DIGITS:
        return text
    return PHONE_MASK


def mask_pii(text: str) -> str:
    """The text with every email, card number and phone number replaced by a placeholder.

    Text longer than MAX_MASKED_CHARS is cut to that length first, and says how much was cut.
    """
    if len(text) > MAX_MASKED_CHARS:
        text = f"{text[:MAX_MASKED_CHARS]}... ({len(text) - MAX_MASKED_CHARS:,} characters cut)"
    text = EMAIL_PATTERN.sub(EMAIL_MASK, text)
    text = _CARD.sub(_mask_card, text)
    return _PHONE.sub(_mask_phone, text)


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return mask_pii(value)
    if isinstance(value, Mapping):
        return {key: _masked(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(item) for item in value]
    return value


def mask_pii_processor(
    _: Any, __: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: masks personal data in every string of the event, message included."""
    for key, value in event.items():
        event[key] = _masked(value)
    return event
