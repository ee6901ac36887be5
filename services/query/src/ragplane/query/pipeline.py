"""Answering a question within its deadline, degraded rather than late.

embed the query (a BM25-only search starts when the embedding is slow) -> search the tenant's
chunks -> generate a cited answer (or extract one when generation fails or time runs short).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace

from ragplane.query.backends import Backends, Found, GeneratedAnswer, Hit, SearchOptions
from ragplane.query.budget import Budget
from ragplane.query.config import QuerySettings
from ragplane.query.dependencies import CircuitOpen, Dependencies, DependencyTimedOut
from ragplane.runtime.errors import (
    DeadlineExceeded,
    InvalidArgument,
    ResourceExhausted,
    Unavailable,
)
from ragplane.runtime.extractive import extractive_answer
from ragplane.runtime.fields import (
    check_alpha,
    check_min_score,
    check_rerank_candidates,
    check_temperature,
    check_tenant,
    check_top_k,
    require_words,
)
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
    # Retrieval knobs (retrieval_pb2 enums; 0 and None: the retrieval service's defaults).
    fusion_type: int = 0
    rerank: int = 0
    rerank_candidates: int = 0
    min_score: float | None = None
    # Unset: the generation service's default. Above 0 the answer caches are bypassed.
    temperature: float | None = None
    # generation_pb2.ModelTier to force; 0 lets the generation service route.
    tier: int = 0

    def search_options(self) -> SearchOptions:
        return SearchOptions(
            alpha=self.alpha,
            top_k=self.top_k,
            filters=self.filters,
            fusion_type=self.fusion_type,
            rerank=self.rerank,
            rerank_candidates=self.rerank_candidates,
            min_score=self.min_score,
        )


@dataclass(frozen=True)
class QueryEmbedding:
    """The question's embedding, made before the pipeline ran (by the semantic cache lookup)."""

    vector: list[float]
    duration_ms: float


@dataclass
class QueryResult:
    answer: str
    citations: list[Hit]
    budget_s: float = 0.0
    timings: list[tuple[int, float]] = field(default_factory=list)
    provider: str = ""
    model: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    degradations: list[common_pb2.Degradation] = field(default_factory=list)
    tier: int = 0
    tier_reason: str = ""

    def degrade(self, stage: int, cause: int, reason: str, dependency: str = "") -> None:
        self.degradations.append(
            common_pb2.Degradation(
                stage=stage,  # type: ignore[arg-type]
                cause=cause,  # type: ignore[arg-type]
                reason=reason,
                dependency=dependency,
            )
        )

    def take_generated(self, generated: GeneratedAnswer, hits: Sequence[Hit]) -> None:
        self.answer = generated.text
        self.citations = _grounding(hits, generated.cited_chunk_ids)
        self.provider = generated.provider
        self.model = generated.model
        self.input_tokens = generated.input_tokens
        self.output_tokens = generated.output_tokens
        self.cost_usd = generated.cost_usd
        self.degradations.extend(generated.degradations)
        self.tier = generated.tier
        self.tier_reason = generated.tier_reason


@dataclass(frozen=True)
class Sources:
    """Streamed first: the passages the answer will be grounded on."""

    hits: list[Hit]


# What QueryPipeline.stream yields: the sources, then answer text deltas, then the result.
StreamEvent = Sources | str | QueryResult


class _Stopwatch:
    def __init__(self, result: QueryResult, stage: int) -> None:
        self._result = result
        self._stage = stage

    def __enter__(self) -> None:
        self._started = time.perf_counter()

    def __exit__(self, *_: object) -> None:
        elapsed_ms = (time.perf_counter() - self._started) * 1000
        self._result.timings.append((self._stage, elapsed_ms))


def _cause_of(error: Exception) -> int:
    if isinstance(error, CircuitOpen):
        return common_pb2.DEGRADATION_CAUSE_CIRCUIT_OPEN
    if isinstance(error, DeadlineExceeded):
        return common_pb2.DEGRADATION_CAUSE_TIMEOUT
    return common_pb2.DEGRADATION_CAUSE_UNAVAILABLE


def _grounding(hits: Sequence[Hit], cited_chunk_ids: Sequence[str]) -> list[Hit]:
    """The passages the answer cites; all passages it was given when it cites none."""
    by_id = {hit.chunk_id: hit for hit in hits}
    cited = [by_id[chunk_id] for chunk_id in cited_chunk_ids if chunk_id in by_id]
    return cited or list(hits)


# Errors after which a stage is replaced instead of failing the query.
_DEPENDENCY_FAILURES = (Unavailable, DeadlineExceeded, ResourceExhausted)


