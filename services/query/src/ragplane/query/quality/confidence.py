"""Retrieval confidence: how sure the search is of having found relevant passages.

Fused hybrid scores only rank (relative score fusion gives the best hit about 1 whatever it
is), so confidence comes from the retrieval service's cosine similarity of each hit to the
question: the closest hit's, averaged with the mean of the three closest, so that one near hit
among unrelated ones counts for less than three that agree. With routing on, a question whose
closest hit is below ``not_found_below`` gets the not-found answer (no LLM call, nothing to
guess from), and one whose confidence is below ``escalate_below`` goes to the large tier.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

# Hits whose similarities are averaged with the closest one's.
AGREEING_HITS = 3
# The generation service's ModelTier values of its tiers.
SMALL_TIER = 1
LARGE_TIER = 2


class Route(IntEnum):
    """What the confidence did (the values of the contract's ConfidenceRoute)."""

    UNSPECIFIED = 0
    ANSWERED = 1
    ESCALATED = 2
    NOT_FOUND = 3


@dataclass(frozen=True)
class Confidence:
    # None when the search had no question embedding (BM25 only) to compare with.
    value: float | None = None
    route: Route = Route.UNSPECIFIED
    best_similarity: float | None = None


@dataclass(frozen=True)
class ConfidenceRouter:
    routing: bool
    not_found_below: float
    escalate_below: float

    def assess(self, similarities: Sequence[float | None], tier_forced: bool) -> Confidence:
        """``tier_forced``: the question's tier is set already (a budget), not escalated."""
        closest = sorted((s for s in similarities if s is not None), reverse=True)
        if not closest:
            return Confidence()
        best = closest[0]
        agreeing = closest[:AGREEING_HITS]
        value = max(0.0, (best + sum(agreeing) / len(agreeing)) / 2)
        if not self.routing:
            return Confidence(value, Route.UNSPECIFIED, best)
        if best < self.not_found_below:
            return Confidence(value, Route.NOT_FOUND, best)
        if value < self.escalate_below and not tier_forced:
            return Confidence(value, Route.ESCALATED, best)
        return Confidence(value, Route.ANSWERED, best)
