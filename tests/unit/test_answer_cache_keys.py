"""What makes two requests share a cached answer, and what a spend budget does."""

from __future__ import annotations

from dataclasses import replace

from ragplane.query.caching.answers import exact_key, normalise, options_fingerprint
from ragplane.query.pipeline import Question
from ragplane.query.spending import BudgetAction, budget_decision
from ragplane.v1 import common_pb2

QUESTION = Question("acme", "How do I make a venv?", 5, None, [], 0)


def test_case_spacing_and_closing_punctuation_do_not_matter() -> None:
    assert normalise("  How do I   make a VENV?? ") == normalise("how do i make a venv")


def test_options_that_change_the_answer_change_the_fingerprint() -> None:
    base = options_fingerprint(QUESTION, "v1")
    filtered = replace(QUESTION, filters=[common_pb2.MetadataFilter(field="section", equals="x")])
    for other in (
        replace(QUESTION, top_k=6),
        replace(QUESTION, alpha=0.3),
        replace(QUESTION, max_output_tokens=10),
        filtered,
    ):
        assert options_fingerprint(other, "v1") != base
    assert options_fingerprint(QUESTION, "v2") != base


def test_tenant_and_generation_are_part_of_the_key() -> None:
    key = exact_key("acme", "q", "f", 3)
    assert key != exact_key("globex", "q", "f", 3)
    assert key != exact_key("acme", "q", "f", 4)
    assert key == exact_key("acme", "q", "f", 3)


def test_budget_forces_the_small_tier_then_refuses() -> None:
    assert budget_decision(0.5, 1.0, 2.0).action is BudgetAction.NONE
    assert budget_decision(1.0, 1.0, 2.0).action is BudgetAction.SMALL_TIER
    assert budget_decision(2.5, 1.0, 2.0).action is BudgetAction.REFUSE
    assert budget_decision(99, None, None).action is BudgetAction.NONE
