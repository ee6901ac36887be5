"""Documents the integration tests ingest: pages of the demo corpus, or a folder of tests/data."""

from __future__ import annotations

from pathlib import Path

from ragplane.cli.documents import document_for, find_files
from ragplane.v1 import query_pb2, query_pb2_grpc

# A few pages of the demo corpus (Debian's Python 3.11 documentation).
CORPUS_SUBSET = ["library/venv.rst.txt", "tutorial/venv.rst.txt", "tutorial/interpreter.rst.txt"]
# A question those pages answer, asked with this many passages by the answer-quality tests:
# the same prompt each time, whose passages the LLM server then reads only once.
VENV_QUESTION = "Which module creates virtual environments?"
VENV_TOP_K = 3


def ingest_folder(
    query: query_pb2_grpc.QueryServiceStub, tenant: str, folder: Path, key: str | None = None
) -> None:
    """Ingest every document of ``folder`` (with API key ``key``); each one must be indexed."""
    documents = [document_for(path, folder) for path in find_files(folder)]
    assert documents, f"no documents in {folder}"
    metadata = None if key is None else (("authorization", f"Bearer {key}"),)
    response = query.Ingest(
        query_pb2.IngestRequest(tenant=tenant, documents=documents), timeout=120, metadata=metadata
    )
    statuses = [result.status for result in response.results]
    assert statuses == [query_pb2.DOCUMENT_STATUS_INDEXED] * len(documents), response
