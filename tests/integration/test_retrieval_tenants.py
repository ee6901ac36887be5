"""Tenant admin RPCs and tenant isolation, against the session stack's retrieval service."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest

from ragplane.v1 import common_pb2, retrieval_pb2, retrieval_pb2_grpc
from tests.integration.errors import expect_status

DIMENSIONS = 384  # the embedding model's; retrieval refuses any other size


def _chunk(document_id: str, index: int, text: str, section: str) -> retrieval_pb2.ChunkWithVector:
    return retrieval_pb2.ChunkWithVector(
        chunk=retrieval_pb2.Chunk(
            chunk_id=f"{document_id}#{index}",
            document_id=document_id,
            chunk_index=index,
            text=text,
            metadata={"section": section},
        ),
        vector=[1.0 / (index + 1)] * DIMENSIONS,
    )


def _upsert(
    retrieval: retrieval_pb2_grpc.RetrievalServiceStub,
    tenant: str,
    chunks: list[retrieval_pb2.ChunkWithVector],
) -> retrieval_pb2.UpsertResponse:
    return retrieval.Upsert(retrieval_pb2.UpsertRequest(tenant=tenant, chunks=chunks), timeout=60)


def _search(
    retrieval: retrieval_pb2_grpc.RetrievalServiceStub,
    tenant: str,
    text: str,
    filters: list[common_pb2.MetadataFilter] | None = None,
) -> list[retrieval_pb2.SearchHit]:
    request = retrieval_pb2.SearchRequest(
        tenant=tenant,
        query_text=text,
        query_vector=[0.5] * DIMENSIONS,
        top_k=50,
        filters=filters or [],
    )
    return list(retrieval.Search(request, timeout=30).hits)


def _status(
    retrieval: retrieval_pb2_grpc.RetrievalServiceStub, tenant: str
) -> retrieval_pb2.TenantStatus.ValueType:
    tenants = retrieval.ListTenants(retrieval_pb2.ListTenantsRequest(), timeout=30).tenants
    return {t.name: t.status for t in tenants}[tenant]


def test_tenant_lifecycle_create_deactivate_activate_delete(
    retrieval: retrieval_pb2_grpc.RetrievalServiceStub,
) -> None:
    tenant = "lifecycle"
    created = retrieval.CreateTenant(retrieval_pb2.CreateTenantRequest(tenant=tenant), timeout=30)
    assert (created.created, created.tenant.status) == (True, retrieval_pb2.TENANT_STATUS_ACTIVE)
    again = retrieval.CreateTenant(retrieval_pb2.CreateTenantRequest(tenant=tenant), timeout=30)
    assert not again.created
    # A new tenant is empty but real: searching it is an empty success, not NOT_FOUND.
    assert _search(retrieval, tenant, "anything") == []
    _upsert(retrieval, tenant, [_chunk("a.md", 0, "gear oil", "manual")])

    deactivated = retrieval.DeactivateTenant(
        retrieval_pb2.DeactivateTenantRequest(tenant=tenant), timeout=30
    )
    assert deactivated.tenant.status == retrieval_pb2.TENANT_STATUS_INACTIVE
    assert _status(retrieval, tenant) == retrieval_pb2.TENANT_STATUS_INACTIVE
    inactive: list[Callable[[], Any]] = [
        lambda: _search(retrieval, tenant, "gear"),
        lambda: _upsert(retrieval, tenant, [_chunk("a.md", 1, "more gear", "manual")]),
        lambda: retrieval.Delete(
            retrieval_pb2.DeleteRequest(tenant=tenant, document_ids=["a.md"]), timeout=30
        ),
        lambda: retrieval.CountChunks(retrieval_pb2.CountChunksRequest(tenant=tenant), timeout=30),
    ]
    for call in inactive:
        expect_status(
            call, grpc.StatusCode.FAILED_PRECONDITION, tenant, "inactive", "ActivateTenant"
        )

    retrieval.ActivateTenant(retrieval_pb2.ActivateTenantRequest(tenant=tenant), timeout=30)
    assert [h.chunk.chunk_id for h in _search(retrieval, tenant, "gear")] == ["a.md#0"]

    retrieval.DeleteTenant(retrieval_pb2.DeleteTenantRequest(tenant=tenant), timeout=30)
    names = [t.name for t in retrieval.ListTenants(retrieval_pb2.ListTenantsRequest()).tenants]
    assert tenant not in names
    expect_status(lambda: _search(retrieval, tenant, "gear"), grpc.StatusCode.NOT_FOUND, tenant)


@pytest.mark.parametrize(
    "call",
    [
        lambda r: r.Search(retrieval_pb2.SearchRequest(tenant="ghost", query_text="x", top_k=1)),
        lambda r: r.Delete(retrieval_pb2.DeleteRequest(tenant="ghost", document_ids=["a"])),
        lambda r: r.CountChunks(retrieval_pb2.CountChunksRequest(tenant="ghost")),
        lambda r: r.DeactivateTenant(retrieval_pb2.DeactivateTenantRequest(tenant="ghost")),
        lambda r: r.ActivateTenant(retrieval_pb2.ActivateTenantRequest(tenant="ghost")),
        lambda r: r.DeleteTenant(retrieval_pb2.DeleteTenantRequest(tenant="ghost")),
    ],
)
def test_every_call_on_an_unknown_tenant_is_not_found(
    retrieval: retrieval_pb2_grpc.RetrievalServiceStub,
    call: Callable[[retrieval_pb2_grpc.RetrievalServiceStub], Any],
) -> None:
    expect_status(lambda: call(retrieval), grpc.StatusCode.NOT_FOUND, "'ghost'")


def test_a_bad_tenant_name_is_invalid_argument(
    retrieval: retrieval_pb2_grpc.RetrievalServiceStub,
) -> None:
    expect_status(
        lambda: retrieval.CreateTenant(retrieval_pb2.CreateTenantRequest(tenant="a b"), timeout=10),
        grpc.StatusCode.INVALID_ARGUMENT,
        "tenant:",
    )


def test_tenant_a_never_sees_tenant_b_chunks_even_with_filters_matching_b(
    retrieval: retrieval_pb2_grpc.RetrievalServiceStub,
) -> None:
    # Same document ids in both tenants; B's metadata and words are its own.
    _upsert(retrieval, "iso-a", [_chunk("shared.md", 0, "pump impeller maintenance", "pumps")])
    _upsert(retrieval, "iso-b", [_chunk("shared.md", 0, "kiln firing schedule", "kilns")])
    _upsert(retrieval, "iso-b", [_chunk("only-b.md", 0, "kiln glaze recipes", "kilns")])
    b_filters = [
        [common_pb2.MetadataFilter(field="section", equals="kilns")],
        [common_pb2.MetadataFilter(field="document_id", any_of=["only-b.md", "shared.md"])],
        [common_pb2.MetadataFilter(field="section", range=common_pb2.ValueRange(greater_than="a"))],
    ]
    for filters in [None, *b_filters]:
        # The same search finds B's chunks in B, so it would find them in A if they were there.
        assert _search(retrieval, "iso-b", "kiln firing glaze", filters), filters
        hits = _search(retrieval, "iso-a", "kiln firing glaze", filters)
        assert {hit.chunk.text for hit in hits} <= {"pump impeller maintenance"}, hits
    counts = retrieval.CountChunks(
        retrieval_pb2.CountChunksRequest(tenant="iso-a", document_ids=["shared.md", "only-b.md"]),
        timeout=30,
    )
    assert (counts.total, dict(counts.per_document)) == (1, {"shared.md": 1, "only-b.md": 0})


def test_count_chunks_per_tenant_and_document(
    retrieval: retrieval_pb2_grpc.RetrievalServiceStub,
) -> None:
    tenant = "counting"
    _upsert(retrieval, tenant, [_chunk("x.md", n, f"gear {n}", "m") for n in range(3)])
    _upsert(retrieval, tenant, [_chunk("y.md", 0, "gear y", "m")])
    counts = retrieval.CountChunks(
        retrieval_pb2.CountChunksRequest(tenant=tenant, document_ids=["x.md", "y.md", "z.md"]),
        timeout=30,
    )
    assert counts.total == 4
    assert dict(counts.per_document) == {"x.md": 3, "y.md": 1, "z.md": 0}
