"""Retrieval confidence and the routes it takes with routing on."""

from __future__ import annotations

import pytest

from ragplane.query.config import QuerySettings
from ragplane.query.quality.confidence import Confidence, ConfidenceRouter, Route

ROUTER = ConfidenceRouter(routing=True, not_found_below=0.3, escalate_below=0.45)


def test_confidence_is_the_closest_hit_averaged_with_the_three_closest() -> None:
    got = ROUTER.assess([0.2, None, 0.8, 0.5, 0.5, 0.1], tier_forced=False)
    assert got.value == pytest.approx((0.8 + (0.8 + 0.5 + 0.5) / 3) / 2)
    assert (got.route, got.best_similarity) == (Route.ANSWERED, 0.8)


def test_one_close_hit_among_unrelated_ones_is_less_sure_than_three_that_agree() -> None:
    lone = ROUTER.assess([0.6, 0.1, 0.1], tier_forced=False)
    agreeing = ROUTER.assess([0.6, 0.55, 0.5], tier_forced=False)
    assert lone.value is not None
    assert agreeing.value is not None
    assert lone.value < agreeing.value
    assert (lone.route, agreeing.route) == (Route.ESCALATED, Route.ANSWERED)


def test_nothing_relevant_retrieved_is_not_found() -> None:
    assert ROUTER.assess([0.17, 0.12], tier_forced=False).route is Route.NOT_FOUND


def test_a_tier_forced_already_is_not_escalated() -> None:
    assert ROUTER.assess([0.35, 0.3], tier_forced=True).route is Route.ANSWERED


def test_without_similarities_confidence_is_unknown_and_nothing_is_routed() -> None:
    assert ROUTER.assess([None, None], tier_forced=False) == Confidence()


def test_with_routing_off_confidence_is_reported_and_nothing_is_routed() -> None:
    got = QuerySettings().confidence_router().assess([0.1], tier_forced=False)
    assert (got.value, got.route) == (0.1, Route.UNSPECIFIED)