class QueryPipeline:
    def __init__(
        self, backends: Backends, dependencies: Dependencies, settings: QuerySettings
    ) -> None:
        self._backends = backends
        self._dependencies = dependencies
        self._settings = settings

    def validate(self, question: Question) -> Question:
        """Check the request and fill in defaults; raises INVALID_ARGUMENT naming the field."""
        settings = self._settings
        check_tenant(question.tenant)
        if not question.text.strip():
            raise InvalidArgument.of("query", "is required and must not be blank")
        if len(question.text) > settings.max_query_chars:
            raise InvalidArgument.of(
                "query",
                f"has {len(question.text)} characters; the limit is {settings.max_query_chars}",
            )
        require_words(question.text, "query")
        check_top_k(question.top_k, settings.max_top_k, zero_means_default=True)
        check_alpha(question.alpha)
        check_temperature(question.temperature)
        check_min_score(question.min_score)
        check_rerank_candidates(question.rerank_candidates)
        limit = settings.max_output_tokens_limit
        if not 0 <= question.max_output_tokens <= limit:
            raise InvalidArgument.of(
                "max_output_tokens",
                f"must be between 0 and {limit}, got {question.max_output_tokens}",
            )
        for index, item in enumerate(question.filters):
            if not item.field:
                raise InvalidArgument.of(f"filters[{index}].field", "is required")
        return replace(
            question, text=question.text.strip(), top_k=question.top_k or settings.default_top_k
        )

    async def answer(
        self, question: Question, budget: Budget, embedding: QueryEmbedding | None = None
    ) -> QueryResult:
        """The answer; ``embedding`` is the question's when the caller has it already."""
        question = self.validate(question)
        result = QueryResult(answer="", citations=[], budget_s=budget.total_s)
        hits = await self._retrieve(question, budget, result, embedding)
        if not hits:
            result.answer = NO_PASSAGES_ANSWER
            return result
        with _Stopwatch(result, common_pb2.STAGE_GENERATION):
            await self._generate(question, hits, budget, result)
        return result

    async def stream(
        self, question: Question, budget: Budget, embedding: QueryEmbedding | None = None
    ) -> AsyncIterator[StreamEvent]:
        """Sources, then the answer text as it is generated, then the whole result."""
        question = self.validate(question)
        result = QueryResult(answer="", citations=[], budget_s=budget.total_s)
        hits = await self._retrieve(question, budget, result, embedding)
        yield Sources(hits)
        if not hits:
            result.answer = NO_PASSAGES_ANSWER
            yield result.answer
        else:
            started = time.perf_counter()
            try:
                async for delta in self._generate_stream(question, hits, budget, result):
                    yield delta
            finally:
                elapsed_ms = (time.perf_counter() - started) * 1000
                result.timings.append((common_pb2.STAGE_GENERATION, elapsed_ms))
        yield result

    # Retrieval: the query's embedding, then a hybrid search; BM25 only without an embedding.

    async def _retrieve(
        self,
        question: Question,
        budget: Budget,
        result: QueryResult,
        known: QueryEmbedding | None,
    ) -> list[Hit]:
        found = await self._find(question, budget, result, known)
        result.degradations.extend(found.degradations)
        if found.rerank_ms > 0:
            # The search's time includes the rerank's: report them as two stages.
            stage, search_ms = result.timings.pop()
            result.timings.append((stage, max(0.0, search_ms - found.rerank_ms)))
            result.timings.append((common_pb2.STAGE_RERANK, found.rerank_ms))
        return found.hits

    async def _find(
        self,
        question: Question,
        budget: Budget,
        result: QueryResult,
        known: QueryEmbedding | None,
    ) -> Found:
        settings = self._settings
        after_search = settings.generation_min_s + settings.respond_reserve_s
        if known is not None:
            result.timings.append((common_pb2.STAGE_EMBEDDING, known.duration_ms))
            with _Stopwatch(result, common_pb2.STAGE_RETRIEVAL):
                return await self._search(question, known.vector, budget, after_search)
        after_embedding = settings.search_reserve_s + after_search
        embedding = asyncio.create_task(
            self._embed(
                question,
                budget.for_stage(
                    settings.embed_timeout_s,
                    after_embedding,
                    settings.search_reserve_s + settings.respond_reserve_s,
                ),
                result,
            )
        )
        bm25: asyncio.Task[Found] | None = None
        try:
            with _Stopwatch(result, common_pb2.STAGE_EMBEDDING):
                await asyncio.wait({embedding}, timeout=settings.bm25_hedge_after_s)
                if not embedding.done():
                    # The embedding is late: start the BM25 side now, so that if the embedding
                    # never comes its results are ready instead of only then being asked for.
                    bm25 = asyncio.create_task(self._search(question, [], budget, after_search))
                vector = await embedding
            with _Stopwatch(result, common_pb2.STAGE_RETRIEVAL):
                if vector is not None:
                    return await self._search(question, vector, budget, after_search)
                if bm25 is not None:
                    return await bm25
                return await self._search(question, [], budget, after_search)
        finally:
            for task in (embedding, bm25):
                if task is not None and not task.done():
                    task.cancel()

    async def _embed(
        self, question: Question, timeout_s: float, result: QueryResult
    ) -> list[float] | None:
        """The query's embedding; None (and a degradation) when it cannot be had in time."""
        dependency = self._dependencies.embedding
        if timeout_s <= 0:
            result.degrade(
                common_pb2.STAGE_EMBEDDING,
                common_pb2.DEGRADATION_CAUSE_NO_BUDGET,
                "no time left to embed the query: BM25-only search",
            )
            return None
        try:
            [vector] = await dependency.call(
                lambda t: self._backends.embed([question.text], t),
                timeout_s,
                self._settings.embed_timeout_s,
            )
        except _DEPENDENCY_FAILURES as error:
            result.degrade(
                common_pb2.STAGE_EMBEDDING,
                _cause_of(error),
                f"{error.message}; searched with BM25 only",
                dependency.name,
            )
            return None
        return vector

    async def _search(
        self, question: Question, vector: list[float], budget: Budget, reserve_s: float
    ) -> Found:
        settings = self._settings
        dependency = self._dependencies.retrieval
        # Passages answered extractively beat no passages: when the time promised to
        # generation leaves none for the search, the search takes it.
        timeout_s = budget.for_stage(
            settings.search_timeout_s, reserve_s, settings.respond_reserve_s
        )
        if timeout_s <= 0:
            raise DeadlineExceeded(
                "the request's deadline left no time to search the documents; "
                "allow the query more time"
            )
        try:
            return await dependency.call(
                lambda t: self._backends.search(
                    question.tenant, question.text, vector, question.search_options(), t
                ),
                timeout_s,
                settings.search_timeout_s,
            )
        except CircuitOpen as error:
            raise Unavailable(
                f"{error.message}: no passages can be searched and no cached answer was found",
                retry_after_s=error.retry_after_s,
            ) from error
        except DependencyTimedOut as error:
            # Slower than the stage's own cap, whatever the caller's deadline: the retrieval
            # service (or Weaviate behind it) is in trouble, which a caller may retry.
            raise Unavailable(
                f"retrieval service: no answer within the search's "
                f"{settings.search_timeout_s:g} s ({error.message}); no cached answer was found"
            ) from error

    # Generation: the model's answer, or one extracted from the passages.

    async def _generate(
        self, question: Question, hits: list[Hit], budget: Budget, result: QueryResult
    ) -> None:
        timeout_s = self._time_for_generation(budget, hits, result)
        if timeout_s is None:
            return
        dependency = self._dependencies.generation
        try:
            generated = await dependency.call(
                lambda t: self._backends.generate(
                    question.tenant,
                    question.text,
                    hits,
                    question.max_output_tokens,
                    t,
                    temperature=question.temperature,
                    tier=question.tier,
                ),
                timeout_s,
                self._settings.generation_timeout_s,
            )
        except _DEPENDENCY_FAILURES as error:
            self._extract(hits, result, _cause_of(error), error.message, dependency.name)
            return
        result.take_generated(generated, hits)

    async def _generate_stream(
        self, question: Question, hits: list[Hit], budget: Budget, result: QueryResult
    ) -> AsyncIterator[str]:
        timeout_s = self._time_for_generation(budget, hits, result)
        if timeout_s is None:
            yield result.answer
            return
        dependency = self._dependencies.generation
        sent: list[str] = []
        try:
            async for event in dependency.stream(
                lambda t: self._backends.generate_stream(
                    question.tenant,
                    question.text,
                    hits,
                    question.max_output_tokens,
                    t,
                    temperature=question.temperature,
                    tier=question.tier,
                ),
                timeout_s,
                self._settings.generation_timeout_s,
            ):
                if isinstance(event, str):
                    sent.append(event)
                    yield event
                else:
                    result.take_generated(event, hits)
        except _DEPENDENCY_FAILURES as error:
            if not sent:
                self._extract(hits, result, _cause_of(error), error.message, dependency.name)
                yield result.answer
                return
            if not isinstance(error, DeadlineExceeded):
                raise
            # Text already sent cannot be taken back: the answer ends where time ran out.
            result.answer = "".join(sent)
            result.citations = list(hits)
            result.degrade(
                common_pb2.STAGE_GENERATION,
                common_pb2.DEGRADATION_CAUSE_TIMEOUT,
                "the answer was cut off when the request's time ran out",
                dependency.name,
            )

    def _time_for_generation(
        self, budget: Budget, hits: list[Hit], result: QueryResult
    ) -> float | None:
        """The generation call's timeout; None, with the extractive answer, when too short."""
        settings = self._settings
        timeout_s = budget.for_stage(
            settings.generation_timeout_s, settings.respond_reserve_s, settings.respond_reserve_s
        )
        if timeout_s >= settings.generation_min_s:
            return timeout_s
        self._extract(
            hits,
            result,
            common_pb2.DEGRADATION_CAUSE_NO_BUDGET,
            self._no_time(timeout_s),
            self._dependencies.generation.name,
        )
        return None

    def _no_time(self, timeout_s: float) -> str:
        return (
            f"{timeout_s * 1000:.0f} ms of the request's deadline were left for generation, "
            f"less than the {self._settings.generation_min_s * 1000:.0f} ms it needs"
        )

    def _extract(
        self, hits: list[Hit], result: QueryResult, cause: int, reason: str, dependency: str = ""
    ) -> None:
        extracted = extractive_answer(hits, self._settings.extractive_passages)
        result.answer = extracted.text
        result.citations = extracted.cited
        result.degrade(
            common_pb2.STAGE_GENERATION,
            cause,
            f"{reason}; the answer quotes the top passages",
            dependency,
        )
