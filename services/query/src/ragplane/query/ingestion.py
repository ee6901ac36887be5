"""Ingestion: documents -> token-aware chunks -> embeddings in batches -> upsert per tenant."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import structlog

from ragplane.query.backends import Backends, ChunkToStore
from ragplane.query.budget import Budget
from ragplane.query.chunking import Chunker
from ragplane.query.config import QuerySettings
from ragplane.runtime.errors import InvalidArgument, ServiceError
from ragplane.runtime.fields import check_tenant

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class SourceDocument:
    document_id: str
    text: str
    title: str
    metadata: dict[str, str]


@dataclass
class DocumentOutcome:
    document_id: str
    chunks: list[ChunkToStore] = field(default_factory=list)
    error: str = ""

    @property
    def indexed(self) -> bool:
        return not self.error


def _finished_documents(
    pending: Sequence[tuple[DocumentOutcome, ChunkToStore]], start: int, end: int
) -> list[DocumentOutcome]:
    """The documents whose last chunk lies in pending[start:end], in order."""
    finished: list[DocumentOutcome] = []
    for index in range(start, min(end, len(pending))):
        outcome = pending[index][0]
        if index + 1 == len(pending) or pending[index + 1][0] is not outcome:
            finished.append(outcome)
    return finished


class Ingestor:
    def __init__(self, backends: Backends, chunker: Chunker, settings: QuerySettings) -> None:
        self._backends = backends
        self._chunker = chunker
        self._settings = settings

    def validate(self, tenant: str, documents: Sequence[SourceDocument]) -> None:
        """Refuse a malformed request whole, before any work: nothing of it is half-done.

        What is wrong with one document's text fails that document alone (``_chunk``).
        """
        check_tenant(tenant)
        if not documents:
            raise InvalidArgument.of("documents", "at least one document is required")
        limit = self._settings.max_documents_per_ingest
        if len(documents) > limit:
            raise InvalidArgument.of(
                "documents", f"{len(documents)} documents; the limit is {limit}"
            )
        total_chars = sum(len(document.text) for document in documents)
        if total_chars > self._settings.max_ingest_chars:
            raise InvalidArgument.of(
                "documents",
                f"{total_chars:,} characters of text in one call; the limit is "
                f"{self._settings.max_ingest_chars:,}: send the documents in several calls",
            )
        seen: set[str] = set()
        for index, document in enumerate(documents):
            if not document.document_id.strip():
                raise InvalidArgument.of(f"documents[{index}].document_id", "is required")
            if document.document_id in seen:
                raise InvalidArgument.of(
                    f"documents[{index}].document_id", f"{document.document_id!r} appears twice"
                )
            seen.add(document.document_id)

    def _chunk(self, document: SourceDocument) -> DocumentOutcome:
        """The document's chunks; a document with no indexable text fails alone, and its
        chunks from an earlier ingest stay as they were."""
        chunks = [
            ChunkToStore(
                document.document_id, piece.index, piece.text, document.title, document.metadata
            )
            for piece in self._chunker.split(document.text)
        ]
        if not any(char.isalnum() for chunk in chunks for char in chunk.text):
            return DocumentOutcome(
                document.document_id,
                error="the text has no indexable content (no letter or digit); "
                "the document was left as it was",
            )
        return DocumentOutcome(document.document_id, chunks)

    async def ingest(
        self, tenant: str, documents: Sequence[SourceDocument], budget: Budget
    ) -> list[DocumentOutcome]:
        self.validate(tenant, documents)
        # Before any embedding: an inactive tenant refuses the whole call at once.
        await self._backends.ensure_active_tenant(tenant, budget.remaining("the tenant check"))
        # Tokenizing a megabyte takes a while: off the event loop, so other calls go on.
        outcomes = await asyncio.to_thread(lambda: [self._chunk(d) for d in documents])
        await self._embed_and_store(tenant, outcomes, budget)
        return outcomes

    async def _embed_and_store(
        self, tenant: str, outcomes: Sequence[DocumentOutcome], budget: Budget
    ) -> None:
        """Embeds batch after batch while the documents already embedded are being stored.

        Storing waits on Weaviate's indexing, embedding on the model: overlapped, neither waits
        for the other. Only documents whose every chunk has its vector are stored, in document
        order and one upsert at a time, as when all embedding came first; a document whose
        embedding fails is never stored.
        """
        embedded: list[DocumentOutcome] = []
        storing: asyncio.Task[None] | None = None

        async def flush(ready: list[DocumentOutcome]) -> None:
            nonlocal storing
            if storing is not None:
                await storing
            storing = asyncio.create_task(self._store(tenant, ready, budget))

        remaining = [o for o in outcomes if o.indexed]
        try:
            async for done in self._embed(remaining, budget):
                embedded.extend(o for o in done if o.indexed)
                queued = sum(len(o.chunks) for o in embedded)
                if queued >= self._settings.store_batch_chunks:
                    ready, embedded = embedded, []
                    await flush(ready)
            if embedded:
                await flush(embedded)
            if storing is not None:
                await storing
        finally:
            # A cancelled or failed call leaves no upsert running behind it.
            if storing is not None and not storing.done():
                storing.cancel()
        ready = [o for o in outcomes if o.indexed]
        log.info(
            "ingested",
            tenant=tenant,
            documents=len(outcomes),
            indexed=len(ready),
            chunks=sum(len(o.chunks) for o in ready),
        )

    async def _embed(
        self, outcomes: Sequence[DocumentOutcome], budget: Budget
    ) -> AsyncIterator[list[DocumentOutcome]]:
        """Embeds in batches; after each, yields the documents whose last chunk it held."""
        pending = [(o, c) for o in outcomes if o.indexed for c in o.chunks]
        size = self._settings.embed_batch_size
        for start in range(0, len(pending), size):
            batch = pending[start : start + size]
            finished = _finished_documents(pending, start, start + size)
            batch = [(o, c) for o, c in batch if o.indexed]
            if not batch:
                yield finished
                continue
            try:
                vectors = await self._backends.embed(
                    [chunk.text for _, chunk in batch], budget.remaining("embedding")
                )
            except ServiceError as error:
                for outcome, _ in batch:
                    outcome.error = f"embedding failed: {error.message}"
                yield finished
                continue
            for (_, chunk), vector in zip(batch, vectors, strict=True):
                chunk.vector = vector
            yield finished

    def _store_batches(
        self, outcomes: Sequence[DocumentOutcome]
    ) -> list[tuple[list[ChunkToStore], dict[str, int]]]:
        """Chunks in upsert-sized batches; each document's length goes with its last chunk."""
        size = self._settings.store_batch_chunks
        batches: list[tuple[list[ChunkToStore], dict[str, int]]] = [([], {})]
        for outcome in outcomes:
            for chunk in outcome.chunks:
                if len(batches[-1][0]) == size:
                    batches.append(([], {}))
                batches[-1][0].append(chunk)
            batches[-1][1][outcome.document_id] = len(outcome.chunks)
        return batches

    async def _store(
        self, tenant: str, outcomes: Sequence[DocumentOutcome], budget: Budget
    ) -> None:
        ready = [o for o in outcomes if o.indexed]
        if not ready:
            return
        by_document = {o.document_id: o for o in ready}
        for chunks, counts in self._store_batches(ready):
            try:
                stored = await self._backends.store(
                    tenant, chunks, counts, budget.remaining("storing")
                )
            except ServiceError as error:
                for document_id in {c.document_id for c in chunks}:
                    by_document[document_id].error = f"storing failed: {error.message}"
                continue
            owner = {chunk.chunk_id: chunk.document_id for chunk in chunks}
            for chunk_id, message in stored.failed_chunks.items():
                by_document[owner[chunk_id]].error = f"chunk {chunk_id} not stored: {message}"
