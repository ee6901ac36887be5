"""The reranker on a real (small, locally trained) cross-encoder: order, time limit, failures."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from ragplane.retrieval.reranker import CrossEncoderScorer, Reranker, RerankLimits, load_scorer
from ragplane.retrieval.store import ScoredChunk, StoredChunk
from ragplane.runtime.resilience import Deadline
from tests.reranker import trained_test_reranker

QUERY = "How do I create a virtual environment?"
PASSAGES = [
    "The for statement iterates over the items of any sequence, in the order they appear.",
    "Floating point numbers are represented in computer hardware as base 2 fractions.",
    "To create a virtual environment, run the venv module as a script with the directory path.",
    "Dictionaries are indexed by keys, which can be any immutable type.",
    "The tarfile module makes it possible to read and write tar archives.",
]


def _candidates() -> list[ScoredChunk]:
    """Hybrid order: the given order, with falling scores."""
    return [
        ScoredChunk(StoredChunk(f"doc{n}#0", f"doc{n}", 0, text), 1.0 - n / 10)
        for n, text in enumerate(PASSAGES)
    ]


@pytest.fixture(scope="module")
def scorer() -> CrossEncoderScorer:
    return CrossEncoderScorer(trained_test_reranker(), max_length=128)


def _reranker(scorer: CrossEncoderScorer | None, time_limit_s: float = 60.0) -> Reranker:
    return Reranker(scorer, "not configured", RerankLimits(2, time_limit_s, 0.05))


async def test_rerank_orders_candidates_by_cross_encoder_score_and_reports_its_time(
    scorer: CrossEncoderScorer,
) -> None:
    outcome = await _reranker(scorer).rerank(QUERY, _candidates(), Deadline(None))
    expected = scorer.score(QUERY, PASSAGES)
    assert outcome.reranked
    assert outcome.skipped == ""
    assert outcome.elapsed_ms > 0
    by_model = sorted(range(len(PASSAGES)), key=lambda n: expected[n], reverse=True)
    assert [hit.chunk.document_id for hit in outcome.hits] == [f"doc{n}" for n in by_model]
    assert [hit.score for hit in outcome.hits] == pytest.approx(
        sorted(expected, reverse=True), abs=1e-4
    )


async def test_exhausted_time_limit_keeps_hybrid_order_and_says_why(
    scorer: CrossEncoderScorer,
) -> None:
    outcome = await _reranker(scorer, time_limit_s=0.001).rerank(
        QUERY, _candidates(), Deadline(None)
    )
    assert not outcome.reranked
    assert "time limit of 1 ms ran out" in outcome.skipped
    assert outcome.hits == _candidates()


async def test_caller_deadline_too_close_skips_rerank(scorer: CrossEncoderScorer) -> None:
    # 30 ms left, 50 ms kept back for the reply: no time to rerank at all.
    outcome = await _reranker(scorer).rerank(QUERY, _candidates(), Deadline(0.03))
    assert not outcome.reranked
    assert outcome.skipped.startswith("no time left to rerank")
    assert outcome.hits == _candidates()


def test_the_time_limit_is_the_smaller_of_configured_and_deadline_less_reserve() -> None:
    reranker = _reranker(None, time_limit_s=2.0)
    assert reranker.time_limit_s(Deadline(None)) == 2.0
    assert reranker.time_limit_s(Deadline(10.0, clock=lambda: 0.0)) == 2.0
    assert reranker.time_limit_s(Deadline(1.0, clock=lambda: 0.0)) == pytest.approx(0.95)


async def test_a_model_that_fails_to_load_leaves_search_in_hybrid_order(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{ not json")
    scorer, reason = load_scorer(tmp_path, max_length=128)
    assert scorer is None
    assert reason.startswith(f"reranker failed to load from {tmp_path}")
    outcome = await Reranker(scorer, reason, RerankLimits(2, 60.0, 0.05)).rerank(
        QUERY, _candidates(), Deadline(None)
    )
    assert (outcome.reranked, outcome.skipped, outcome.hits) == (False, reason, _candidates())


class FailingScorerDouble:
    """Test double: a model that raises while scoring (no real model can be made to do so)."""

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        raise RuntimeError("CUDA error: device-side assert triggered")


async def test_a_model_failing_while_scoring_keeps_hybrid_order() -> None:
    reranker = Reranker(FailingScorerDouble(), "", RerankLimits(2, 60.0, 0.05))
    outcome = await reranker.rerank(QUERY, _candidates(), Deadline(None))
    assert not outcome.reranked
    assert (
        outcome.skipped == "reranker failed: RuntimeError: CUDA error: device-side assert triggered"
    )
    assert outcome.hits == _candidates()
