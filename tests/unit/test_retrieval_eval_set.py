"""The labelled retrieval set: enough questions, and every label backed by the document's text."""

from __future__ import annotations

from bench.retrieval.scoring import load_queries, missing_evidence
from tests.conftest import DATA
from tests.reranker import demo_corpus

LABELS = DATA / "retrieval-eval.jsonl"


def test_at_least_fifty_distinct_questions_each_with_a_relevant_document() -> None:
    queries = load_queries(LABELS)
    assert len(queries) >= 50
    assert len({q.query_id for q in queries}) == len(queries)
    assert len({q.question for q in queries}) == len(queries)
    assert all(q.evidence for q in queries)


def test_every_labelled_document_contains_its_answer_phrase() -> None:
    assert missing_evidence(load_queries(LABELS), demo_corpus()) == []
