"""What each stage's span (timings.StageTimings.measure) carries to debug an answer from.

Names follow OpenTelemetry's GenAI conventions where they have one (gen_ai.*), ragplane.*
otherwise. Passage texts go on the retrieval span only with QUERY_TRACE_PASSAGES, cut and with
personal data masked as in the logs.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.util.types import AttributeValue

from ragplane.query.domain import Answer, CacheOutcome, Degradation, FlagsServed, SearchResult
from ragplane.query.metrics import tier_label
from ragplane.query.quality.confidence import Confidence
from ragplane.runtime.pii import mask_pii

PASSAGE_CHARS = 500


def _annotate(attributes: dict[str, AttributeValue]) -> None:
    trace.get_current_span().set_attributes(attributes)


def annotate_search(found: SearchResult, with_passages: bool) -> None:
    attributes: dict[str, AttributeValue] = {
        "ragplane.retrieval.hits": len(found.passages),
        "ragplane.retrieval.reranked_hits": len(found.passages) if found.reranked else 0,
        "ragplane.retrieval.alpha": found.alpha,
        "ragplane.retrieval.chunk_ids": [p.chunk_id for p in found.passages],
    }
    if with_passages:
        attributes["ragplane.retrieval.passages"] = [
            mask_pii(p.text[:PASSAGE_CHARS]) for p in found.passages
        ]
    _annotate(attributes)


def annotate_generation(answer: Answer) -> None:
    _annotate(
        {
            "gen_ai.provider.name": answer.provider,
            "gen_ai.request.model": answer.model,
            "gen_ai.usage.input_tokens": answer.input_tokens,
            "gen_ai.usage.output_tokens": answer.output_tokens,
            "gen_ai.response.finish_reasons": [answer.finish_reason or "none"],
            "ragplane.cost_usd": answer.cost_usd,
            "ragplane.tier": tier_label(answer.tier),
            "ragplane.extractive": answer.extractive,
        }
    )


def annotate_quality(answer: Answer) -> None:
    faithfulness = answer.faithfulness
    _annotate(
        {
            "ragplane.faithfulness": faithfulness.score,
            "ragplane.faithfulness.method": faithfulness.method.name.lower(),
            "ragplane.unsupported_sentences": list(faithfulness.unsupported),
            "ragplane.citation_coverage": faithfulness.citation_coverage,
            # The LLM judge's call (QUERY_FAITHFULNESS_JUDGE), 0 when none was made.
            "ragplane.judge.input_tokens": faithfulness.judge_usage.input_tokens,
            "ragplane.judge.output_tokens": faithfulness.judge_usage.output_tokens,
            "ragplane.judge.cost_usd": faithfulness.judge_usage.cost_usd,
        }
    )


def annotate_request(
    cache: CacheOutcome,
    degradations: Sequence[Degradation],
    confidence: Confidence,
    served: FlagsServed,
) -> None:
    """On the call's own span: which cache answered, what was degraded, how sure the search,
    which flags and A/B variant served it."""
    attributes: dict[str, AttributeValue] = {
        "ragplane.flags.set": served.flag_set,
        "ragplane.flags.version": served.version,
        "ragplane.flags.experiment": served.experiment,
        "ragplane.flags.variant": served.variant,
        "ragplane.cache.layer": cache.layer if cache.hit else "none",
        "ragplane.degradations": [
            f"{d.stage.name.lower()}:{d.cause.name.lower()}" for d in degradations
        ],
        "ragplane.confidence.route": confidence.route.name.lower(),
    }
    if confidence.value is not None:
        attributes["ragplane.retrieval.confidence"] = confidence.value
    _annotate(attributes)
