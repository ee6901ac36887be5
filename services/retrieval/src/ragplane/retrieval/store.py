"""Chunks in Weaviate: one multi-tenant collection, one Weaviate tenant per ragplane tenant."""

from __future__ import annotations

import asyncio
import enum
import json
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import weaviate
from weaviate.classes.aggregate import GroupByAggregate
from weaviate.classes.config import (
    Configure,
    ConsistencyLevel,
    DataType,
    Property,
    Reconfigure,
    Tokenization,
)
from weaviate.classes.data import DataObject
from weaviate.classes.query import Filter, HybridFusion, MetadataQuery
from weaviate.classes.tenants import Tenant, TenantActivityStatus
from weaviate.collections import CollectionAsync

from ragplane.retrieval.filters import (
    FieldFilter,
    FieldType,
    FilterBuilder,
    metadata_property,
    parse_number,
)
from ragplane.retrieval.metrics import WEAVIATE_FAILURES, WEAVIATE_RESENT_WRITES
from ragplane.retrieval.retries import RetryPolicy, retry_transient, weaviate_unavailable
from ragplane.runtime.errors import FailedPrecondition, NotFound
from ragplane.runtime.fields import check_tenant
from ragplane.runtime.resilience import Deadline
from ragplane.runtime.weaviate_client import WeaviateFailure, resends_seen

# Chunk ids are unique per tenant; the Weaviate object id is derived from them, so that
# storing a chunk again replaces it instead of adding a copy.
_CHUNK_NAMESPACE = uuid.UUID("5b0f6b0e-8f7c-4a43-9d0f-0d5c2a1f7a11")
_SEARCHED_PROPERTIES = ["text", "title"]
# Why an object is written again though Weaviate stored it (ChunkStore._replace).
_RESENT_FINAL_WRITE = "the write broke off and was sent again whole; writing it again"


def chunk_uuid(chunk_id: str) -> str:
    return str(uuid.uuid5(_CHUNK_NAMESPACE, chunk_id))


def _keyword_property(name: str) -> Property:
    """A text property matched whole by filters and left out of BM25."""
    return Property(
        name=name, data_type=DataType.TEXT, tokenization=Tokenization.FIELD, index_searchable=False
    )


def _metadata_property(key: str, field_type: FieldType) -> Property:
    if field_type == "number":
        return Property(name=metadata_property(key), data_type=DataType.NUMBER)
    return _keyword_property(metadata_property(key))


class Fusion(enum.Enum):
    RELATIVE_SCORE = "relative_score"
    RANKED = "ranked"


_WEAVIATE_FUSION = {
    Fusion.RELATIVE_SCORE: HybridFusion.RELATIVE_SCORE,
    Fusion.RANKED: HybridFusion.RANKED,
}


class TenantState(enum.Enum):
    ACTIVE = "active"
    INACTIVE = "inactive"
    OFFLOADED = "offloaded"
    CHANGING = "changing"


_STATES = {
    TenantActivityStatus.ACTIVE: TenantState.ACTIVE,
    TenantActivityStatus.INACTIVE: TenantState.INACTIVE,
    TenantActivityStatus.OFFLOADED: TenantState.OFFLOADED,
    TenantActivityStatus.OFFLOADING: TenantState.CHANGING,
    TenantActivityStatus.ONLOADING: TenantState.CHANGING,
}


@dataclass(frozen=True)
class TenantInfo:
    name: str
    state: TenantState


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
    # Cosine similarity of the chunk's vector to the query's; None for a BM25-only search.
    vector_similarity: float | None = None


@dataclass(frozen=True)
class UpsertOutcome:
    upserted: int
    errors: dict[str, str]
    removed_stale: int


@dataclass(frozen=True)
class HybridQuery:
    """One search: BM25 only when ``vector`` is empty, else hybrid weighted by ``alpha``."""

    text: str
    vector: Sequence[float]
    alpha: float
    fusion: Fusion
    limit: int
    filters: Sequence[FieldFilter] = ()


@dataclass(frozen=True)
class ChunkCounts:
    total: int
    per_document: dict[str, int]


@asynccontextmanager
async def _weaviate_call(what: str) -> AsyncIterator[None]:
    """Turn Weaviate client failures into UNAVAILABLE with a message that says what failed."""
    try:
        yield
    except WeaviateFailure as error:
        raise weaviate_unavailable(what, error) from error


@dataclass(frozen=True)
class Replication:
    """Copies of each chunk, and how many answer a read or acknowledge a write."""

    factor: int
    consistency_level: str


