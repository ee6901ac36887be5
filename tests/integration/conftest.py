"""Fixtures of the integration tests; the session stack itself is in tests/stack_fixtures.py."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ragplane.cli.documents import document_for
from ragplane.v1 import query_pb2, query_pb2_grpc
from tests.conftest import REPO
from tests.integration.corpus import CORPUS_SUBSET
from tests.integration.toxiproxy import Toxiproxy, toxiproxy_server


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    out = subprocess.run(
        [str(REPO / "scripts" / "fetch-corpus.sh")], check=True, capture_output=True, text=True
    )
    return Path(out.stdout.strip())


@pytest.fixture(scope="session")
def docs_tenant(query: query_pb2_grpc.QueryServiceStub, corpus_dir: Path) -> str:
    """Tenant "docs", holding a few pages of the demo corpus."""
    documents = [document_for(corpus_dir / name, corpus_dir) for name in CORPUS_SUBSET]
    response = query.Ingest(
        query_pb2.IngestRequest(tenant="docs", documents=documents), timeout=300
    )
    assert [r.status for r in response.results] == [query_pb2.DOCUMENT_STATUS_INDEXED] * len(
        documents
    ), response
    return "docs"


@pytest.fixture(scope="session")
def toxiproxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Toxiproxy]:
    """A toxiproxy-server of this session (API on a free port); proxies are made per test."""
    log = tmp_path_factory.mktemp("toxiproxy") / "toxiproxy-server.log"
    with toxiproxy_server(REPO / ".bin" / "toxiproxy-server", log) as api:
        yield api
