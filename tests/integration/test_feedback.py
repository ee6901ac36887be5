"""Feedback on an answer: stored with the answer's identifiers, comment masked, counted."""

from __future__ import annotations

import json
from functools import partial

import grpc
import pytest

from ragplane.cli.stack import Stack
from ragplane.query.quality.feedback import feedback_key
from ragplane.v1 import query_pb2, query_pb2_grpc
from tests.integration.errors import expect_status
from tests.integration.hostile import query_redis
from tests.integration.services import metric

FEEDBACK = "ragplane_query_feedback_total"


def test_feedback_round_trip_keeps_the_answers_identifiers_and_masks_the_comment(
    stack: Stack, query: query_pb2_grpc.QueryServiceStub, docs_tenant: str
) -> None:
    answer = query.Query(
        query_pb2.QueryRequest(
            tenant=docs_tenant, query="Which module creates virtual environments?"
        ),
        timeout=120,
    )
    tier = "small" if answer.tier == 1 else "none"
    labels = f'rating="down",tier="{tier}"'
    before = metric(stack.ports.query_metrics, FEEDBACK, labels)
    reply = query.Feedback(
        query_pb2.FeedbackRequest(
            tenant=docs_tenant,
            request_id=answer.request_id,
            rating=query_pb2.RATING_DOWN,
            comment="Wrong page; write to jane.doe@example.com",
        ),
        timeout=10,
    )
    assert reply.stored_comment == "Wrong page; write to [email]"
    stored = json.loads(query_redis(stack).lindex(feedback_key(docs_tenant), -1) or b"{}")
    assert (stored["rating"], stored["comment"]) == ("down", reply.stored_comment)
    kept = stored["answer"]
    assert kept["request_id"] == answer.request_id
    assert kept["chunk_ids"] == [c.chunk_id for c in answer.citations]
    assert (kept["provider"], kept["model"]) == (answer.provider, answer.model)
    assert kept["faithfulness"] == pytest.approx(answer.quality.faithfulness)
    assert metric(stack.ports.query_metrics, FEEDBACK, labels) == before + 1


def test_feedback_about_an_unknown_or_another_tenants_answer_is_not_found(
    query: query_pb2_grpc.QueryServiceStub, docs_tenant: str
) -> None:
    answer = query.Query(
        query_pb2.QueryRequest(tenant=docs_tenant, query="How do I leave the interpreter?"),
        timeout=120,
    )
    for tenant, request_id in (("docs", "0" * 32), ("someone-else", answer.request_id)):
        request = query_pb2.FeedbackRequest(
            tenant=tenant, request_id=request_id, rating=query_pb2.RATING_UP
        )
        expect_status(
            partial(query.Feedback, request, timeout=10),
            grpc.StatusCode.NOT_FOUND,
            "no answer with request id",
        )
