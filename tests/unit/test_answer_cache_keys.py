"""What makes two requests share a cached answer, and what a spend budget does."""

from __future__ import annotations

from dataclasses import replace

from ragplane.query.caching.answers import exact_key, normalise, options_fingerprint
from ragplane.query.domain import MetadataFilter, Question, ValueBounds
from ragplane.query.spending import SpendAction, spend_decision

QUESTION = Question("acme", "How do I make a venv?", 5)


def test_case_spacing_and_closing_punctuation_do_not_matter() -> None:
    assert normalise("  How do I   make a VENV?? ") == normalise("how do i make a venv")


def test_every_option_that_changes_the_answer_changes_the_fingerprint() -> None:
    base = options_fingerprint(QUESTION, "v1")
    changed = {
        "top_k": replace(QUESTION, top_k=6),
        "alpha": replace(QUESTION, alpha=0.3),
        "equals filter": replace(QUESTION, filters=(MetadataFilter("section", equals="x"),)),
        "any_of filter": replace(QUESTION, filters=(MetadataFilter("section", any_of=("x",)),)),
        "range filter": replace(
            QUESTION, filters=(MetadataFilter("year", bounds=ValueBounds(greater_than="2020")),)
        ),
        "fusion_type": replace(QUESTION, fusion_type=2),
        "rerank": replace(QUESTION, rerank=1),
        "rerank_candidates": replace(QUESTION, rerank_candidates=50),
        "min_score": replace(QUESTION, min_score=0.4),
        "max_output_tokens": replace(QUESTION, max_output_tokens=10),
        "temperature": replace(QUESTION, temperature=0.0),
        "tier": replace(QUESTION, tier=2),
        "prompt_version": replace(QUESTION, prompt_version=2),
    }
    fingerprints = {name: options_fingerprint(q, "v1") for name, q in changed.items()}
    assert [name for name, fp in fingerprints.items() if fp == base] == []
    assert len(set(fingerprints.values())) == len(changed)
    assert options_fingerprint(QUESTION, "v2") != base


def test_filter_order_does_not_change_the_fingerprint() -> None:
    a, b = MetadataFilter("section", equals="x"), MetadataFilter("year", equals="2020")
    assert options_fingerprint(replace(QUESTION, filters=(a, b)), "v1") == options_fingerprint(
        replace(QUESTION, filters=(b, a)), "v1"
    )


def test_tenant_and_index_version_are_part_of_the_key() -> None:
    key = exact_key("acme", "q", "f", 3)
    assert key != exact_key("globex", "q", "f", 3)
    assert key != exact_key("acme", "q", "f", 4)
    assert key == exact_key("acme", "q", "f", 3)


def test_spend_budget_forces_the_small_tier_then_refuses() -> None:
    assert spend_decision(0.5, 1.0, 2.0).action is SpendAction.NONE
    assert spend_decision(1.0, 1.0, 2.0).action is SpendAction.SMALL_TIER
    assert spend_decision(2.5, 1.0, 2.0).action is SpendAction.REFUSE
    assert spend_decision(99, None, None).action is SpendAction.NONE
