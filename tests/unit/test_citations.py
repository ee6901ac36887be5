"""Citations parsed from the model's answer."""

from __future__ import annotations

from ragplane.generation.prompt import ContextPassage, build_messages, cited_passage_numbers


def test_citations_in_order_of_first_mention_without_duplicates() -> None:
    answer = "Use venv [2]. It creates folders [1][2]. See also [3, 1]."
    assert cited_passage_numbers(answer, passage_count=3) == [2, 1, 3]


def test_numbers_outside_the_passages_are_ignored() -> None:
    assert cited_passage_numbers("As [0] and [4] and [x] say, [1].", passage_count=3) == [1]


def test_prompt_numbers_the_passages_and_keeps_a_fixed_prefix() -> None:
    passages = [
        ContextPassage("a.md", "a.md#0", "Alpha.", 1.0),
        ContextPassage("b.md", "b.md#0", "Beta.", 0.5),
    ]
    first = build_messages("What is alpha?", passages)
    second = build_messages("Another question?", passages[:1])
    assert first[0] == second[0]
    assert "[1] (from a.md)\nAlpha." in first[1]["content"]
    assert "[2] (from b.md)\nBeta." in first[1]["content"]
    assert first[1]["content"].endswith("Question: What is alpha?")