class ChunkStore:
    """Reads and writes chunks of one collection; every call is scoped to a tenant.

    Tenant status is looked up in Weaviate on every call rather than cached, because another
    replica (or an operator) may deactivate or delete a tenant at any time.
    """

    def __init__(
        self,
        client: weaviate.WeaviateAsyncClient,
        collection: str,
        filterable_metadata: Mapping[str, FieldType],
        retry: RetryPolicy,
        replication: Replication,
    ) -> None:
        self._client = client
        self._collection_name = collection
        self._declared = dict(filterable_metadata)
        self._filters = FilterBuilder(self._declared)
        # Every read and write through this handle (and its tenants') waits for this many copies.
        self._collection = client.collections.use(collection).with_consistency_level(
            ConsistencyLevel(replication.consistency_level)
        )
        self._replication_factor = replication.factor
        self._retry = retry

    # -- collection ---------------------------------------------------------------------------

    async def ensure_collection(self) -> None:
        """Create the chunk collection on first start; later starts keep its data.

        Tenants are created by the first upsert (or CreateTenant) but never activated
        implicitly: a deactivated tenant stays inactive until ActivateTenant.
        """
        async with _weaviate_call("prepare the chunk collection"):
            if not await self._client.collections.exists(self._collection_name):
                try:
                    await self._create_collection()
                    return
                except WeaviateFailure:
                    # Replicas starting together: another one may have created it first.
                    if not await self._client.collections.exists(self._collection_name):
                        raise
            await self._update_existing_collection()

    async def _create_collection(self) -> None:
        await self._client.collections.create(
            self._collection_name,
            vector_config=Configure.Vectors.self_provided(),
            replication_config=Configure.replication(factor=self._replication_factor),
            multi_tenancy_config=Configure.multi_tenancy(
                enabled=True, auto_tenant_creation=True, auto_tenant_activation=False
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
                *(_metadata_property(k, t) for k, t in self._declared.items()),
            ],
        )

    async def _update_existing_collection(self) -> None:
        """Add properties for newly declared metadata; stop implicit tenant activation."""
        config = await self._collection.config.get()
        existing = {prop.name for prop in config.properties}
        for key, field_type in self._declared.items():
            if metadata_property(key) not in existing:
                await self._collection.config.add_property(_metadata_property(key, field_type))
        if config.multi_tenancy_config.auto_tenant_activation:
            await self._collection.config.update(
                multi_tenancy_config=Reconfigure.multi_tenancy(auto_tenant_activation=False)
            )

    # -- tenants ------------------------------------------------------------------------------

    async def _tenant_state(self, tenant: str, retried: bool = True) -> TenantState | None:
        check_tenant(tenant)
        what = f"look up tenant {tenant!r}"
        if retried:
            found = await retry_transient(
                lambda: self._collection.tenants.get_by_name(tenant),
                self._retry,
                "tenant_lookup",
                what,
            )
        else:
            async with _weaviate_call(what):
                found = await self._collection.tenants.get_by_name(tenant)
        return None if found is None else _STATES[found.activity_status]

    async def require_tenant(self, tenant: str) -> None:
        """NOT_FOUND for a tenant that does not exist."""
        if await self._tenant_state(tenant) is None:
            raise NotFound(f"tenant {tenant!r} does not exist")

    async def require_active_tenant(self, tenant: str, retried: bool = True) -> None:
        """NOT_FOUND for an unknown tenant, FAILED_PRECONDITION for one that is not active."""
        state = await self._tenant_state(tenant, retried)
        if state is None:
            raise NotFound(f"tenant {tenant!r} does not exist; create it or ingest documents")
        _require_active(tenant, state)

    async def create_tenant(self, tenant: str) -> tuple[TenantInfo, bool]:
        """The tenant, and whether this call created it."""
        state = await self._tenant_state(tenant)
        if state is not None:
            return TenantInfo(tenant, state), False
        await self._create_if_absent(tenant)
        return TenantInfo(tenant, TenantState.ACTIVE), True

    async def _create_if_absent(self, tenant: str) -> None:
        """Create the tenant; another caller creating it at the same moment is fine too."""
        try:
            await self._collection.tenants.create(Tenant(name=tenant))
        except WeaviateFailure as error:
            if await self._tenant_state(tenant) is None:
                raise weaviate_unavailable(f"create tenant {tenant!r}", error) from error

    async def list_tenants(self) -> list[TenantInfo]:
        async with _weaviate_call("list tenants"):
            tenants = await self._collection.tenants.get()
        return [TenantInfo(name, _STATES[t.activity_status]) for name, t in sorted(tenants.items())]

    async def set_tenant_active(self, tenant: str, active: bool) -> TenantInfo:
        """Change an existing tenant's status (require_tenant first)."""
        status = TenantActivityStatus.ACTIVE if active else TenantActivityStatus.INACTIVE
        async with _weaviate_call(f"change the status of tenant {tenant!r}"):
            await self._collection.tenants.update(Tenant(name=tenant, activity_status=status))
        state = await self._tenant_state(tenant)
        return TenantInfo(tenant, state or TenantState.CHANGING)

    async def delete_tenant(self, tenant: str) -> None:
        """Delete an existing tenant and its chunks (require_tenant first)."""
        async with _weaviate_call(f"delete tenant {tenant!r}"):
            await self._collection.tenants.remove([tenant])

    # -- writes -------------------------------------------------------------------------------

    def _properties(self, chunk: StoredChunk) -> dict[str, Any]:
        properties: dict[str, Any] = {
            "chunk_id": chunk.chunk_id,
            "document_id": chunk.document_id,
            "chunk_index": chunk.chunk_index,
            "text": chunk.text,
            "title": chunk.title,
            "metadata_json": json.dumps(chunk.metadata, sort_keys=True),
        }
        for key, field_type in self._declared.items():
            if key in chunk.metadata:
                value = chunk.metadata[key]
                where = f"chunk {chunk.chunk_id!r} metadata[{key!r}]"
                typed = parse_number(value, where) if field_type == "number" else value
                properties[metadata_property(key)] = typed
        return properties

    async def upsert(
        self,
        tenant: str,
        chunks: Sequence[StoredChunk],
        chunk_counts: Mapping[str, int],
        deadline: Deadline | None = None,
    ) -> UpsertOutcome:
        """Store chunks, then trim each document in ``chunk_counts`` to its new length.

        Creates the tenant when it does not exist; an inactive tenant is FAILED_PRECONDITION.
        Transient failures are retried (whole call or failed objects) within the policy and
        ``deadline``; chunks still failing are reported per chunk. A document with a chunk that
        failed keeps its old tail: removing it would leave a hole instead of a stale end.
        """
        state = await self._tenant_state(tenant)
        if state is None:
            await self._create_if_absent(tenant)
        else:
            _require_active(tenant, state)
        objects = {
            chunk.chunk_id: DataObject(
                properties=self._properties(chunk),
                uuid=chunk_uuid(chunk.chunk_id),
                vector=list(chunk.vector),
            )
            for chunk in chunks
        }
        errors = await self._insert_with_retries(tenant, objects, deadline)
        failed_documents = {c.document_id for c in chunks if c.chunk_id in errors}
        trims = {d: n for d, n in chunk_counts.items() if d not in failed_documents}
        removed = await self._trim_documents(tenant, trims, deadline)
        return UpsertOutcome(len(chunks) - len(errors), errors, removed)

    async def _insert_with_retries(
        self, tenant: str, objects: Mapping[str, DataObject[Any, Any]], deadline: Deadline | None
    ) -> dict[str, str]:
        """Write; objects Weaviate rejected are tried again up to the policy's attempts."""
        collection = self._collection.with_tenant(tenant)
        pending = dict(objects)
        errors: dict[str, str] = {}
        for attempt in range(1, self._retry.attempts + 1):
            ids = list(pending)
            batch = [pending[chunk_id] for chunk_id in ids]
            failures = await retry_transient(
                lambda batch=batch: self._replace(collection, batch),  # type: ignore[misc]
                self._retry,
                "store",
                f"store chunks for tenant {tenant!r}",
                deadline,
            )
            errors = {ids[index]: message for index, message in failures.items()}
            pending = {chunk_id: pending[chunk_id] for chunk_id in errors}
            if pending:
                WEAVIATE_FAILURES.labels("store").inc()
            wait_s = self._retry.wait_s(attempt)
            out_of_time = deadline is not None and not deadline.allows(wait_s)
            if not pending or out_of_time or attempt == self._retry.attempts:
                break
            await asyncio.sleep(wait_s)
        return errors

    @staticmethod
    async def _replace(
        collection: CollectionAsync[Any, Any], batch: Sequence[DataObject[Any, Any]]
    ) -> dict[int, str]:
        """Store each object twice: first with its vector nudged by one float32 step, then as is.

        Weaviate re-indexes an object's properties from scratch only when its vector changes;
        an object stored again with the same vector keeps its old inverted-index entries
        (weaviate issues 3948, 3949). A SIGKILL in the middle of a batch can leave an object
        on disk without some of those entries, and a plain retry would then leave it unfindable
        by filters and keyword search for good. The nudged write guarantees that the final
        write changes the vector, so every write ends in a full re-index.

        Nothing is deleted first: each chunk id holds its old or its new version at every
        moment, so a write that fails (and is reported as failed) never takes away chunks that
        were acknowledged before. The nudge is one unit in the last place of one component,
        and it is visible only between the two writes.

        weaviate-client sends a batch that broke off (UNAVAILABLE) again by itself, unchanged,
        once Weaviate answers. A nudged write sent twice is harmless (the final write changes the
        vector after it), but a final write sent twice is the same write again, kept as it is,
        holes and all: its objects are reported failed, so that the pair is written again.
        """
        nudged = await collection.data.insert_many([with_nudged_vector(item) for item in batch])
        failures = {index: error.message for index, error in nudged.errors.items()}
        written = [index for index in range(len(batch)) if index not in failures]
        if written:
            with resends_seen() as resends:
                final = await collection.data.insert_many([batch[index] for index in written])
            for position, error in final.errors.items():
                failures[written[position]] = error.message
            if resends:
                WEAVIATE_RESENT_WRITES.inc()
                for index in written:
                    failures.setdefault(index, _RESENT_FINAL_WRITE)
        return failures

    async def _trim_documents(
        self, tenant: str, chunk_counts: Mapping[str, int], deadline: Deadline | None
    ) -> int:
        collection = self._collection.with_tenant(tenant)
        removed = 0
        for document_id, count in chunk_counts.items():
            where = Filter.by_property("document_id").equal(document_id) & Filter.by_property(
                "chunk_index"
            ).greater_or_equal(count)
            result = await retry_transient(
                lambda where=where: collection.data.delete_many(where=where),  # type: ignore[misc]
                self._retry,
                "remove_stale",
                f"remove stale chunks of {document_id!r} for tenant {tenant!r}",
                deadline,
            )
            removed += int(result.successful)
        return removed

    async def delete_documents(self, tenant: str, document_ids: Sequence[str]) -> int:
        await self.require_active_tenant(tenant)
        collection = self._collection.with_tenant(tenant)
        where = Filter.by_property("document_id").contains_any(list(document_ids))
        result = await retry_transient(
            lambda: collection.data.delete_many(where=where),
            self._retry,
            "delete",
            f"delete documents of tenant {tenant!r}",
        )
        return int(result.successful)

    # -- reads --------------------------------------------------------------------------------

    async def search(self, tenant: str, query: HybridQuery) -> list[ScoredChunk]:
        where = self._filters.build(query.filters)
        # A search fails fast when Weaviate is down: the caller has a deadline and a fallback
        # (a cached answer, or a clear UNAVAILABLE), and retries would only spend its time.
        await self.require_active_tenant(tenant, retried=False)
        weaviate_query = self._collection.with_tenant(tenant).query
        metadata = MetadataQuery(score=True)
        async with _weaviate_call(f"search tenant {tenant!r}"):
            if query.vector:
                result = await weaviate_query.hybrid(
                    query=query.text,
                    vector=list(query.vector),
                    alpha=query.alpha,
                    limit=query.limit,
                    filters=where,
                    query_properties=_SEARCHED_PROPERTIES,
                    fusion_type=_WEAVIATE_FUSION[query.fusion],
                    return_metadata=metadata,
                    include_vector=True,
                )
            else:
                result = await weaviate_query.bm25(
                    query=query.text,
                    limit=query.limit,
                    filters=where,
                    query_properties=_SEARCHED_PROPERTIES,
                    return_metadata=metadata,
                )
        return [
            ScoredChunk(
                self._chunk_from(obj.properties),
                float(obj.metadata.score or 0.0),
                _similarity(query.vector, obj.vector.get("default")) if query.vector else None,
            )
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

    async def count_chunks(self, tenant: str, document_ids: Sequence[str]) -> ChunkCounts:
        await self.require_active_tenant(tenant)
        aggregate = self._collection.with_tenant(tenant).aggregate
        async with _weaviate_call(f"count the chunks of tenant {tenant!r}"):
            total = await aggregate.over_all(total_count=True)
            per_document = dict.fromkeys(document_ids, 0)
            if document_ids:
                groups = await aggregate.over_all(
                    total_count=True,
                    filters=Filter.by_property("document_id").contains_any(list(document_ids)),
                    group_by=GroupByAggregate(prop="document_id", limit=len(document_ids)),
                )
                for group in groups.groups:
                    per_document[str(group.grouped_by.value)] = int(group.total_count or 0)
        return ChunkCounts(int(total.total_count or 0), per_document)


def _require_active(tenant: str, state: TenantState) -> None:
    if state is not TenantState.ACTIVE:
        raise FailedPrecondition(
            f"tenant {tenant!r} is {state.value}; activate it (ActivateTenant) before using it"
        )


def _similarity(query: Sequence[float], stored: Any) -> float | None:
    """Cosine similarity of a stored vector to the query's; None when Weaviate sent none."""
    if not stored:
        return None
    a = np.asarray(query, dtype=np.float32)
    b = np.asarray(stored, dtype=np.float32)
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b) / norm if norm else 0.0


def with_nudged_vector(item: DataObject[Any, Any]) -> DataObject[Any, Any]:
    """The object with its first vector component one float32 step larger."""
    vector = list(cast(Sequence[float], item.vector))
    vector[0] = float(np.nextafter(np.float32(vector[0]), np.float32(np.inf)))
    return DataObject(properties=item.properties, uuid=item.uuid, vector=vector)
