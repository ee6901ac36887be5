"""Feedback requests are checked at the edge, each field for one reason."""

from __future__ import annotations

import pytest

from ragplane.query.quality.feedback import Rating, Verdict
from ragplane.query.requests import MAX_COMMENT_CHARS, verdict_from
from ragplane.runtime.errors import InvalidArgument
from ragplane.v1 import query_pb2


def request(**fields: object) -> query_pb2.FeedbackRequest:
    defaults: dict[str, object] = {
        "tenant": "docs",
        "request_id": "a" * 32,
        "rating": query_pb2.RATING_UP,
        "comment": "",
    }
    return query_pb2.FeedbackRequest(**{**defaults, **fields})  # type: ignore[arg-type]


def test_a_well_formed_request_is_a_verdict() -> None:
    got = verdict_from(request(rating=query_pb2.RATING_DOWN, comment="stale"))
    assert got == Verdict("docs", "a" * 32, Rating.DOWN, "stale")


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"tenant": ""}, "tenant"),
        ({"request_id": " "}, "request_id"),
        ({"rating": query_pb2.RATING_UNSPECIFIED}, "rating"),
        ({"comment": "x" * (MAX_COMMENT_CHARS + 1)}, "comment"),
    ],
)
def test_each_bad_field_is_refused_by_name(fields: dict[str, object], named: str) -> None:
    with pytest.raises(InvalidArgument, match=named):
        verdict_from(request(**fields))
