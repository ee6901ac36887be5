"""The labelled retrieval set: enough questions, graded labels backed by the documents' text, and
low-overlap questions that really avoid the words of the headings of the pages that answer them."""

from __future__ import annotations

from bench.retrieval.scoring import (
    ANSWERS,
    load_queries,
    missing_evidence,
    shared_heading_words,
)
from tests.conftest import DATA
from tests.reranker import demo_corpus

LABELS = DATA / "retrieval-eval.jsonl"


def test_at_least_150_distinct_questions_each_answered_by_a_document() -> None:
    queries = load_queries(LABELS)
    assert len(queries) >= 150
    assert len({q.query_id for q in queries}) == len(queries)
    assert len({q.question for q in queries}) == len(queries)
    assert all(ANSWERS in q.grades.values() for q in queries)
    assert all(set(q.grades.values()) <= {1, ANSWERS} for q in queries)


def test_some_questions_have_more_than_one_answering_document() -> None:
    several = [q for q in load_queries(LABELS) if list(q.grades.values()).count(ANSWERS) > 1]
    assert len(several) >= 20


def test_every_labelled_document_contains_its_answer_phrase() -> None:
    assert missing_evidence(load_queries(LABELS), demo_corpus()) == []


def test_at_least_60_low_overlap_questions_share_no_word_with_the_answering_headings() -> None:
    low = [q for q in load_queries(LABELS) if q.low_overlap]
    assert len(low) >= 60
    corpus = demo_corpus()
    shared = {q.query_id: words for q in low if (words := shared_heading_words(q, corpus))}
    assert shared == {}
