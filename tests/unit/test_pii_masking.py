"""Emails, phone numbers and card numbers never reach a log line; ids and times stay intact."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Callable

import pytest
import structlog

from ragplane.runtime.logs import configure_logging
from ragplane.runtime.pii import EMAIL_PATTERN, MAX_MASKED_CHARS, mask_pii


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("mail jane.doe+x@example.co.uk now", "mail [email] now"),
        ("call +44 20 7946 0958 today", "call [phone] today"),
        ("call (555) 123-4567", "call [phone]"),
        ("card 4111 1111 1111 1111 expires", "card [card] expires"),
        ("card 5500-0000-0000-0004", "card [card]"),
    ],
)
def test_personal_data_is_masked(text: str, masked: str) -> None:
    assert mask_pii(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "request 3f2a9b1234567890abcdef1234567890",
        "at 2026-11-23T13:01:20.123456Z",
        "Python 3.11 and port 50051",
        "top_k 20, 1024 tokens",
    ],
)
def test_ids_times_and_small_numbers_are_left_alone(text: str) -> None:
    assert mask_pii(text) == text


def test_configured_logging_masks_every_field_and_foreign_loggers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("test", "INFO")
    stream = io.StringIO()
    logging.getLogger().handlers[0].setStream(stream)  # type: ignore[attr-defined]
    structlog.get_logger("ragplane.audit").info(
        "audit", query="I am bob@example.com, +1 415 555 0100"
    )
    logging.getLogger("some.library").warning("failed for card 4111111111111111")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["query"] == "I am [email], [phone]"
    assert lines[1]["event"] == "failed for card [card]"


def _finishes_within(seconds: float, work: Callable[[], object]) -> bool:
    """Whether ``work`` ends in time: a hang detector with a generous bound, not a benchmark."""
    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    worker.join(seconds)
    return not worker.is_alive()


@pytest.mark.parametrize(
    "text",
    ["a" * 1_000_000, "x." * 500_000, "a@" * 500_000, "1 " * 500_000],
    ids=["word-run", "dotted-run", "at-run", "digit-groups"],
)
def test_a_megabyte_of_hostile_text_is_masked_at_once(text: str) -> None:
    # The email pattern was quadratic on a run of word characters (1 MB: about two hours).
    assert _finishes_within(5, lambda: mask_pii(text))


def test_the_email_pattern_itself_is_linear_on_a_long_word() -> None:
    # Masking cuts long strings first; the pattern must not rely on that.
    run = "a" * 1_000_000 + " bob@example.org"
    found: list[str] = []
    assert _finishes_within(5, lambda: found.extend(EMAIL_PATTERN.findall(run)))
    assert found == ["bob@example.org"]


def test_long_values_are_cut_before_masking_and_say_so() -> None:
    masked = mask_pii("bob@example.org " + "z" * 10_000)
    assert masked.startswith("[email] zzz")
    assert masked.endswith(f"({10_016 - MAX_MASKED_CHARS:,} characters cut)")
