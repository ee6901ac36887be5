"""Every public RPC of the four services, driven with generated requests against the real stack.

For each case: the status is never UNKNOWN or INTERNAL (a caller's input is never the server's
fault), never DEADLINE_EXCEEDED (the deadline set is generous: the server must answer before
it), the service is SERVING afterwards, a call as tenant A never returns a document only tenant
B holds, and no message carries a dependency's raw error text (FORBIDDEN).
"""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from hypothesis import given
from hypothesis import strategies as st

from ragplane.cli.stack import Stack
from tests.fuzz import tally
from tests.fuzz.conftest import DOCUMENTS_A, DOCUMENTS_B, TENANT_A, TENANT_B
from tests.fuzz.strategies import (
    FUZZ_SETTINGS,
    MAX_OUTPUT_TOKENS,
    Overrides,
    request_strategy,
    strings,
)
from tests.integration.hostile import (
    PUBLIC_RPCS,
    Outcome,
    health,
    invoke,
    port_of,
    valid_requests,
)

# Text that only a dependency or a crash writes: Weaviate's errors, Python tracebacks,
# protobuf's DecodeError, llama-cpp-python's context overflow (both wordings) and the OpenAI
# client's error text, httpx's and grpc's internals.
# Matched case-insensitively, and only when the request itself does not contain it (a message
# may quote the caller's input).
FORBIDDEN = (
    "weaviate",
    "traceback",
    "decodeerror",
    "requested tokens",
    "maximum context length",
    "error code:",
    "httpx",
    "grpc._",
)
# Generous: a valid query or generation on this machine takes a few seconds.
TIMEOUT_S = 120.0
# Calls that change or remove data run on a scratch tenant, never on A or B.
SCRATCH = "fuzz-scratch"
DESTRUCTIVE = {"Ingest", "DeleteDocuments", "Upsert", "Delete", "DeactivateTenant", "DeleteTenant"}
# RPCs that return a tenant's documents.
READS = {"Query", "QueryStream", "Search", "CountChunks"}
# Fields of replies that are messages to the caller.
MESSAGE_FIELDS = {"reason", "error", "message", "tier_reason"}

RPCS = [(service, rpc) for service, rpcs in PUBLIC_RPCS.items() for rpc in rpcs]


def _overrides(rpc: str) -> Overrides:
    own = SCRATCH if rpc in DESTRUCTIVE else TENANT_A
    document_ids = [*DOCUMENTS_A, *DOCUMENTS_B, "missing.md"]
    return {
        "tenant": st.one_of(
            st.just(own), strings().filter(lambda tenant: tenant not in (TENANT_A, TENANT_B))
        ),
        "document_ids": st.one_of(st.sampled_from(document_ids), strings()),
        "document_id": st.one_of(st.sampled_from(document_ids), strings()),
        "max_output_tokens": st.sampled_from(MAX_OUTPUT_TOKENS),
    }


@pytest.mark.parametrize(("service", "rpc"), RPCS, ids=[rpc for _, rpc in RPCS])
def test_fuzzed_requests_get_a_clear_status_and_harm_no_one(
    stack: Stack, seeded_tenants: tuple[str, str], service: str, rpc: str
) -> None:
    valid = valid_requests(SCRATCH if rpc in DESTRUCTIVE else TENANT_A, "aurora-pumps.md")[rpc]
    port = port_of(stack, service)
    options = [("grpc.max_send_message_length", 256 * 1024 * 1024)]

    @FUZZ_SETTINGS
    @given(request=request_strategy(valid, _overrides(rpc)))
    def case(request: Message) -> None:
        with grpc.insecure_channel(f"127.0.0.1:{port}", options=options) as channel:
            result = invoke(channel, service, rpc, request, timeout_s=TIMEOUT_S)
        tally.record(rpc, result.code.name)
        _check(rpc, request, result)
        status = health(port)
        assert status == "SERVING", f"{service} is {status} after {result}"

    case()


def _check(rpc: str, request: Message, result: Outcome) -> None:
    assert result.code not in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL), str(result)
    assert result.code != grpc.StatusCode.DEADLINE_EXCEEDED, str(result)
    sent = str(request).lower()
    for message in [result.details, *_messages(result.reply)]:
        for raw in FORBIDDEN:
            if raw not in sent:
                assert raw not in message.lower(), f"{rpc}: {raw!r} in {message[:300]!r}"
    tenant = getattr(request, "tenant", "")
    if rpc in READS and result.reply is not None and tenant == TENANT_A:
        seen = _document_ids(result.reply)
        assert not seen & DOCUMENTS_B, f"{rpc} as {TENANT_A} returned {seen & DOCUMENTS_B}"


def _messages(reply: Any) -> list[str]:
    """Every text of a reply meant for the caller to read (degradation and attempt reasons,
    per-document errors), at any depth."""
    if not isinstance(reply, Message):
        return []
    found = []
    for member, value in reply.ListFields():
        items = value if member.is_repeated else [value]
        for item in items:
            if isinstance(item, Message):
                found += _messages(item)
            elif member.name in MESSAGE_FIELDS and isinstance(item, str):
                found.append(item)
    return found


def _document_ids(reply: Message) -> set[str]:
    """Document ids a reply cites, lists or counts chunks for."""
    found = set()
    for member, value in reply.ListFields():
        if member.name == "per_document":
            found |= {document_id for document_id, count in value.items() if count > 0}
            continue
        items = value if member.is_repeated else [value]
        for item in items:
            if isinstance(item, Message):
                found |= _document_ids(item)
            elif member.name == "document_id" and isinstance(item, str):
                found.add(item)
    return found
