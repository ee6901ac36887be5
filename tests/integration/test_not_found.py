"""Retrieval confidence over pages of the demo corpus: questions the documents cannot answer get
the not-found answer (no LLM call), the others are still answered; both counted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ragplane.cli.stack import Stack
from ragplane.query.pipeline import NOT_FOUND_ANSWER
from ragplane.v1 import query_pb2
from tests.integration.corpus import VENV_TOP_K
from tests.integration.orchestrator import QueryService, query_service

# About the tenant's pages (library/venv, tutorial/venv, tutorial/interpreter).
ANSWERABLE = [
    "How do I create a virtual environment with venv?",
    "How do I activate a virtual environment on Windows?",
    "How do I start the Python interpreter?",
    "How do I exit the interactive interpreter?",
    "What is the default encoding of Python source files?",
    "How do I install packages into a virtual environment with pip?",
    "Where is the Python interpreter usually installed on Unix?",
    "How can I pass command line arguments to a script?",
    "How do I deactivate a virtual environment?",
    "What is interactive mode in Python?",
]
# About nothing in them.
UNANSWERABLE = [
    "What is the boiling point of water at the top of Mount Everest?",
    "Who won the 2018 FIFA World Cup final?",
    "How do I configure nginx as a reverse proxy for a web app?",
    "What is the capital city of Australia?",
    "How long should sourdough bread proof before baking?",
    "How do I change the engine oil in a diesel car?",
    "What are the common symptoms of influenza?",
    "How many moons does Jupiter have?",
    "Which painter created the Mona Lisa?",
    "How do I grow tomatoes on a balcony?",
]
ROUTES = "ragplane_query_confidence_routes_total"


@pytest.fixture(scope="module")
def routing(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[QueryService]:
    """A query service of this module's with confidence routing on (no answer caches)."""
    log_dir: Path = tmp_path_factory.mktemp("routing")
    with query_service(stack, log_dir, confidence_routing="true") as service:
        yield service


def test_questions_the_documents_cannot_answer_get_the_not_found_answer(
    routing: QueryService, docs_tenant: str
) -> None:
    for question in UNANSWERABLE:
        response = routing.ask_briefly(docs_tenant, question)
        assert response.answer == NOT_FOUND_ANSWER, question
        assert response.quality.confidence_route == query_pb2.CONFIDENCE_ROUTE_NOT_FOUND
        assert response.quality.retrieval_confidence < 0.3
        assert not response.citations
        assert (response.provider, response.usage.output_tokens) == ("", 0)
    assert routing.process.metric(ROUTES, 'route="not_found"') == len(UNANSWERABLE)


def test_questions_the_documents_answer_are_still_answered(
    routing: QueryService, docs_tenant: str
) -> None:
    routes = []
    for question in ANSWERABLE:
        # Three passages, as the answer-quality tests ask: a shorter prompt to read.
        response = routing.ask_briefly(docs_tenant, question, top_k=VENV_TOP_K)
        assert response.answer != NOT_FOUND_ANSWER, question
        assert response.citations
        assert response.provider
        routes.append(response.quality.confidence_route)
    assert set(routes) <= {
        query_pb2.CONFIDENCE_ROUTE_ANSWERED,
        query_pb2.CONFIDENCE_ROUTE_ESCALATED,
    }
    escalated = routes.count(query_pb2.CONFIDENCE_ROUTE_ESCALATED)
    assert routing.process.metric(ROUTES, 'route="escalated"') == escalated
    assert routing.process.metric(ROUTES, 'route="answered"') == len(ANSWERABLE) - escalated
