"""Answering a question: embed the query, search the tenant's chunks, generate a cited answer."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from ragplane.query.backends import Backends, Hit
from ragplane.query.budget import Budget
from ragplane.query.config import QuerySettings
from ragplane.runtime.errors import InvalidArgument
from ragplane.v1 import common_pb2

NO_PASSAGES_ANSWER = "No passage in this tenant's documents matches the question."


@dataclass(frozen=True)
class Question:
    tenant: str
    text: str
    top_k: int
    alpha: float | None
    filters: Sequence[common_pb2.MetadataFilter]
    max_output_tokens: int
    # Unset: the generation service's default. Above 0 the answer caches are bypassed.
    temperature: float | None = None
    # generation_pb2.ModelTier to force; 0 lets the generation service route.
    tier: int = 0


@dataclass
class QueryResult:
    answer: str
    citations: list[Hit]
    timings: list[tuple[int, float]] = field(default_factory=list)
    provider: str = ""
    model: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    degradations: list[common_pb2.Degradation] = field(default_factory=list)
    tier: int = 0
    tier_reason: str = ""


class _Stopwatch:
    def __init__(self, result: QueryResult, stage: int) -> None:
        self._result = result
        self._stage = stage

    def __enter__(self) -> None:
        self._started = time.perf_counter()

    def __exit__(self, *_: object) -> None:
        elapsed_ms = (time.perf_counter() - self._started) * 1000
        self._result.timings.append((self._stage, elapsed_ms))


class QueryPipeline:
    def __init__(self, backends: Backends, settings: QuerySettings) -> None:
        self._backends = backends
        self._settings = settings

    def validate(self, question: Question) -> Question:
        """Check the request and fill in defaults; raises INVALID_ARGUMENT naming the field."""
        settings = self._settings
        if not question.tenant:
            raise InvalidArgument.of("tenant", "is required")
        if not question.text.strip():
            raise InvalidArgument.of("query", "is required and must not be blank")
        if len(question.text) > settings.max_query_chars:
            raise InvalidArgument.of(
                "query",
                f"has {len(question.text)} characters; the limit is {settings.max_query_chars}",
            )
        if not 0 <= question.top_k <= settings.max_top_k:
            raise InvalidArgument.of(
                "top_k",
                f"must be between 1 and {settings.max_top_k} (0 for the default), "
                f"got {question.top_k}",
            )
        if question.alpha is not None and not 0.0 <= question.alpha <= 1.0:
            raise InvalidArgument.of("alpha", f"must be between 0 and 1, got {question.alpha}")
        limit = settings.max_output_tokens_limit
        if not 0 <= question.max_output_tokens <= limit:
            raise InvalidArgument.of(
                "max_output_tokens",
                f"must be between 0 and {limit}, got {question.max_output_tokens}",
            )
        for index, item in enumerate(question.filters):
            if not item.field:
                raise InvalidArgument.of(f"filters[{index}].field", "is required")
        return Question(
            tenant=question.tenant,
            text=question.text.strip(),
            top_k=question.top_k or settings.default_top_k,
            alpha=question.alpha,
            filters=question.filters,
            max_output_tokens=question.max_output_tokens,
            temperature=question.temperature,
            tier=question.tier,
        )

    async def answer(self, question: Question, budget: Budget) -> QueryResult:
        question = self.validate(question)
        result = QueryResult(answer="", citations=[])
        with _Stopwatch(result, common_pb2.STAGE_EMBEDDING):
            [vector] = await self._backends.embed([question.text], budget.remaining("embedding"))
        with _Stopwatch(result, common_pb2.STAGE_RETRIEVAL):
            hits = await self._backends.search(
                question.tenant,
                question.text,
                vector,
                question.alpha,
                question.top_k,
                question.filters,
                budget.remaining("retrieval"),
            )
        if not hits:
            result.answer = NO_PASSAGES_ANSWER
            return result
        with _Stopwatch(result, common_pb2.STAGE_GENERATION):
            generated = await self._backends.generate(
                question.tenant,
                question.text,
                hits,
                question.max_output_tokens,
                budget.remaining("generation"),
                temperature=question.temperature,
                tier=question.tier,
            )
        result.answer = generated.text
        result.citations = self._grounding(hits, generated.cited_chunk_ids)
        result.provider = generated.provider
        result.model = generated.model
        result.input_tokens = generated.input_tokens
        result.output_tokens = generated.output_tokens
        result.cost_usd = generated.cost_usd
        result.degradations = generated.degradations
        result.tier = generated.tier
        result.tier_reason = generated.tier_reason
        return result

    @staticmethod
    def _grounding(hits: Sequence[Hit], cited_chunk_ids: Sequence[str]) -> list[Hit]:
        """The passages the answer cites; all passages it was given when it cites none."""
        by_id = {hit.chunk_id: hit for hit in hits}
        cited = [by_id[chunk_id] for chunk_id in cited_chunk_ids if chunk_id in by_id]
        return cited or list(hits)
