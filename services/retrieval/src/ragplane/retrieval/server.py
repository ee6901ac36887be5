"""gRPC face of the retrieval service."""

from __future__ import annotations

import asyncio

import grpc
import structlog
import weaviate

from ragplane.retrieval.config import RetrievalSettings
from ragplane.retrieval.store import ChunkStore, StoredChunk
from ragplane.retrieval.validation import check_delete, check_search, check_upsert
from ragplane.runtime.context import RpcContext
from ragplane.runtime.readiness import WarmedUp
from ragplane.v1 import retrieval_pb2, retrieval_pb2_grpc

log = structlog.get_logger(__name__)


def _stored_chunk(message: retrieval_pb2.ChunkWithVector) -> StoredChunk:
    chunk = message.chunk
    return StoredChunk(
        chunk_id=chunk.chunk_id,
        document_id=chunk.document_id,
        chunk_index=chunk.chunk_index,
        text=chunk.text,
        title=chunk.title,
        metadata=dict(chunk.metadata),
        vector=list(message.vector),
    )


def _chunk_message(chunk: StoredChunk) -> retrieval_pb2.Chunk:
    return retrieval_pb2.Chunk(
        chunk_id=chunk.chunk_id,
        document_id=chunk.document_id,
        chunk_index=chunk.chunk_index,
        text=chunk.text,
        title=chunk.title,
        metadata=chunk.metadata,
    )


class RetrievalServicer(retrieval_pb2_grpc.RetrievalServiceServicer):
    def __init__(self, store: WarmedUp[ChunkStore], settings: RetrievalSettings) -> None:
        self._store = store
        self._settings = settings

    async def Upsert(
        self, request: retrieval_pb2.UpsertRequest, context: RpcContext
    ) -> retrieval_pb2.UpsertResponse:
        chunks = [_stored_chunk(item) for item in request.chunks]
        counts = dict(request.document_chunk_counts)
        check_upsert(request.tenant, chunks, counts, self._settings.max_chunks_per_upsert)
        outcome = await self._store.get().upsert(request.tenant, chunks, counts)
        return retrieval_pb2.UpsertResponse(
            upserted=outcome.upserted,
            errors=[
                retrieval_pb2.ChunkError(chunk_id=chunk_id, message=message)
                for chunk_id, message in outcome.errors.items()
            ],
            removed_stale=outcome.removed_stale,
        )

    async def Search(
        self, request: retrieval_pb2.SearchRequest, context: RpcContext
    ) -> retrieval_pb2.SearchResponse:
        alpha = request.alpha if request.HasField("alpha") else self._settings.default_alpha
        if not request.query_vector:
            alpha = 0.0
        check_search(
            request.tenant, request.query_text, alpha, request.top_k, self._settings.max_top_k
        )
        hits = await self._store.get().search(
            request.tenant,
            request.query_text,
            list(request.query_vector),
            alpha,
            request.top_k,
            [(f.field, f.equals) for f in request.filters],
        )
        return retrieval_pb2.SearchResponse(
            hits=[
                retrieval_pb2.SearchHit(chunk=_chunk_message(hit.chunk), score=hit.score)
                for hit in hits
            ],
            alpha=alpha,
        )

    async def Delete(
        self, request: retrieval_pb2.DeleteRequest, context: RpcContext
    ) -> retrieval_pb2.DeleteResponse:
        check_delete(request.tenant, list(request.document_ids))
        deleted = await self._store.get().delete_documents(
            request.tenant, list(request.document_ids)
        )
        return retrieval_pb2.DeleteResponse(deleted_chunks=deleted)


class RetrievalApplication:
    service_names = (retrieval_pb2.DESCRIPTOR.services_by_name["RetrievalService"].full_name,)

    def __init__(self, settings: RetrievalSettings) -> None:
        self._settings = settings
        self._store: WarmedUp[ChunkStore] = WarmedUp("the connection to Weaviate")
        self._client: weaviate.WeaviateAsyncClient | None = None

    def register(self, server: grpc.aio.Server) -> None:
        servicer = RetrievalServicer(self._store, self._settings)
        retrieval_pb2_grpc.add_RetrievalServiceServicer_to_server(servicer, server)

    async def warm_up(self) -> None:
        settings = self._settings
        client = ChunkStore.client_for(
            settings.weaviate_host,
            settings.weaviate_http_port,
            settings.weaviate_grpc_port,
            settings.weaviate_timeout_s,
        )
        self._client = client
        delay = 0.5
        # Weaviate may start after us (or restart); wait for it rather than crash-loop.
        while True:
            try:
                await client.connect()
                break
            except weaviate.exceptions.WeaviateBaseError as error:
                log.warning("waiting for Weaviate", error=str(error), retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        store = ChunkStore(client, settings.collection, settings.filterable_metadata)
        await store.ensure_collection()
        self._store.set(store)
        log.info("connected to Weaviate", collection=settings.collection)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
