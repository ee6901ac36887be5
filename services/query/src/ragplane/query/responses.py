"""The query service's responses, built in one place: domain in, protobuf out.

A fresh answer and one served from a cache go out through the same builder.
"""

from __future__ import annotations

from collections.abc import Sequence

from ragplane.query.caching.answers import CachedAnswer
from ragplane.query.domain import Answer, CacheOutcome, Degradation, Passage
from ragplane.query.metrics import DEGRADATIONS
from ragplane.query.timings import Stage
from ragplane.runtime.context import current_request_id
from ragplane.v1 import common_pb2, query_pb2

_CACHE_LAYERS = {
    "exact": query_pb2.CACHE_LAYER_EXACT,
    "semantic": query_pb2.CACHE_LAYER_SEMANTIC,
}


def cached_answer(cached: CachedAnswer, deadline_s: float, total_ms: float) -> Answer:
    """A cached answer as an Answer: no LLM call, no cost, all its time spent in the cache."""
    answer = Answer(
        text=cached.answer,
        citations=list(cached.citations),
        deadline_s=deadline_s,
        provider=cached.provider,
        model=cached.model,
    )
    answer.timings.add(Stage.CACHE, total_ms)
    return answer


def query_response(
    answer: Answer,
    cache: CacheOutcome,
    degradations: Sequence[Degradation],
    total_ms: float,
    snippet_chars: int,
) -> query_pb2.QueryResponse:
    """The response for ``answer``; ``degradations`` are all of them, admission's included."""
    for degradation in degradations:
        DEGRADATIONS.labels(
            common_pb2.Stage.Name(degradation.stage.value),  # type: ignore[arg-type]
            common_pb2.DegradationCause.Name(degradation.cause.value),  # type: ignore[arg-type]
        ).inc()
    return query_pb2.QueryResponse(
        answer=answer.text,
        citations=citations(answer.citations, snippet_chars),
        timings=[
            common_pb2.StageTiming(stage=stage.value, duration_ms=ms)  # type: ignore[arg-type]
            for stage, ms in answer.timings
        ],
        total_ms=total_ms,
        provider=answer.provider,
        model=answer.model,
        usage=common_pb2.TokenUsage(
            input_tokens=answer.input_tokens, output_tokens=answer.output_tokens
        ),
        request_id=current_request_id.get(),
        cost_usd=answer.cost_usd,
        degradations=[_degradation_message(d) for d in degradations],
        budget_ms=answer.deadline_s * 1000,
        cache=_cache_info(cache),
        tier=answer.tier,  # type: ignore[arg-type]
        tier_reason=answer.tier_reason,
    )


def citations(passages: Sequence[Passage], snippet_chars: int) -> list[common_pb2.Citation]:
    return [
        common_pb2.Citation(
            document_id=passage.document_id,
            chunk_id=passage.chunk_id,
            score=passage.score,
            snippet=passage.text[:snippet_chars],
        )
        for passage in passages
    ]


def _degradation_message(degradation: Degradation) -> common_pb2.Degradation:
    return common_pb2.Degradation(
        stage=degradation.stage.value,  # type: ignore[arg-type]
        cause=degradation.cause.value,  # type: ignore[arg-type]
        reason=degradation.reason,
        dependency=degradation.dependency,
    )


def _cache_info(cache: CacheOutcome) -> query_pb2.CacheInfo:
    if not cache.hit:
        return query_pb2.CacheInfo()
    return query_pb2.CacheInfo(
        hit=True,
        layer=_CACHE_LAYERS[cache.layer],
        similarity=cache.similarity,
        cached_query=cache.cached_question,
        saved_usd=cache.saved_usd,
    )
