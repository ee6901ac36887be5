"""The query service's responses, built in one place: domain in, protobuf out.

A fresh answer and one served from a cache go out through the same builder.
"""

from __future__ import annotations

from collections.abc import Sequence

from ragplane.query.domain import Answer, CacheOutcome, Degradation, FlagsServed, Passage
from ragplane.query.metrics import (
    CONFIDENCE_ROUTED,
    DEGRADATIONS,
    FAITHFULNESS,
    RETRIEVAL_CONFIDENCE,
    UNSUPPORTED_ANSWERS,
    VARIANT_ANSWERS,
    VARIANT_COST_USD,
    VARIANT_LATENCY,
    tier_label,
)
from ragplane.query.quality.confidence import Confidence, Route
from ragplane.query.quality.faithfulness import Faithfulness
from ragplane.runtime.context import current_request_id
from ragplane.runtime.messages import usage_message
from ragplane.v1 import common_pb2, generation_pb2, query_pb2

_CACHE_LAYERS = {
    "exact": query_pb2.CACHE_LAYER_EXACT,
    "semantic": query_pb2.CACHE_LAYER_SEMANTIC,
}


def query_response(
    answer: Answer,
    cache: CacheOutcome,
    degradations: Sequence[Degradation],
    total_ms: float,
    snippet_chars: int,
    served: FlagsServed,
    prompt_version: int,
) -> query_pb2.QueryResponse:
    """The response for ``answer``; ``degradations`` are all of them, admission's included;
    ``served`` and ``prompt_version``: the flags it was answered with."""
    _count_variant(served, answer, cache, bool(degradations), total_ms)
    for degradation in degradations:
        DEGRADATIONS.labels(
            common_pb2.Stage.Name(degradation.stage.value),  # type: ignore[arg-type]
            common_pb2.DegradationCause.Name(degradation.cause.value),  # type: ignore[arg-type]
        ).inc()
    _count_quality(answer)
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
        usage=usage_message(answer),
        request_id=current_request_id.get(),
        cost_usd=answer.cost_usd,
        degradations=[degradation_message(d) for d in degradations],
        budget_ms=answer.deadline_s * 1000,
        cache=_cache_info(cache),
        tier=answer.tier,  # type: ignore[arg-type]
        tier_reason=answer.tier_reason,
        quality=_quality(answer.faithfulness, answer.confidence),
        flags=query_pb2.FlagsServed(
            flag_set=served.flag_set,
            version=served.version,
            experiment=served.experiment,
            variant=served.variant,
            prompt_version=prompt_name(prompt_version),
            shadowed=answer.shadowed,
        ),
    )


def prompt_name(prompt_version: int) -> str:
    """The PromptVersion name of ``prompt_version``; empty for the generation default."""
    if prompt_version == generation_pb2.PROMPT_VERSION_UNSPECIFIED:
        return ""
    return generation_pb2.PromptVersion.Name(prompt_version)  # type: ignore[arg-type]


def _count_variant(
    served: FlagsServed, answer: Answer, cache: CacheOutcome, degraded: bool, total_ms: float
) -> None:
    labels = (served.experiment, served.variant)
    outcome = "cached" if cache.hit else "degraded" if degraded else "generated"
    VARIANT_ANSWERS.labels(*labels, outcome).inc()
    VARIANT_LATENCY.labels(*labels).observe(total_ms / 1000)
    VARIANT_COST_USD.labels(*labels).inc(answer.cost_usd)


def _quality(faithfulness: Faithfulness, confidence: Confidence) -> query_pb2.AnswerQuality:
    return query_pb2.AnswerQuality(
        faithfulness=faithfulness.score,
        unsupported_sentences=faithfulness.unsupported,
        citation_coverage=faithfulness.citation_coverage,
        faithfulness_method=faithfulness.method.value,  # type: ignore[arg-type]
        faithfulness_note=faithfulness.note,
        retrieval_confidence=confidence.value,
        confidence_route=confidence.route.value,  # type: ignore[arg-type]
        judge_usage=usage_message(faithfulness.judge_usage),
        judge_cost_usd=faithfulness.judge_usage.cost_usd,
    )


def _count_quality(answer: Answer) -> None:
    tier = tier_label(answer.tier)
    faithfulness, confidence = answer.faithfulness, answer.confidence
    if faithfulness.scored:
        FAITHFULNESS.labels(tier).observe(faithfulness.score)
        if faithfulness.unsupported:
            UNSUPPORTED_ANSWERS.labels(tier).inc()
    if confidence.value is not None:
        RETRIEVAL_CONFIDENCE.labels(tier).observe(confidence.value)
    if confidence.route is not Route.UNSPECIFIED:
        CONFIDENCE_ROUTED.labels(confidence.route.name.lower()).inc()


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


def degradation_message(degradation: Degradation) -> common_pb2.Degradation:
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
