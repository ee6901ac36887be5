"""Megabyte strings: in any string field of any public RPC, a clear status within a second.

Every string field of every request (walked from the message descriptors: nested messages,
repeated fields and maps too) gets a 1 MB value, one field at a time, while a poller checks that
each of the four services stays SERVING. Kept apart from test_hostile_input.py because, before
the fix, one such call stalled the query service for everyone.
"""

from __future__ import annotations

import grpc
import pytest

from ragplane.cli.stack import Stack
from ragplane.query.config import QuerySettings
from ragplane.v1 import query_pb2_grpc, retrieval_pb2, retrieval_pb2_grpc
from tests.conftest import DATA
from tests.integration.corpus import ingest_folder
from tests.integration.hostile import (
    PUBLIC_RPCS,
    QUESTION,
    Outcome,
    StringField,
    generation_key,
    invoke,
    outcome,
    port_of,
    query_redis,
    request_class,
    string_fields,
    unit_vector,
    valid_requests,
    watching_health,
)

TENANT = "hostile-sizes"
DOCUMENT = "aurora-pumps.md"
MEGABYTE = 1_000_000
# Two shapes: one long word (the worst case of the old e-mail masking pattern), and a run of
# would-be addresses.
SHAPES = {"word": "a", "at-signs": "x@"}
# The answer must come within a second: a gRPC deadline, so a stalled service shows up as
# DEADLINE_EXCEEDED.
ANSWER_WITHIN_S = 1.0


def _huge(field: StringField, shape: str) -> str:
    """1 MB; a document's text is made just longer than the query service's documented limit."""
    size = MEGABYTE
    if field.path == "documents[0].text":
        size = max(MEGABYTE, QuerySettings().max_document_chars + 1)
    pattern = SHAPES[shape]
    return (pattern * (size // len(pattern) + 1))[:size]


@pytest.fixture(scope="module")
def sized_tenant(query: query_pb2_grpc.QueryServiceStub) -> str:
    ingest_folder(query, TENANT, DATA / "tenant-a")
    return TENANT


RPCS = [(service, rpc) for service, rpcs in PUBLIC_RPCS.items() for rpc in rpcs]


@pytest.mark.parametrize(("service", "rpc"), RPCS, ids=[rpc for _, rpc in RPCS])
def test_a_megabyte_string_in_any_field_is_invalid_argument_within_a_second(
    stack: Stack, sized_tenant: str, service: str, rpc: str
) -> None:
    valid = valid_requests(sized_tenant, DOCUMENT)[rpc]
    fields = string_fields(request_class(service, rpc).DESCRIPTOR)
    assert fields, f"{rpc} has no string field"
    wrong: list[str] = []
    port = port_of(stack, service)
    with (
        grpc.insecure_channel(
            f"127.0.0.1:{port}", options=[("grpc.max_send_message_length", 64 * 1024 * 1024)]
        ) as channel,
        watching_health(stack) as health,
    ):
        for field in fields:
            for shape in SHAPES:
                request = field.set(valid, _huge(field, shape))
                result = invoke(channel, service, rpc, request, timeout_s=ANSWER_WITHIN_S)
                if result.code != grpc.StatusCode.INVALID_ARGUMENT or field.name not in (
                    result.details
                ):
                    wrong.append(f"{field.path} ({shape}): {result}")
    assert wrong == [], "\n".join(wrong)
    health.assert_always_serving()


def test_a_query_for_a_megabyte_tenant_writes_no_redis_key(
    stack: Stack, query: query_pb2_grpc.QueryServiceStub
) -> None:
    tenant = "t" * MEGABYTE
    with grpc.insecure_channel(f"127.0.0.1:{stack.ports.query}") as channel:
        request = valid_requests(tenant, DOCUMENT)["Query"]
        result = invoke(channel, "query", "Query", request, timeout_s=ANSWER_WITHIN_S)
    assert result.code == grpc.StatusCode.INVALID_ARGUMENT, str(result)
    assert not query_redis(stack).exists(generation_key(tenant))


def test_a_search_with_a_megabyte_query_text_is_invalid_argument(
    retrieval: retrieval_pb2_grpc.RetrievalServiceStub, sized_tenant: str
) -> None:
    request = retrieval_pb2.SearchRequest(
        tenant=sized_tenant,
        query_text=QUESTION * (MEGABYTE // len(QUESTION)),
        query_vector=unit_vector(),
        top_k=3,
    )
    result: Outcome = outcome(lambda: retrieval.Search(request, timeout=60))
    assert result.code == grpc.StatusCode.INVALID_ARGUMENT, str(result)
    assert "query_text" in result.details, str(result)
