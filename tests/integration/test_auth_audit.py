"""API keys, roles and tenants on every RPC; the audit trail; no key and no PII in any log."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from ragplane.cli.stack import Stack
from ragplane.v1 import query_pb2, query_pb2_grpc
from tests.conftest import DATA
from tests.integration.corpus import ingest_folder
from tests.integration.guarded import ask, key_file_text, query_env, status_of
from tests.integration.services import RunningService, service_process

A, B = "sec-a", "sec-b"
# Keys are random per run so that finding one in a log can only mean it was logged.
READER_A = f"rk-{secrets.token_hex(16)}"
WRITER_A = f"wk-{secrets.token_hex(16)}"
WRITER_B = f"wk-{secrets.token_hex(16)}"
ADMIN = f"ak-{secrets.token_hex(16)}"
KEYS = [
    (READER_A, "reader-a", [A], ["query"]),
    (WRITER_A, "writer-a", [A], ["query", "ingest"]),
    (WRITER_B, "writer-b", [B], ["query", "ingest"]),
    (ADMIN, "ops", ["*"], ["admin"]),
]
EMAIL, PHONE, CARD = "jane.doe@example.com", "+1 415 555 0134", "4111 1111 1111 1111"
PII_QUESTION = (
    f"I am {EMAIL}, call me on {PHONE}, my card is {CARD}. "
    "How often is the Aurora 7 impeller inspected?"
)


@pytest.fixture(scope="module")
def keyed_query(
    stack: Stack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RunningService, query_pb2_grpc.QueryServiceStub]]:
    folder = tmp_path_factory.mktemp("keys")
    key_file = folder / "keys.json"
    key_file.write_text(key_file_text(KEYS))
    env = query_env(stack, redis_db=4, api_keys_file=str(key_file))
    with (
        service_process("query", env, folder) as service,
        grpc.insecure_channel(service.target) as channel,
    ):
        stub = query_pb2_grpc.QueryServiceStub(channel)
        ingest_folder(stub, A, DATA / "tenant-a", key=WRITER_A)
        ingest_folder(stub, B, DATA / "tenant-b", key=WRITER_B)
        yield service, stub


def _refused(call: Callable[[], object]) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as refused:
        call()
    return status_of(refused.value)


def test_missing_or_unknown_key_is_unauthenticated(
    keyed_query: tuple[RunningService, query_pb2_grpc.QueryServiceStub],
) -> None:
    _, stub = keyed_query
    assert _refused(lambda: ask(stub, A, "What is Aurora?")) == grpc.StatusCode.UNAUTHENTICATED
    unknown = f"rk-{secrets.token_hex(16)}"
    assert _refused(lambda: ask(stub, A, "What is Aurora?", key=unknown)) == (
        grpc.StatusCode.UNAUTHENTICATED
    )


def test_a_key_acts_only_in_its_roles(
    keyed_query: tuple[RunningService, query_pb2_grpc.QueryServiceStub],
) -> None:
    _, stub = keyed_query
    assert ask(stub, A, "How often is the Aurora 7 impeller inspected?", key=READER_A).answer
    ingest = query_pb2.IngestRequest(
        tenant=A, documents=[query_pb2.Document(document_id="x.md", text="x")]
    )
    assert (
        _refused(lambda: stub.Ingest(ingest, timeout=30, metadata=(("x-api-key", READER_A),)))
        == grpc.StatusCode.PERMISSION_DENIED
    )
    # The admin role may do anything, for any tenant.
    assert ask(stub, B, "What is fired in the Zephyr kiln?", key=ADMIN).citations


def test_no_rpc_reads_or_changes_another_tenants_documents(
    keyed_query: tuple[RunningService, query_pb2_grpc.QueryServiceStub],
) -> None:
    _, stub = keyed_query
    as_a = (("x-api-key", WRITER_A),)
    calls = {
        "Query": lambda: stub.Query(
            query_pb2.QueryRequest(tenant=B, query="Zephyr kiln schedule"),
            timeout=30,
            metadata=as_a,
        ),
        "Ingest": lambda: stub.Ingest(
            query_pb2.IngestRequest(
                tenant=B, documents=[query_pb2.Document(document_id="zephyr-kilns.md", text="x")]
            ),
            timeout=30,
            metadata=as_a,
        ),
        "DeleteDocuments": lambda: stub.DeleteDocuments(
            query_pb2.DeleteDocumentsRequest(tenant=B, document_ids=["zephyr-kilns.md"]),
            timeout=30,
            metadata=as_a,
        ),
    }
    for name, call in calls.items():
        assert _refused(call) == grpc.StatusCode.PERMISSION_DENIED, name
    # Within its own tenant, A's key neither sees nor deletes B's document.
    answer = ask(stub, A, "Zephyr kiln cone 6 firing schedule", key=WRITER_A, top_k=10)
    assert {c.document_id for c in answer.citations} == {"aurora-pumps.md"}
    removed = stub.DeleteDocuments(
        query_pb2.DeleteDocumentsRequest(tenant=A, document_ids=["zephyr-kilns.md"]),
        timeout=30,
        metadata=as_a,
    )
    assert removed.deleted_chunks == 0
    still = ask(stub, B, "Zephyr kiln cone 6 firing schedule", key=WRITER_B)
    assert {c.document_id for c in still.citations} == {"zephyr-kilns.md"}


def test_audit_records_every_call_and_no_log_holds_a_key_or_personal_data(
    stack: Stack, keyed_query: tuple[RunningService, query_pb2_grpc.QueryServiceStub]
) -> None:
    service, stub = keyed_query
    response = ask(stub, A, PII_QUESTION, key=WRITER_A)
    with pytest.raises(grpc.RpcError):
        ask(stub, B, PII_QUESTION, key=WRITER_A)
    assert _refused(lambda: ask(stub, A, PII_QUESTION)) == grpc.StatusCode.UNAUTHENTICATED

    text = service.log.read_text()
    for other in ("embedding", "retrieval", "generation"):
        text += stack.log_file(other).read_text()
    for secret in (READER_A, WRITER_A, WRITER_B, ADMIN, EMAIL, PHONE, CARD, CARD.replace(" ", "")):
        assert secret not in text, f"{secret[:6]}... appears in a log"

    records = [r for r in _json_lines(service.log) if r.get("event") == "audit"]
    mine = [r for r in records if r["request_id"] == response.request_id]
    assert len(mine) == 1
    record = mine[0]
    assert (record["action"], record["tenant"], record["key_id"], record["outcome"]) == (
        "query",
        A,
        "writer-a",
        "OK",
    )
    assert "cost_usd" in record
    assert "[email]" in record["query"]
    assert "[card]" in record["query"]
    denied = [r for r in records if r["tenant"] == B and r["outcome"] == "PERMISSION_DENIED"]
    assert denied
    assert denied[-1]["key_id"] == "writer-a"
    assert any(r["outcome"] == "UNAUTHENTICATED" and r["key_id"] == "" for r in records)
    assert any(r["action"] == "ingest" and r["key_id"] == "writer-b" for r in records)


def _json_lines(path: Path) -> list[dict[str, Any]]:
    lines = []
    for line in path.read_text().splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines
