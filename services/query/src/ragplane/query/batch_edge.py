"""The gRPC edge of batch mode: SubmitBatch, GetBatch and CancelBatch, protobuf <-> domain."""

from __future__ import annotations

from abc import abstractmethod

from ragplane.query.batches.mode import BatchMode
from ragplane.query.batches.model import (
    BatchState,
    BatchStatus,
    ItemResult,
    ItemStatus,
    Progress,
    Work,
)
from ragplane.query.requests import documents_from, question_from
from ragplane.query.responses import citations, degradation_message
from ragplane.runtime.context import RpcContext
from ragplane.runtime.errors import InvalidArgument, NotFound
from ragplane.runtime.fields import check_tenant
from ragplane.runtime.messages import usage_message
from ragplane.v1 import query_pb2

_STATES = {
    BatchState.QUEUED: query_pb2.BATCH_STATE_QUEUED,
    BatchState.RUNNING: query_pb2.BATCH_STATE_RUNNING,
    BatchState.PAUSED: query_pb2.BATCH_STATE_PAUSED,
    BatchState.DONE: query_pb2.BATCH_STATE_DONE,
    BatchState.CANCELLED: query_pb2.BATCH_STATE_CANCELLED,
}
_ITEM_STATUSES = {
    ItemStatus.DONE: query_pb2.BATCH_ITEM_STATUS_DONE,
    ItemStatus.FAILED: query_pb2.BATCH_ITEM_STATUS_FAILED,
}


class BatchRpcs:
    """The batch RPCs of QueryServicer, which says where its batch mode is."""

    @abstractmethod
    def _batch_mode(self) -> BatchMode:
        """Batch mode; FAILED_PRECONDITION when the service runs without it (no Redis)."""

    async def SubmitBatch(
        self, request: query_pb2.SubmitBatchRequest, context: RpcContext
    ) -> query_pb2.SubmitBatchResponse:
        mode = self._batch_mode()
        check_tenant(request.tenant)
        if request.questions and request.documents:
            raise InvalidArgument.of("documents", "a batch holds questions or documents, not both")
        count, limit = len(request.questions) + len(request.documents), mode.settings.max_items
        if not 1 <= count <= limit:
            raise InvalidArgument.of("questions", f"{count} items; from 1 to {limit} allowed")
        work = _questions(request, mode) if request.questions else _documents(request, mode)
        batch_id = await mode.store.submit(request.tenant, work)
        return query_pb2.SubmitBatchResponse(batch_id=batch_id, items=count)

    async def GetBatch(
        self, request: query_pb2.GetBatchRequest, context: RpcContext
    ) -> query_pb2.GetBatchResponse:
        status = await self._status(request.tenant, request.batch_id, request.include_results)
        snippet_chars = self._batch_mode().query_settings.snippet_chars
        return query_pb2.GetBatchResponse(
            batch_id=status.batch_id,
            state=_STATES[status.state],
            progress=_progress(status.progress),
            paused_reason=status.paused_reason,
            cost_usd=status.cost_usd,
            saved_usd=status.saved_usd,
            results=[_result(r, snippet_chars) for r in status.results],
        )

    async def CancelBatch(
        self, request: query_pb2.CancelBatchRequest, context: RpcContext
    ) -> query_pb2.CancelBatchResponse:
        await self._status(request.tenant, request.batch_id, False)
        await self._batch_mode().store.cancel(request.batch_id)
        status = await self._status(request.tenant, request.batch_id, False)
        return query_pb2.CancelBatchResponse(
            state=_STATES[status.state], progress=_progress(status.progress)
        )

    async def _status(self, tenant: str, batch_id: str, with_results: bool) -> BatchStatus:
        """The tenant's batch; NOT_FOUND for another tenant's, as for one that never was."""
        check_tenant(tenant)
        status = await self._batch_mode().store.status(batch_id, with_results)
        if status is None or status.tenant != tenant:
            raise NotFound(f"tenant {tenant!r} has no batch {batch_id!r} (or it expired)")
        return status


def _questions(request: query_pb2.SubmitBatchRequest, mode: BatchMode) -> list[Work]:
    """Each question checked as Query checks it; a bad one refuses the batch, naming it."""
    questions: list[Work] = []
    for index, asked in enumerate(request.questions):
        if asked.tenant not in ("", request.tenant):
            raise InvalidArgument.of(
                f"questions[{index}].tenant", "must be empty or the batch's tenant"
            )
        asked.tenant = request.tenant
        try:
            questions.append(question_from(asked, mode.query_settings))
        except InvalidArgument as error:
            # "query: is empty" becomes "questions[3].query: is empty".
            raise InvalidArgument(f"questions[{index}].{error.message}") from error
    return questions


def _documents(request: query_pb2.SubmitBatchRequest, mode: BatchMode) -> list[Work]:
    """Each document checked as Ingest checks it (one per call), ids unique in the batch."""
    documents: list[Work] = []
    seen: set[str] = set()
    for index, document in enumerate(request.documents):
        if document.document_id in seen:
            raise InvalidArgument.of(f"documents[{index}].document_id", "appears twice")
        seen.add(document.document_id)
        alone = query_pb2.IngestRequest(tenant=request.tenant, documents=[document])
        try:
            documents.extend(documents_from(alone, mode.query_settings))
        except InvalidArgument as error:
            raise InvalidArgument(f"documents[{index}]: {error.message}") from error
    return documents


def _progress(progress: Progress) -> query_pb2.BatchProgress:
    return query_pb2.BatchProgress(
        total=progress.total,
        queued=progress.queued,
        running=progress.running,
        done=progress.done,
        failed=progress.failed,
        cancelled=progress.cancelled,
        eta_s=progress.eta_s,
    )


def _result(result: ItemResult, snippet_chars: int) -> query_pb2.BatchItemResult:
    return query_pb2.BatchItemResult(
        index=result.index,
        status=_ITEM_STATUSES[result.status],
        query=result.query,
        answer=result.answer,
        citations=citations(result.citations, snippet_chars),
        provider=result.provider,
        model=result.model,
        usage=usage_message(result),
        cost_usd=result.cost_usd,
        interactive_cost_usd=result.interactive_cost_usd,
        error=result.error,
        attempts=result.attempts,
        degradations=[degradation_message(d) for d in result.degradations],
        document_id=result.document_id,
        chunks=result.chunks,
    )
