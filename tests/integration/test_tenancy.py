"""A tenant's query never sees another tenant's chunks."""

from __future__ import annotations

from ragplane.v1 import query_pb2, query_pb2_grpc
from tests.conftest import DATA
from tests.integration.corpus import ingest_folder


def test_tenant_a_never_gets_tenant_b_chunks(query: query_pb2_grpc.QueryServiceStub) -> None:
    ingest_folder(query, "tenant-a", DATA / "tenant-a")
    ingest_folder(query, "tenant-b", DATA / "tenant-b")
    # Questions about B's document, and one about A's, all asked as tenant A.
    for question in (
        "How long is the Zephyr kiln held at peak temperature?",
        "Zephyr kiln cone 6 stoneware glazes firing schedule",
        "How often is the Aurora 7 impeller inspected?",
    ):
        response = query.Query(
            query_pb2.QueryRequest(
                tenant="tenant-a", query=question, top_k=10, max_output_tokens=8
            ),
            timeout=120,
        )
        cited = {citation.document_id for citation in response.citations}
        assert cited == {"aurora-pumps.md"}, (question, cited)

    response = query.Query(
        query_pb2.QueryRequest(
            tenant="tenant-b", query="Aurora 7 impeller", top_k=10, max_output_tokens=8
        ),
        timeout=120,
    )
    assert {c.document_id for c in response.citations} == {"zephyr-kilns.md"}
