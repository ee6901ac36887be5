"""Chunks in Weaviate: one multi-tenant collection, one Weaviate tenant per ragplane tenant."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import weaviate
from weaviate.classes.config import Configure, DataType, Property, Tokenization
from weaviate.classes.data import DataObject
from weaviate.classes.init import AdditionalConfig, Timeout
from weaviate.classes.query import Filter, HybridFusion, MetadataQuery
from weaviate.collections.classes.filters import _Filters
from weaviate.exceptions import WeaviateBaseError

from ragplane.runtime.errors import InvalidArgument, NotFound, Unavailable

# Chunk ids are unique per tenant; the Weaviate object id is derived from them, so that
# storing a chunk again replaces it instead of adding a copy.
_CHUNK_NAMESPACE = uuid.UUID("5b0f6b0e-8f7c-4a43-9d0f-0d5c2a1f7a11")
_TENANT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_SEARCHED_PROPERTIES = ["text", "title"]
_FIXED_FILTER_FIELDS = {"document_id": "document_id"}


def chunk_uuid(chunk_id: str) -> str:
    return str(uuid.uuid5(_CHUNK_NAMESPACE, chunk_id))


def metadata_property(key: str) -> str:
    return f"meta_{key}"


def _keyword_property(name: str) -> Property:
    """A text property matched whole by filters and left out of BM25."""
    return Property(
        name=name, data_type=DataType.TEXT, tokenization=Tokenization.FIELD, index_searchable=False
    )


def validate_tenant(tenant: str) -> None:
    if not tenant:
        raise InvalidArgument.of("tenant", "is required")
    if not _TENANT_NAME.match(tenant):
        raise InvalidArgument.of(
            "tenant", "must be 1-64 letters, digits, '-' or '_', starting with a letter or digit"
        )


@dataclass
class StoredChunk:
    chunk_id: str
    document_id: str
    chunk_index: int
    text: str
    title: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    vector: Sequence[float] = ()


@dataclass(frozen=True)
class ScoredChunk:
    chunk: StoredChunk
    score: float


@dataclass(frozen=True)
class UpsertOutcome:
    upserted: int
    errors: dict[str, str]
    removed_stale: int


@asynccontextmanager
async def _weaviate_call(what: str) -> AsyncIterator[None]:
    """Turn Weaviate client failures into UNAVAILABLE with a message that says what failed."""
    try:
        yield
    except WeaviateBaseError as error:
        raise Unavailable(f"Weaviate could not {what}: {error}") from error


class ChunkStore:
    """Reads and writes chunks of one collection; every call is scoped to a tenant."""

    def __init__(
        self,
        client: weaviate.WeaviateAsyncClient,
        collection: str,
        filterable_metadata: Sequence[str],
    ) -> None:
        self._client = client
        self._collection_name = collection
        self._filterable = list(filterable_metadata)
        self._collection = client.collections.use(collection)
        self._known_tenants: set[str] = set()

    @classmethod
    def client_for(
        cls, host: str, http_port: int, grpc_port: int, timeout_s: float
    ) -> weaviate.WeaviateAsyncClient:
        return weaviate.use_async_with_custom(
            http_host=host,
            http_port=http_port,
            http_secure=False,
            grpc_host=host,
            grpc_port=grpc_port,
            grpc_secure=False,
            additional_config=AdditionalConfig(
                timeout=Timeout(init=10, query=timeout_s, insert=timeout_s)
            ),
        )

    async def ensure_collection(self) -> None:
        """Create the chunk collection on first start; later starts find it and keep its data."""
        async with _weaviate_call("prepare the chunk collection"):
            if await self._client.collections.exists(self._collection_name):
                return
            await self._client.collections.create(
                self._collection_name,
                vector_config=Configure.Vectors.self_provided(),
                multi_tenancy_config=Configure.multi_tenancy(
                    enabled=True, auto_tenant_creation=True, auto_tenant_activation=True
                ),
                properties=[
                    _keyword_property("chunk_id"),
                    _keyword_property("document_id"),
                    Property(name="chunk_index", data_type=DataType.INT),
                    Property(name="text", data_type=DataType.TEXT),
                    Property(name="title", data_type=DataType.TEXT),
                    Property(
                        name="metadata_json",
                        data_type=DataType.TEXT,
                        index_filterable=False,
                        index_searchable=False,
                    ),
                    *(_keyword_property(metadata_property(key)) for key in self._filterable),
                ],
            )

    async def require_tenant(self, tenant: str) -> None:
        validate_tenant(tenant)
        if tenant in self._known_tenants:
            return
        async with _weaviate_call(f"look up tenant {tenant!r}"):
            found = await self._collection.tenants.get_by_name(tenant)
        if found is None:
            raise NotFound(f"tenant {tenant!r} has no documents; ingest some first")
        self._known_tenants.add(tenant)

    def _properties(self, chunk: StoredChunk) -> dict[str, Any]:
        properties: dict[str, Any] = {
            "chunk_id": chunk.chunk_id,
            "document_id": chunk.document_id,
            "chunk_index": chunk.chunk_index,
            "text": chunk.text,
            "title": chunk.title,
            "metadata_json": json.dumps(chunk.metadata, sort_keys=True),
        }
        for key in self._filterable:
            if key in chunk.metadata:
                properties[metadata_property(key)] = chunk.metadata[key]
        return properties

    async def upsert(
        self, tenant: str, chunks: Sequence[StoredChunk], chunk_counts: Mapping[str, int]
    ) -> UpsertOutcome:
        """Store chunks, then trim each document in ``chunk_counts`` to its new length.

        A document with a chunk that failed to store keeps its old tail: removing it would
        leave the document with a hole instead of a stale end.
        """
        validate_tenant(tenant)
        objects = [
            DataObject(
                properties=self._properties(chunk),
                uuid=chunk_uuid(chunk.chunk_id),
                vector=list(chunk.vector),
            )
            for chunk in chunks
        ]
        collection = self._collection.with_tenant(tenant)
        async with _weaviate_call(f"store chunks for tenant {tenant!r}"):
            result = await collection.data.insert_many(objects)
        errors = {chunks[index].chunk_id: error.message for index, error in result.errors.items()}
        self._known_tenants.add(tenant)
        failed_documents = {c.document_id for c in chunks if c.chunk_id in errors}
        trims = {d: n for d, n in chunk_counts.items() if d not in failed_documents}
        removed = await self._trim_documents(tenant, trims)
        return UpsertOutcome(len(chunks) - len(errors), errors, removed)

    async def _trim_documents(self, tenant: str, chunk_counts: Mapping[str, int]) -> int:
        collection = self._collection.with_tenant(tenant)
        removed = 0
        async with _weaviate_call(f"remove stale chunks for tenant {tenant!r}"):
            for document_id, count in chunk_counts.items():
                result = await collection.data.delete_many(
                    where=Filter.by_property("document_id").equal(document_id)
                    & Filter.by_property("chunk_index").greater_or_equal(count)
                )
                removed += result.successful
        return removed

    def _filters(self, filters: Sequence[tuple[str, str]]) -> _Filters | None:
        conditions = []
        for position, (name, value) in enumerate(filters):
            if name in _FIXED_FILTER_FIELDS:
                prop = _FIXED_FILTER_FIELDS[name]
            elif name in self._filterable:
                prop = metadata_property(name)
            else:
                allowed = sorted([*_FIXED_FILTER_FIELDS, *self._filterable])
                raise InvalidArgument.of(
                    f"filters[{position}].field",
                    f"{name!r} is not filterable; filterable fields: {', '.join(allowed)}",
                )
            conditions.append(Filter.by_property(prop).equal(value))
        return Filter.all_of(conditions) if conditions else None

    async def search(
        self,
        tenant: str,
        query_text: str,
        query_vector: Sequence[float],
        alpha: float,
        top_k: int,
        filters: Sequence[tuple[str, str]],
    ) -> list[ScoredChunk]:
        where = self._filters(filters)
        await self.require_tenant(tenant)
        query = self._collection.with_tenant(tenant).query
        metadata = MetadataQuery(score=True)
        async with _weaviate_call(f"search tenant {tenant!r}"):
            if query_vector:
                result = await query.hybrid(
                    query=query_text,
                    vector=list(query_vector),
                    alpha=alpha,
                    limit=top_k,
                    filters=where,
                    query_properties=_SEARCHED_PROPERTIES,
                    fusion_type=HybridFusion.RELATIVE_SCORE,
                    return_metadata=metadata,
                )
            else:
                result = await query.bm25(
                    query=query_text,
                    limit=top_k,
                    filters=where,
                    query_properties=_SEARCHED_PROPERTIES,
                    return_metadata=metadata,
                )
        return [
            ScoredChunk(self._chunk_from(obj.properties), float(obj.metadata.score or 0.0))
            for obj in result.objects
        ]

    @staticmethod
    def _chunk_from(properties: Mapping[str, Any]) -> StoredChunk:
        return StoredChunk(
            chunk_id=str(properties["chunk_id"]),
            document_id=str(properties["document_id"]),
            chunk_index=int(properties["chunk_index"]),
            text=str(properties["text"]),
            title=str(properties.get("title") or ""),
            metadata=json.loads(str(properties.get("metadata_json") or "{}")),
        )

    async def delete_documents(self, tenant: str, document_ids: Sequence[str]) -> int:
        await self.require_tenant(tenant)
        collection = self._collection.with_tenant(tenant)
        async with _weaviate_call(f"delete documents of tenant {tenant!r}"):
            result = await collection.data.delete_many(
                where=Filter.by_property("document_id").contains_any(list(document_ids))
            )
        return int(result.successful)
