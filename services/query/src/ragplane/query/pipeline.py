"""Answering a question within its deadline, degraded rather than late.

embed the question (a BM25-only search starts when the embedding is slow) -> search the
tenant's chunks -> generate a cited answer (or extract one when generation fails or time runs
short). The question arrives validated (requests.py); caches and limits are the guard's.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from dataclasses import replace
from functools import partial

from ragplane.query.config import QuerySettings
from ragplane.query.dependencies import Dependencies, DependencyTimedOut
from ragplane.query.domain import (
    Answer,
    Cause,
    Passage,
    Question,
    QuestionEmbedding,
    SearchResult,
    Sources,
    StreamEvent,
)
from ragplane.query.flags.shadow import ShadowRunner
from ragplane.query.quality.confidence import LARGE_TIER, Route
from ragplane.query.quality.faithfulness import Faithfulness, FaithfulnessScorer
from ragplane.query.quality.judge import FaithfulnessJudge
from ragplane.query.timings import Stage
from ragplane.query.tracing import annotate_generation, annotate_quality, annotate_search
from ragplane.runtime.errors import (
    DeadlineExceeded,
    ResourceExhausted,
    ServiceError,
    Unavailable,
)
from ragplane.runtime.extractive import extractive_answer
from ragplane.runtime.resilience import CircuitOpen, Deadline

NO_PASSAGES_ANSWER = "No passage in this tenant's documents matches the question."
NOT_FOUND_ANSWER = (
    "The documents do not contain an answer to this question: nothing relevant to it was found."
)
SCORING_OFF = "faithfulness scoring is off (QUERY_FAITHFULNESS_ENABLED)"

# Errors after which a stage is replaced instead of failing the query.
_DEPENDENCY_FAILURES = (Unavailable, DeadlineExceeded, ResourceExhausted)


def _cause_of(error: ServiceError) -> Cause:
    if isinstance(error, CircuitOpen):
        return Cause.CIRCUIT_OPEN
    if isinstance(error, DeadlineExceeded):
        return Cause.TIMEOUT
    return Cause.UNAVAILABLE


class QueryPipeline:
    def __init__(
        self,
        dependencies: Dependencies,
        settings: QuerySettings,
        faithfulness: FaithfulnessScorer | None,
        judge: FaithfulnessJudge | None = None,
        shadow: ShadowRunner | None = None,
    ) -> None:
        """``faithfulness`` None: answers go out unscored; ``judge``: the LLM judges them;
        ``shadow`` None: no shadows."""
        self._dependencies = dependencies
        self._backends = dependencies.backends
        self._settings = settings
        self._faithfulness = faithfulness
        self._judge = judge
        self._shadow = shadow
        self._router = settings.confidence_router()

    async def close(self) -> None:
        if self._shadow is not None:
            await self._shadow.close()

    async def answer(
        self, question: Question, deadline: Deadline, known: QuestionEmbedding | None = None
    ) -> Answer:
        """The answer; ``known`` is the question's embedding when the caller has it already."""
        answer = Answer(deadline_s=deadline.total_s or 0.0)
        passages = await self._retrieve(question, deadline, answer, known)
        question = self._assess(question, passages, answer)
        if self._unanswerable(passages, answer):
            return answer
        with answer.timings.measure(Stage.GENERATION):
            await self._generate(question, passages, deadline, answer)
            annotate_generation(answer)
        self._offer_shadow(question, passages, answer)
        await self._score(question.tenant, passages, deadline, answer)
        return answer

    async def stream(
        self, question: Question, deadline: Deadline, known: QuestionEmbedding | None = None
    ) -> AsyncGenerator[StreamEvent, None]:
        """Sources, then the answer text as it is generated, then the whole answer."""
        answer = Answer(deadline_s=deadline.total_s or 0.0)
        passages = await self._retrieve(question, deadline, answer, known)
        question = self._assess(question, passages, answer)
        unanswerable = self._unanswerable(passages, answer)
        yield Sources([] if unanswerable else passages)
        if unanswerable:
            yield answer.text
        else:
            deltas = self._generate_stream(question, passages, deadline, answer)
            with answer.timings.measure(Stage.GENERATION):
                async with aclosing(deltas):
                    async for delta in deltas:
                        yield delta
                annotate_generation(answer)
            self._offer_shadow(question, passages, answer)
            await self._score(question.tenant, passages, deadline, answer)
        yield answer

    def _assess(self, question: Question, passages: list[Passage], answer: Answer) -> Question:
        """The question as it will be answered: on the large tier when confidence is low."""
        router, source = self._router, "QUERY_ESCALATE_CONFIDENCE"
        if question.flags.escalate_confidence is not None:
            router = replace(router, escalate_below=question.flags.escalate_confidence)
            source = "the flags' confidence_threshold"
        confidence = router.assess([p.similarity for p in passages], question.tier != 0)
        answer.confidence = confidence
        if confidence.route is not Route.ESCALATED:
            return question
        answer.tier_reason = (
            f"retrieval confidence {confidence.value:.2f} is below "
            f"{router.escalate_below:g} ({source}): the large tier"
        )
        return replace(question, tier=LARGE_TIER)

    def _offer_shadow(self, question: Question, passages: list[Passage], answer: Answer) -> None:
        """Start the shadow generation its flags draw; the caller does not wait for it."""
        if self._shadow is not None:
            answer.shadowed = self._shadow.offer(question, passages, answer)

    @staticmethod
    def _unanswerable(passages: list[Passage], answer: Answer) -> bool:
        """True, with the answer given, when there is nothing to answer from."""
        if not passages:
            answer.text = NO_PASSAGES_ANSWER
        elif answer.confidence.route is Route.NOT_FOUND:
            answer.text = NOT_FOUND_ANSWER
        else:
            return False
        answer.faithfulness = Faithfulness.not_scored("no relevant passage to answer from")
        return True

    async def _score(
        self, tenant: str, passages: list[Passage], deadline: Deadline, answer: Answer
    ) -> None:
        if self._faithfulness is None:
            answer.faithfulness = Faithfulness.not_scored(SCORING_OFF)
            return
        with answer.timings.measure(Stage.QUALITY):
            texts = [p.text for p in passages]
            evidence = partial(self.score_text, answer.text, texts, deadline, answer.extractive)
            if self._judge is None or answer.extractive:
                answer.faithfulness = await evidence()
            else:
                answer.faithfulness = await self._judge.score(
                    tenant, answer.text, passages, self._time_for_judge(deadline), evidence
                )
                answer.add_judge_usage(answer.faithfulness.judge_usage)
            annotate_quality(answer)

    def _time_for_judge(self, deadline: Deadline) -> float:
        """The judge's cap, keeping back what the evidence score that replaces it needs."""
        settings = self._settings
        after = settings.faithfulness_timeout_s + settings.respond_reserve_s
        return deadline.for_stage(
            settings.faithfulness_judge_timeout_s, after, settings.respond_reserve_s
        )

    async def score_text(
        self, text: str, passages: Sequence[str], deadline: Deadline, extractive: bool = False
    ) -> Faithfulness:
        """The faithfulness of ``text`` to ``passages``, numbered as its prompt numbered them."""
        if self._faithfulness is None:
            return Faithfulness.not_scored(SCORING_OFF)
        settings = self._settings
        timeout_s = deadline.for_stage(
            settings.faithfulness_timeout_s, settings.respond_reserve_s, settings.respond_reserve_s
        )
        return await self._faithfulness.score(text, passages, extractive, timeout_s)

    # Retrieval: the question's embedding, then a hybrid search; BM25 only without one.

    async def _retrieve(
        self,
        question: Question,
        deadline: Deadline,
        answer: Answer,
        known: QuestionEmbedding | None,
    ) -> list[Passage]:
        found = await self._find(question, deadline, answer, known)
        answer.degradations.extend(found.degradations)
        # The search's time includes the rerank's: report them as two stages.
        answer.timings.split_last(Stage.RERANK, found.rerank_ms)
        return found.passages

    async def _find(
        self,
        question: Question,
        deadline: Deadline,
        answer: Answer,
        known: QuestionEmbedding | None,
    ) -> SearchResult:
        settings = self._settings
        timings = answer.timings
        after_search = settings.generation_min_s + settings.respond_reserve_s
        if known is not None:
            timings.add(Stage.EMBEDDING, known.duration_ms)
            with timings.measure(Stage.RETRIEVAL):
                return await self._search(question, known.vector, deadline, after_search)
        embed_timeout_s = deadline.for_stage(
            settings.embed_timeout_s,
            settings.search_reserve_s + after_search,
            settings.search_reserve_s + settings.respond_reserve_s,
        )
        embedding = asyncio.create_task(self._embed(question, embed_timeout_s, answer))
        bm25: asyncio.Task[SearchResult] | None = None
        try:
            with timings.measure(Stage.EMBEDDING):
                await asyncio.wait({embedding}, timeout=settings.bm25_hedge_after_s)
                if not embedding.done():
                    # The embedding is late: start the BM25 side now, so that if the embedding
                    # never comes its results are ready instead of only then being asked for.
                    bm25 = asyncio.create_task(self._search(question, [], deadline, after_search))
                vector = await embedding
            with timings.measure(Stage.RETRIEVAL):
                if vector is not None:
                    return await self._search(question, vector, deadline, after_search)
                if bm25 is not None:
                    return await bm25
                return await self._search(question, [], deadline, after_search)
        finally:
            for task in (embedding, bm25):
                if task is not None and not task.done():
                    task.cancel()

    async def _embed(
        self, question: Question, timeout_s: float, answer: Answer
    ) -> list[float] | None:
        """The question's embedding; None (and a degradation) when it cannot be had in time."""
        if timeout_s <= 0:
            answer.degrade(
                Stage.EMBEDDING,
                Cause.NO_TIME_LEFT,
                "no time left to embed the query: BM25-only search",
            )
            return None
        try:
            [vector] = await self._dependencies.embed([question.text], timeout_s)
        except _DEPENDENCY_FAILURES as error:
            answer.degrade(
                Stage.EMBEDDING,
                _cause_of(error),
                f"{error.message}; searched with BM25 only",
                self._dependencies.embedding.name,
            )
            return None
        return vector

    async def _search(
        self, question: Question, vector: list[float], deadline: Deadline, reserve_s: float
    ) -> SearchResult:
        settings = self._settings
        # Passages answered extractively beat no passages: when the time promised to
        # generation leaves none for the search, the search takes it.
        timeout_s = deadline.for_stage(
            settings.search_timeout_s, reserve_s, settings.respond_reserve_s
        )
        if timeout_s <= 0:
            raise DeadlineExceeded(
                "the request's deadline left no time to search the documents; "
                "allow the query more time"
            )
        try:
            found = await self._dependencies.retrieval.call(
                lambda t: self._backends.search(question, vector, t),
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
        annotate_search(found, settings.trace_passages)
        return found

    # Generation: the model's answer, or one extracted from the passages.

    async def _generate(
        self, question: Question, passages: list[Passage], deadline: Deadline, answer: Answer
    ) -> None:
        timeout_s = self._time_for_generation(deadline, passages, answer)
        if timeout_s is None:
            return
        dependency = self._dependencies.generation
        try:
            generated = await dependency.call(
                lambda t: self._backends.generate(question, passages, t),
                timeout_s,
                self._settings.generation_timeout_s,
            )
        except _DEPENDENCY_FAILURES as error:
            self._extract(passages, answer, _cause_of(error), error.message)
            return
        answer.take_generated(generated, passages)

    async def _generate_stream(
        self, question: Question, passages: list[Passage], deadline: Deadline, answer: Answer
    ) -> AsyncGenerator[str, None]:
        timeout_s = self._time_for_generation(deadline, passages, answer)
        if timeout_s is None:
            yield answer.text
            return
        dependency = self._dependencies.generation
        sent: list[str] = []
        events = dependency.stream(
            lambda t: self._backends.generate_stream(question, passages, t),
            timeout_s,
            self._settings.generation_timeout_s,
        )
        try:
            async with aclosing(events):
                async for event in events:
                    if isinstance(event, str):
                        sent.append(event)
                        yield event
                    else:
                        answer.take_generated(event, passages)
        except _DEPENDENCY_FAILURES as error:
            if not sent:
                self._extract(passages, answer, _cause_of(error), error.message)
                yield answer.text
                return
            if not isinstance(error, DeadlineExceeded):
                raise
            # Text already sent cannot be taken back: the answer ends where time ran out.
            answer.text = "".join(sent)
            answer.citations = list(passages)
            answer.degrade(
                Stage.GENERATION,
                Cause.TIMEOUT,
                "the answer was cut off when the request's time ran out",
                dependency.name,
            )

    def _time_for_generation(
        self, deadline: Deadline, passages: list[Passage], answer: Answer
    ) -> float | None:
        """The generation call's timeout; None, with the extractive answer, when too short."""
        settings = self._settings
        timeout_s = deadline.for_stage(
            settings.generation_timeout_s, settings.respond_reserve_s, settings.respond_reserve_s
        )
        if timeout_s >= settings.generation_min_s:
            return timeout_s
        reason = (
            f"{timeout_s * 1000:.0f} ms of the request's deadline were left for generation, "
            f"less than the {settings.generation_min_s * 1000:.0f} ms it needs"
        )
        self._extract(passages, answer, Cause.NO_TIME_LEFT, reason)
        return None

    def _extract(self, passages: list[Passage], answer: Answer, cause: Cause, reason: str) -> None:
        extracted = extractive_answer(passages, self._settings.extractive_passages)
        answer.text = extracted.text
        answer.citations = list(extracted.cited)
        answer.extractive = True
        answer.degrade(
            Stage.GENERATION,
            cause,
            f"{reason}; the answer quotes the top passages",
            self._dependencies.generation.name,
        )
