"""The LLM judge's reply parser, its question, and its settings."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ragplane.query.config import QuerySettings
from ragplane.query.quality.confidence import LARGE_TIER
from ragplane.query.quality.judge import TOKENS_PER_VERDICT, judge_question, parse_verdicts


@pytest.mark.parametrize(
    "reply",
    [
        "1: yes\n2: no\n3: yes",
        # What SmolLM2-135M writes.
        "1. Yes.\n2. No.\n3. Yes.",
        "**1)** YES\n**2)** no\n**3)** Yes",
        "Statement 1 - yes\nStatement 2 - no\nStatement 3 - yes",
        # In another order, with a preamble, and a model that runs on past the last statement.
        "Here are my verdicts:\n\n3: yes\n1: yes\n2: no\n4: no",
        # Unnumbered, in order.
        "Yes\nNo\nYes.",
    ],
)
def test_replies_in_the_shapes_models_write_are_read(reply: str) -> None:
    assert parse_verdicts(reply, 3) == [True, False, True]


@pytest.mark.parametrize(
    "reply",
    [
        "",
        "The passages support the answer.",
        # A statement without a verdict.
        "1: yes\n3: yes",
        # Two verdicts for one statement.
        "1: yes\n2: no\n2: yes\n3: yes",
        # One line saying both.
        "1: yes\n2: yes or no\n3: yes",
        # Unnumbered, one too few.
        "yes\nno",
    ],
)
def test_replies_without_one_clear_verdict_per_statement_are_unreadable(reply: str) -> None:
    assert parse_verdicts(reply, 3) is None


def test_a_word_that_merely_contains_yes_or_no_is_no_verdict() -> None:
    assert parse_verdicts("1: nothing\n2: eyes", 2) is None
    assert parse_verdicts("1: not stated, so no\n2: yes", 2) == [False, True]


def test_the_question_numbers_the_statements_and_asks_for_a_short_deterministic_reply() -> None:
    question = judge_question("acme", ["Venv makes environments.", "It needs pip."], LARGE_TIER)
    assert question.text.endswith("Statements:\n1. Venv makes environments.\n2. It needs pip.")
    assert '"1: yes"' in question.text
    assert (question.tenant, question.tier, question.temperature) == ("acme", LARGE_TIER, 0.0)
    assert question.max_output_tokens == 2 * TOKENS_PER_VERDICT + 4


def test_the_judge_is_off_by_default_and_validated_at_start_up() -> None:
    assert QuerySettings().judge_settings() is None
    judge = QuerySettings(faithfulness_judge="on", faithfulness_judge_tier="large")
    assert judge.judge_settings() is not None
    with pytest.raises(ValidationError, match="QUERY_FAITHFULNESS_JUDGE=on needs"):
        QuerySettings(faithfulness_judge="on", faithfulness_enabled=False)
    with pytest.raises(ValidationError, match="faithfulness_judge"):
        QuerySettings(faithfulness_judge="sometimes")  # type: ignore[arg-type]
