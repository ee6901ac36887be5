"""Ingestion: documents -> token-aware chunks -> embeddings in batches -> upsert per tenant."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import structlog

from ragplane.query.backends import Backends
from ragplane.query.chunking import Chunker
from ragplane.query.config import QuerySettings
from ragplane.query.domain import Chunk, DocumentOutcome, SourceDocument
from ragplane.runtime.errors import ServiceError
from ragplane.runtime.resilience import Deadline

log = structlog.get_logger(__name__)


def _finished_documents(
    pending: Sequence[tuple[DocumentOutcome, Chunk]], start: int, end: int
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

    def _chunk(self, document: SourceDocument) -> DocumentOutcome:
        """The document's chunks; a document with no indexable text fails alone, and its
        chunks from an earlier ingest stay as they were."""
        chunks = [
            Chunk(document.document_id, piece.index, piece.text, document.title, document.metadata)
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
        self, tenant: str, documents: Sequence[SourceDocument], deadline: Deadline
    ) -> list[DocumentOutcome]:
        """Chunk, embed and store validated documents (requests.py checked the request)."""
        # Before any embedding: an inactive tenant refuses the whole call at once.
        await self._backends.ensure_active_tenant(tenant, deadline.require("the tenant check"))
        # Tokenizing a megabyte takes a while: off the event loop, so other calls go on.
        outcomes = await asyncio.to_thread(lambda: [self._chunk(d) for d in documents])
        await self._embed_and_store(tenant, outcomes, deadline)
        return outcomes

    async def _embed_and_store(
        self, tenant: str, outcomes: Sequence[DocumentOutcome], deadline: Deadline
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
            storing = asyncio.create_task(self._store(tenant, ready, deadline))

        remaining = [o for o in outcomes if o.indexed]
        try:
            async for done in self._embed(remaining, deadline):
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
        self, outcomes: Sequence[DocumentOutcome], deadline: Deadline
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
                    [chunk.text for _, chunk in batch], deadline.require("embedding")
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
    ) -> list[tuple[list[Chunk], dict[str, int]]]:
        """Chunks in upsert-sized batches; each document's length goes with its last chunk."""
        size = self._settings.store_batch_chunks
        batches: list[tuple[list[Chunk], dict[str, int]]] = [([], {})]
        for outcome in outcomes:
            for chunk in outcome.chunks:
                if len(batches[-1][0]) == size:
                    batches.append(([], {}))
                batches[-1][0].append(chunk)
            batches[-1][1][outcome.document_id] = len(outcome.chunks)
        return batches

    async def _store(
        self, tenant: str, outcomes: Sequence[DocumentOutcome], deadline: Deadline
    ) -> None:
        ready = [o for o in outcomes if o.indexed]
        if not ready:
            return
        by_document = {o.document_id: o for o in ready}
        for chunks, counts in self._store_batches(ready):
            try:
                stored = await self._backends.store(
                    tenant, chunks, counts, deadline.require("storing")
                )
            except ServiceError as error:
                for document_id in {c.document_id for c in chunks}:
                    by_document[document_id].error = f"storing failed: {error.message}"
                continue
            owner = {chunk.chunk_id: chunk.document_id for chunk in chunks}
            for chunk_id, message in stored.failed_chunks.items():
                by_document[owner[chunk_id]].error = f"chunk {chunk_id} not stored: {message}"
