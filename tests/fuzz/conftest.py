"""The fuzz suite runs against the session stack (tests/stack_fixtures.py), seeded with two
tenants whose document ids differ; tests/fuzz/tally.py prints the cases and statuses per RPC."""

from __future__ import annotations

import pytest

from ragplane.v1 import query_pb2_grpc
from tests.conftest import DATA
from tests.integration.corpus import ingest_folder

# Tenant A is queried by the fuzzed calls; B's documents must never show up in A's answers.
TENANT_A, TENANT_B = "fuzz-a", "fuzz-b"
DOCUMENTS_A, DOCUMENTS_B = frozenset({"aurora-pumps.md"}), frozenset({"zephyr-kilns.md"})


@pytest.fixture(scope="session")
def seeded_tenants(query: query_pb2_grpc.QueryServiceStub) -> tuple[str, str]:
    ingest_folder(query, TENANT_A, DATA / "tenant-a")
    ingest_folder(query, TENANT_B, DATA / "tenant-b")
    return TENANT_A, TENANT_B
