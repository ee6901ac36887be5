"""Semantic answer cache: past questions' vectors in a multi-tenant Weaviate collection.

One Weaviate tenant per ragplane tenant, so a lookup can only ever see the asking tenant's
questions, and every query replica shares the cache. A candidate is served only when it is
within the tenant's similarity threshold, was answered with the same options in the current
index version and within the TTL, and the gate agrees that it asks the same thing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import structlog
import weaviate
from weaviate.classes.config import Configure, DataType, Property, Tokenization
from weaviate.classes.query import Filter, MetadataQuery
from weaviate.collections.classes.types import WeaviateField

from ragplane.query.caching.answers import CachedAnswer
from ragplane.query.caching.gate import QuestionGate
from ragplane.query.caching.semantic_error import SemanticCacheError
from ragplane.runtime.weaviate_client import WeaviateFailure

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class SemanticHit:
    answer: CachedAnswer
    similarity: float


def _keyword(name: str) -> Property:
    return Property(
        name=name, data_type=DataType.TEXT, tokenization=Tokenization.FIELD, index_searchable=False
    )


class SemanticCache:
    def __init__(
        self,
        client: weaviate.WeaviateAsyncClient,
        collection: str,
        ttl_s: int,
        candidates: int,
        timeout_s: float,
        gate: QuestionGate | None = None,
    ) -> None:
        self._client = client
        self._timeout_s = timeout_s
        self._collection_name = collection
        self._collection = client.collections.use(collection)
        self._ttl_s = ttl_s
        self._candidates = candidates
        self._gate = gate or QuestionGate()
        self._known_tenants: set[str] = set()
        self._collection_ready = False

    @asynccontextmanager
    async def _failing_as(self, what: str) -> AsyncIterator[None]:
        """Weaviate's failures, and its calls past their time (see _in_time), as ours."""
        try:
            yield
        except (*WeaviateFailure, TimeoutError) as error:
            raise SemanticCacheError.of(what, error) from error

    def _in_time(self) -> asyncio.Timeout:
        """The cache's whole time for an operation's Weaviate calls: weaviate-client sends a
        call refused as UNAVAILABLE (Weaviate down) again by itself, five times over about a
        minute (weaviate/retry.py), far longer than a query may wait for a cache."""
        return asyncio.timeout(self._timeout_s)

    async def _prepare(self) -> None:
        """Connect and create the collection on first use (Weaviate may start after us)."""
        if self._collection_ready:
            return
        if not self._client.is_connected():
            await self._client.connect()
        if not await self._client.collections.exists(self._collection_name):
            await self._client.collections.create(
                self._collection_name,
                vector_config=Configure.Vectors.self_provided(
                    vector_index_config=Configure.VectorIndex.hnsw(
                        distance_metric=weaviate.classes.config.VectorDistances.COSINE
                    )
                ),
                multi_tenancy_config=Configure.multi_tenancy(
                    enabled=True, auto_tenant_creation=True, auto_tenant_activation=True
                ),
                properties=[
                    _keyword("fingerprint"),
                    Property(name="index_version", data_type=DataType.INT),
                    Property(name="created_at", data_type=DataType.NUMBER),
                    Property(name="query", data_type=DataType.TEXT, index_filterable=False),
                    Property(
                        name="answer_json",
                        data_type=DataType.TEXT,
                        index_filterable=False,
                        index_searchable=False,
                    ),
                ],
            )
        self._collection_ready = True

    async def _tenant_exists(self, tenant: str) -> bool:
        if tenant not in self._known_tenants:
            if await self._collection.tenants.get_by_name(tenant) is None:
                return False
            self._known_tenants.add(tenant)
        return True

    async def lookup(
        self,
        tenant: str,
        question: str,
        vector: Sequence[float],
        fingerprint: str,
        index_version: int,
        threshold: float,
        max_age_s: int | None = None,
    ) -> SemanticHit | None:
        """The closest past answer that passes threshold, filters and gate, and is at most
        ``max_age_s`` old (None: the cache's TTL); raises on failure."""
        oldest = time.time() - (max_age_s or self._ttl_s)
        async with self._failing_as("look up cached answers"):
            await self._prepare()
            async with self._in_time():
                if not await self._tenant_exists(tenant):
                    return None
                result = await self._collection.with_tenant(tenant).query.near_vector(
                    near_vector=list(vector),
                    distance=1.0 - threshold,
                    limit=self._candidates,
                    filters=Filter.by_property("fingerprint").equal(fingerprint)
                    & Filter.by_property("index_version").equal(index_version)
                    & Filter.by_property("created_at").greater_or_equal(oldest),
                    return_metadata=MetadataQuery(distance=True),
                )
        for candidate in result.objects:
            similarity = 1.0 - float(candidate.metadata.distance or 0.0)
            cached_query = str(candidate.properties["query"])
            verdict = self._gate.check(cached_query, question)
            if verdict.agrees:
                answer = CachedAnswer.from_json(str(candidate.properties["answer_json"]))
                return SemanticHit(answer, similarity)
            log.info("semantic candidate rejected by the gate", reason=verdict.reason)
        return None

    async def store(
        self,
        tenant: str,
        vector: Sequence[float],
        fingerprint: str,
        index_version: int,
        answer: CachedAnswer,
    ) -> None:
        properties: dict[str, WeaviateField] = {
            "fingerprint": fingerprint,
            "index_version": index_version,
            "created_at": time.time(),
            "query": answer.query,
            "answer_json": answer.to_json(),
        }
        async with self._failing_as("store the answer"):
            await self._prepare()
            async with self._in_time():
                await self._collection.with_tenant(tenant).data.insert(
                    properties=properties, vector=list(vector)
                )
        self._known_tenants.add(tenant)

    async def forget_before(self, tenant: str, index_version: int) -> None:
        """Delete the tenant's entries of older index versions (they can no longer be served)."""
        async with self._failing_as("remove outdated answers"):
            await self._prepare()
            async with self._in_time():
                if not await self._tenant_exists(tenant):
                    return
                await self._collection.with_tenant(tenant).data.delete_many(
                    where=Filter.by_property("index_version").less_than(index_version)
                )

    async def close(self) -> None:
        await self._client.close()
