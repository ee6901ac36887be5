"""The query service's gRPC edge: requests in, responses out, the domain in between."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass

from ragplane.query.backends import Backends
from ragplane.query.batch_edge import BatchRpcs
from ragplane.query.batches.load import InteractiveLoad, interactive, interactive_stream
from ragplane.query.batches.mode import BatchMode
from ragplane.query.config import QuerySettings
from ragplane.query.domain import Answer, Passage, Question, Sources
from ragplane.query.flags.resolution import applied
from ragplane.query.flags.source import FlagSource
from ragplane.query.guard import Admission, QueryGuard
from ragplane.query.ingestion import Ingestor
from ragplane.query.pipeline import QueryPipeline
from ragplane.query.quality.feedback import AnswerRecord, FeedbackStore
from ragplane.query.requests import (
    document_ids_from,
    documents_from,
    question_from,
    verdict_from,
)
from ragplane.query.responses import citations, query_response
from ragplane.query.timings import elapsed_ms
from ragplane.query.tracing import annotate_request
from ragplane.runtime.audit import audit_note
from ragplane.runtime.context import RpcContext, current_request_id
from ragplane.runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from ragplane.runtime.readiness import WarmedUp
from ragplane.runtime.resilience import Deadline
from ragplane.v1 import query_pb2, query_pb2_grpc

# Errors that refuse a request before it touches any document: no cached answer is stale.
_NOTHING_CHANGED = (InvalidArgument, NotFound, FailedPrecondition)


@dataclass(frozen=True)
class QueryParts:
    """What the servicer serves with, assembled once at start-up (wiring.py)."""

    settings: QuerySettings
    backends: Backends
    guard: QueryGuard
    pipeline: QueryPipeline
    ingestor: Ingestor
    # None without Redis: answers are not kept, and Feedback is refused.
    feedback: FeedbackStore | None
    flags: FlagSource
    # None without Redis: batch RPCs are refused.
    batches: BatchMode | None = None

    async def close(self) -> None:
        await self.flags.close()
        if self.batches is not None:
            await self.batches.close()
        await self.pipeline.close()
        await self.backends.close()
        await self.guard.close()


class QueryServicer(BatchRpcs, query_pb2_grpc.QueryServiceServicer):
    def __init__(self, parts: WarmedUp[QueryParts]) -> None:
        self._parts = parts

    @property
    def interactive_load(self) -> InteractiveLoad | None:
        parts = self._parts.peek()
        return parts.batches.load if parts is not None and parts.batches is not None else None

    def _batch_mode(self) -> BatchMode:
        batches = self._parts.get().batches
        if batches is None:
            raise FailedPrecondition("batch mode needs Redis: set QUERY_REDIS_URL")
        return batches

    @interactive
    async def Query(
        self, request: query_pb2.QueryRequest, context: RpcContext
    ) -> query_pb2.QueryResponse:
        started = time.perf_counter()
        parts, deadline, admission = await self._admit(request, context)
        if admission.cached is not None:
            return await self._response(admission, self._from_cache(admission, deadline, started))
        answer = await self._fresh_answer(parts, admission, deadline)
        return await self._response(admission, answer, elapsed_ms(started))

    @staticmethod
    async def _fresh_answer(parts: QueryParts, admission: Admission, deadline: Deadline) -> Answer:
        answer = await parts.pipeline.answer(admission.question, deadline, admission.embedding)
        await parts.guard.settle(admission, answer)
        return answer

    @interactive_stream
    async def QueryStream(
        self, request: query_pb2.QueryRequest, context: RpcContext
    ) -> AsyncGenerator[query_pb2.QueryStreamResponse, None]:
        started = time.perf_counter()
        parts, deadline, admission = await self._admit(request, context)
        if admission.cached is not None or not admission.question.flags.streaming:
            # A cached answer, or streaming flagged off for this tenant or variant: the same
            # three parts, the text in one piece once it is whole.
            if admission.cached is not None:
                answer, total_ms = self._from_cache(admission, deadline, started), None
            else:
                answer = await self._fresh_answer(parts, admission, deadline)
                total_ms = elapsed_ms(started)
            yield self._sources(answer.citations)
            yield query_pb2.QueryStreamResponse(answer_delta=answer.text)
            done = await self._response(admission, answer, total_ms)
            yield query_pb2.QueryStreamResponse(done=done)
            return
        events = parts.pipeline.stream(admission.question, deadline, admission.embedding)
        # aclosing: a caller that cancels closes the whole chain down to the generation call
        # at once, not when the garbage collector gets to it.
        async with aclosing(events):
            async for event in events:
                if isinstance(event, Sources):
                    yield self._sources(event.passages)
                elif isinstance(event, Answer):
                    await parts.guard.settle(admission, event)
                    done = await self._response(admission, event, elapsed_ms(started))
                    yield query_pb2.QueryStreamResponse(done=done)
                else:
                    yield query_pb2.QueryStreamResponse(answer_delta=event)

    async def _admit(
        self, request: query_pb2.QueryRequest, context: RpcContext
    ) -> tuple[QueryParts, Deadline, Admission]:
        """The request validated, its flags applied, then through the guard (limits, caches,
        spend)."""
        parts = self._parts.get()
        question = self._flagged(parts, request, question_from(request, parts.settings))
        deadline = self._deadline(context, parts.settings.default_timeout_s)
        return parts, deadline, await parts.guard.admit(question, deadline)

    @staticmethod
    def _flagged(
        parts: QueryParts, request: query_pb2.QueryRequest, question: Question
    ) -> Question:
        resolved = parts.flags.resolve(question.tenant, request.caller)
        if resolved is None:
            return question
        return applied(resolved, question, top_k_asked=request.top_k != 0)

    @staticmethod
    def _deadline(context: RpcContext, default_s: float) -> Deadline:
        remaining = context.time_remaining()
        return Deadline(remaining if remaining is not None else default_s)

    @staticmethod
    def _from_cache(admission: Admission, deadline: Deadline, started: float) -> Answer:
        assert admission.cached is not None
        return admission.cached.as_answer(deadline.total_s or 0.0, elapsed_ms(started))

    def _sources(self, passages: Sequence[Passage]) -> query_pb2.QueryStreamResponse:
        found = citations(passages, self._parts.get().settings.snippet_chars)
        return query_pb2.QueryStreamResponse(sources=query_pb2.QuerySources(citations=found))

    async def _response(
        self, admission: Admission, answer: Answer, total_ms: float | None = None
    ) -> query_pb2.QueryResponse:
        """``total_ms`` defaults to the answer's one stage (a cached answer). The answer is
        kept for feedback first."""
        if admission.tier_reason:
            answer.tier_reason = admission.tier_reason
        degradations = [*admission.degradations, *answer.degradations]
        question = admission.question
        annotate_request(admission.cache, degradations, answer.confidence, question.flags.served)
        feedback = self._parts.get().feedback
        if feedback is not None:
            tenant = admission.question.tenant
            await feedback.remember(AnswerRecord.of(current_request_id.get(), tenant, answer))
        return query_response(
            answer,
            admission.cache,
            degradations,
            sum(ms for _, ms in answer.timings) if total_ms is None else total_ms,
            self._parts.get().settings.snippet_chars,
            question.flags.served,
            question.prompt_version,
        )

    async def Feedback(
        self, request: query_pb2.FeedbackRequest, context: RpcContext
    ) -> query_pb2.FeedbackResponse:
        feedback = self._parts.get().feedback
        verdict = verdict_from(request)
        if feedback is None:
            raise FailedPrecondition("feedback is kept in Redis: set QUERY_REDIS_URL")
        stored = await feedback.record(verdict)
        audit_note(rating=verdict.rating.name.lower(), answer_request_id=verdict.request_id)
        return query_pb2.FeedbackResponse(stored_comment=stored)

    async def Ingest(
        self, request: query_pb2.IngestRequest, context: RpcContext
    ) -> query_pb2.IngestResponse:
        parts = self._parts.get()
        documents = documents_from(request, parts.settings)
        deadline = self._deadline(context, parts.settings.ingest_timeout_s)
        async with self._changing_documents(request.tenant):
            outcomes = await parts.ingestor.ingest(request.tenant, documents, deadline)
        audit_note(documents=len(documents), indexed=sum(o.indexed for o in outcomes))
        return query_pb2.IngestResponse(
            results=[
                query_pb2.DocumentResult(
                    document_id=o.document_id,
                    status=query_pb2.DOCUMENT_STATUS_INDEXED
                    if o.indexed
                    else query_pb2.DOCUMENT_STATUS_FAILED,
                    chunks=len(o.chunks) if o.indexed else 0,
                    error=o.error,
                )
                for o in outcomes
            ]
        )

    async def DeleteDocuments(
        self, request: query_pb2.DeleteDocumentsRequest, context: RpcContext
    ) -> query_pb2.DeleteDocumentsResponse:
        parts = self._parts.get()
        document_ids = document_ids_from(request)
        deadline = self._deadline(context, parts.settings.ingest_timeout_s)
        async with self._changing_documents(request.tenant):
            deleted = await parts.backends.delete(
                request.tenant, document_ids, deadline.require("delete")
            )
        audit_note(documents=len(document_ids), deleted_chunks=deleted)
        return query_pb2.DeleteDocumentsResponse(deleted_chunks=deleted)

    @asynccontextmanager
    async def _changing_documents(self, tenant: str) -> AsyncIterator[None]:
        """Invalidate the tenant's cached answers after a change, also one that failed part-way
        (some documents may have changed already); not after a request refused up front."""
        guard = self._parts.get().guard
        try:
            yield
        except _NOTHING_CHANGED:
            raise
        except BaseException:
            await guard.documents_changed(tenant)
            raise
        await guard.documents_changed(tenant)
