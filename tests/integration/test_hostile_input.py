"""Hostile input: each bad request gets a clear status naming its field, and harms no one else.

Against the session stack. The inputs that would stall a service for everyone (megabyte
strings) are in test_hostile_input_sizes.py.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

import grpc
import pytest

from ragplane.cli.stack import Stack
from ragplane.v1 import (
    common_pb2,
    embedding_pb2,
    embedding_pb2_grpc,
    generation_pb2,
    generation_pb2_grpc,
    query_pb2,
    query_pb2_grpc,
    retrieval_pb2,
    retrieval_pb2_grpc,
)
from tests.conftest import DATA
from tests.integration.corpus import ingest_folder
from tests.integration.hostile import (
    DIMENSIONS,
    PASSAGE_TEXT,
    QUESTION,
    Outcome,
    generation_key,
    invoke,
    label_values,
    metric_sum,
    outcome,
    query_redis,
    raw_string_field,
    request_class,
    rpc_metric,
    unit_vector,
    valid_requests,
    wait_for_log_line,
)

A = "hostile-a"
A_DOCUMENT = "aurora-pumps.md"
# What the LLM server (llama-cpp-python, both wordings of its versions) and the OpenAI client
# say when a prompt overflows the context window.
RAW_CONTEXT_ERRORS = (
    "Requested tokens",
    "exceed context window",
    "maximum context length",
    "you requested",
    "reduce the length",
    "Error code:",
)
INVALID = grpc.StatusCode.INVALID_ARGUMENT


@pytest.fixture(scope="module")
def tenant_a(query: query_pb2_grpc.QueryServiceStub) -> str:
    ingest_folder(query, A, DATA / "tenant-a")
    return A


def _refused(result: Outcome, code: grpc.StatusCode, field: str) -> None:
    assert result.code == code, f"expected {code.name} naming {field!r}, got {result}"
    assert field in result.details, f"the message does not name {field!r}: {result}"


def _fresh(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _query(tenant: str, question: str = QUESTION, **fields: Any) -> query_pb2.QueryRequest:
    request = query_pb2.QueryRequest(tenant=tenant, query=question, max_output_tokens=8)
    request.MergeFrom(query_pb2.QueryRequest(**fields))
    return request


def _generate(**fields: Any) -> generation_pb2.GenerateRequest:
    request = generation_pb2.GenerateRequest()
    request.ParseFromString(valid_requests(A, A_DOCUMENT)["Generate"].SerializeToString())
    for name in fields:
        request.ClearField(name)  # type: ignore[arg-type]
    request.MergeFrom(generation_pb2.GenerateRequest(**fields))
    return request


def _search(tenant: str, **fields: Any) -> retrieval_pb2.SearchRequest:
    request = retrieval_pb2.SearchRequest(
        tenant=tenant, query_text=QUESTION, query_vector=unit_vector(), top_k=3
    )
    for name in fields:
        request.ClearField(name)  # type: ignore[arg-type]
    request.MergeFrom(retrieval_pb2.SearchRequest(**fields))
    return request


def _upsert(tenant: str, document_id: str, vector: list[float]) -> retrieval_pb2.UpsertRequest:
    chunk = retrieval_pb2.ChunkWithVector(
        chunk=retrieval_pb2.Chunk(
            chunk_id=f"{document_id}#0", document_id=document_id, chunk_index=0, text=PASSAGE_TEXT
        ),
        vector=vector,
    )
    return retrieval_pb2.UpsertRequest(
        tenant=tenant, chunks=[chunk], document_chunk_counts={document_id: 1}
    )


def _document(document_id: str, text: str) -> query_pb2.Document:
    return query_pb2.Document(document_id=document_id, text=text, title=document_id)


# -- 2. a tenant with a trailing newline ---------------------------------------------------------


@pytest.mark.parametrize("rpc", ["Query", "Ingest", "Search"])
def test_a_tenant_with_a_trailing_newline_is_invalid_argument(
    stack: Stack,
    query: query_pb2_grpc.QueryServiceStub,
    retrieval: retrieval_pb2_grpc.RetrievalServiceStub,
    rpc: str,
) -> None:
    tenant = "demo\n"
    calls = {
        "Query": lambda: query.Query(_query(tenant), timeout=60),
        "Ingest": lambda: query.Ingest(
            query_pb2.IngestRequest(tenant=tenant, documents=[_document("a.md", PASSAGE_TEXT)]),
            timeout=60,
        ),
        "Search": lambda: retrieval.Search(_search(tenant), timeout=60),
    }
    _refused(outcome(calls[rpc]), INVALID, "tenant")


# -- 3. a NaN temperature ------------------------------------------------------------------------


def test_a_nan_temperature_is_invalid_argument_from_generate(
    generation: generation_pb2_grpc.GenerationServiceStub,
) -> None:
    result = outcome(lambda: generation.Generate(_generate(temperature=math.nan), timeout=60))
    _refused(result, INVALID, "temperature")


def test_nan_temperatures_never_open_the_generation_breaker_for_everyone(
    stack: Stack, query: query_pb2_grpc.QueryServiceStub, tenant_a: str
) -> None:
    breaker = "ragplane_query_dependency_breaker_state"
    for _ in range(5):
        result = outcome(lambda: query.Query(_query(tenant_a, temperature=math.nan), timeout=60))
        _refused(result, INVALID, "temperature")
    assert metric_sum(stack.ports.query_metrics, breaker, dependency="generation") == 0
    # Another caller's question (temperature > 0 bypasses the answer caches) reaches the model.
    reply = query.Query(_query(tenant_a, temperature=0.2), timeout=120)
    assert not reply.cache.hit
    assert reply.provider, reply
    assert [d for d in reply.degradations if d.stage == common_pb2.STAGE_GENERATION] == []


# -- 4. a document with no indexable text ----------------------------------------------------------


def test_reingesting_a_document_with_no_indexable_text_fails_it_and_keeps_its_chunks(
    query: query_pb2_grpc.QueryServiceStub, retrieval: retrieval_pb2_grpc.RetrievalServiceStub
) -> None:
    tenant, document_id = _fresh("hostile-ctrl"), "control.md"
    first = query.Ingest(
        query_pb2.IngestRequest(tenant=tenant, documents=[_document(document_id, PASSAGE_TEXT)]),
        timeout=120,
    )
    assert first.results[0].status == query_pb2.DOCUMENT_STATUS_INDEXED, first
    count = retrieval_pb2.CountChunksRequest(tenant=tenant, document_ids=[document_id])
    before = retrieval.CountChunks(count, timeout=60).per_document[document_id]
    assert before > 0

    again = query.Ingest(
        query_pb2.IngestRequest(
            tenant=tenant, documents=[_document(document_id, "\x00\x01\x02\x1b" * 100)]
        ),
        timeout=120,
    )
    (result,) = again.results
    assert result.status == query_pb2.DOCUMENT_STATUS_FAILED, again
    assert any(words in result.error.lower() for words in ("indexable", "no text")), result
    assert retrieval.CountChunks(count, timeout=60).per_document[document_id] == before
    hits = retrieval.Search(
        retrieval_pb2.SearchRequest(tenant=tenant, query_text="Aurora impeller", top_k=3),
        timeout=60,
    ).hits
    assert hits, "the document's old chunks must still be found"
    assert [hit.chunk.document_id for hit in hits] == [document_id] * len(hits)


# -- 5. deleted or deactivated tenants lose their cached answers -----------------------------------


def _cached_tenant(query: query_pb2_grpc.QueryServiceStub, prefix: str) -> tuple[str, str]:
    """A new tenant whose answer to QUESTION is in the answer caches; (tenant, question)."""
    tenant = _fresh(prefix)
    ingest_folder(query, tenant, DATA / "tenant-a")
    question = f"{QUESTION} ({tenant})"
    first = query.Query(_query(tenant, question), timeout=120)
    assert first.citations, first
    second = query.Query(_query(tenant, question), timeout=120)
    assert second.cache.hit, "the second identical question must be a cache hit"
    return tenant, question


def _not_from_cache(result: Outcome) -> None:
    allowed = (grpc.StatusCode.OK, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION)
    assert result.code in allowed, str(result)
    if result.code == grpc.StatusCode.OK:
        assert not result.reply.cache.hit, f"served from the answer cache: {result.reply}"


def test_deleting_a_tenant_invalidates_its_cached_answers(
    query: query_pb2_grpc.QueryServiceStub, retrieval: retrieval_pb2_grpc.RetrievalServiceStub
) -> None:
    tenant, question = _cached_tenant(query, "hostile-deleted")
    retrieval.DeleteTenant(retrieval_pb2.DeleteTenantRequest(tenant=tenant), timeout=60)
    _not_from_cache(outcome(lambda: query.Query(_query(tenant, question), timeout=120)))

    # A new tenant of the same name, with other documents, never gets the old answer.
    ingest_folder(query, tenant, DATA / "tenant-b")
    reply = query.Query(_query(tenant, question), timeout=120)
    assert not reply.cache.hit, reply
    assert A_DOCUMENT not in {citation.document_id for citation in reply.citations}, reply


def test_deactivating_a_tenant_invalidates_its_cached_answers(
    query: query_pb2_grpc.QueryServiceStub, retrieval: retrieval_pb2_grpc.RetrievalServiceStub
) -> None:
    tenant, question = _cached_tenant(query, "hostile-inactive")
    retrieval.DeactivateTenant(retrieval_pb2.DeactivateTenantRequest(tenant=tenant), timeout=60)
    _not_from_cache(outcome(lambda: query.Query(_query(tenant, question), timeout=120)))


# -- 6. no Redis key for a tenant that does not exist -------------------------------------------


@pytest.mark.parametrize(
    "tenant", ["x" * 65, "../x", "hostile-never-created"], ids=["65-chars", "path", "unknown"]
)
def test_a_query_for_an_invalid_or_unknown_tenant_writes_no_redis_key(
    stack: Stack, query: query_pb2_grpc.QueryServiceStub, tenant: str
) -> None:
    result = outcome(lambda: query.Query(_query(tenant), timeout=60))
    assert not query_redis(stack).exists(generation_key(tenant)), str(result)


# -- 7. vectors of the wrong dimension -----------------------------------------------------------


@pytest.mark.parametrize("size", [3, DIMENSIONS + 1])
def test_a_query_vector_of_the_wrong_dimension_is_invalid_argument(
    retrieval: retrieval_pb2_grpc.RetrievalServiceStub, tenant_a: str, size: int
) -> None:
    result = outcome(
        lambda: retrieval.Search(_search(tenant_a, query_vector=[0.1] * size), timeout=60)
    )
    _refused(result, INVALID, "query_vector")
    assert "weaviate" not in result.details.lower(), str(result)


def test_a_first_upsert_of_the_wrong_dimension_is_refused_and_the_tenant_stays_usable(
    retrieval: retrieval_pb2_grpc.RetrievalServiceStub,
) -> None:
    tenant = _fresh("hostile-dims")
    short = outcome(lambda: retrieval.Upsert(_upsert(tenant, "a.md", [0.5] * 3), timeout=60))
    _refused(short, INVALID, "chunks[0].vector")
    reply = retrieval.Upsert(_upsert(tenant, "a.md", unit_vector()), timeout=60)
    assert (reply.upserted, list(reply.errors)) == (1, [])


# -- 8. NaN and infinity in vectors ----------------------------------------------------------------


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("rpc", ["Search", "Upsert"])
def test_a_non_finite_vector_value_is_invalid_argument(
    retrieval: retrieval_pb2_grpc.RetrievalServiceStub, tenant_a: str, rpc: str, bad: float
) -> None:
    vector = unit_vector()
    vector[7] = bad
    if rpc == "Search":
        result = outcome(
            lambda: retrieval.Search(_search(tenant_a, query_vector=vector), timeout=60)
        )
        _refused(result, INVALID, "query_vector")
    else:
        tenant = _fresh("hostile-nan")
        result = outcome(lambda: retrieval.Upsert(_upsert(tenant, "a.md", vector), timeout=60))
        _refused(result, INVALID, "vector")


# -- 9. invalid UTF-8 ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("service", "rpc"),
    [
        ("query", "Query"),
        ("embedding", "Embed"),
        ("retrieval", "Search"),
        ("generation", "Generate"),
    ],
)
def test_invalid_utf8_in_a_string_field_is_invalid_argument(
    stack: Stack, service: str, rpc: str
) -> None:
    number = request_class(service, rpc).DESCRIPTOR.fields[0].number
    payload = raw_string_field(number, b"\xff\xfe")
    port: int = getattr(stack.ports, service)
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        result = invoke(channel, service, rpc, payload, timeout_s=60)
    assert result.code == INVALID, str(result)
    assert "DecodeError" not in result.details, str(result)


# -- 10. Ingest refused before any embedding -----------------------------------------------------


def _embed_calls(stack: Stack) -> float:
    return rpc_metric(stack.ports.embedding_metrics, "ragplane_rpc_requests_total", "Embed")


@pytest.mark.parametrize("tenant", ["../x", "a" * 65], ids=["path", "65-chars"])
def test_ingest_for_an_invalid_tenant_is_refused_before_embedding(
    stack: Stack, query: query_pb2_grpc.QueryServiceStub, tenant: str
) -> None:
    before = _embed_calls(stack)
    documents = [_document(f"d{n}.md", f"{PASSAGE_TEXT} ({n})") for n in range(3)]
    result = outcome(
        lambda: query.Ingest(
            query_pb2.IngestRequest(tenant=tenant, documents=documents), timeout=120
        )
    )
    _refused(result, INVALID, "tenant")
    assert _embed_calls(stack) == before


def test_ingest_for_an_inactive_tenant_is_failed_precondition_before_embedding(
    stack: Stack,
    query: query_pb2_grpc.QueryServiceStub,
    retrieval: retrieval_pb2_grpc.RetrievalServiceStub,
) -> None:
    tenant = _fresh("hostile-asleep")
    retrieval.CreateTenant(retrieval_pb2.CreateTenantRequest(tenant=tenant), timeout=60)
    retrieval.DeactivateTenant(retrieval_pb2.DeactivateTenantRequest(tenant=tenant), timeout=60)
    before = _embed_calls(stack)
    documents = [_document(f"d{n}.md", f"{PASSAGE_TEXT} ({n})") for n in range(3)]
    result = outcome(
        lambda: query.Ingest(
            query_pb2.IngestRequest(tenant=tenant, documents=documents), timeout=120
        )
    )
    assert result.code == grpc.StatusCode.FAILED_PRECONDITION, str(result)
    assert tenant in result.details, str(result)
    assert _embed_calls(stack) == before


# -- 11. questions with no letter or digit -------------------------------------------------------


@pytest.mark.parametrize("question", ["\x00\x00\x00", "\u200b\u00a0\ufeff\u2060"])
def test_a_question_with_no_letter_or_digit_is_invalid_argument(
    query: query_pb2_grpc.QueryServiceStub, tenant_a: str, question: str
) -> None:
    _refused(outcome(lambda: query.Query(_query(tenant_a, question), timeout=60)), INVALID, "query")


# -- 12. out-of-range temperatures and unknown enum values ---------------------------------------


@pytest.mark.parametrize("temperature", [-1.0, 1e30])
@pytest.mark.parametrize("rpc", ["Query", "Generate"])
def test_a_temperature_out_of_range_is_invalid_argument(
    query: query_pb2_grpc.QueryServiceStub,
    generation: generation_pb2_grpc.GenerationServiceStub,
    tenant_a: str,
    rpc: str,
    temperature: float,
) -> None:
    if rpc == "Query":
        result = outcome(lambda: query.Query(_query(tenant_a, temperature=temperature), timeout=60))
    else:
        result = outcome(
            lambda: generation.Generate(_generate(temperature=temperature), timeout=60)
        )
    _refused(result, INVALID, "temperature")


@pytest.mark.parametrize(
    ("rpc", "field", "value"),
    [
        ("Query", "fusion_type", 99),
        ("Query", "rerank", 77),
        ("Search", "fusion_type", 99),
        ("Search", "rerank", 77),
        ("Embed", "truncation", 99),
        ("Generate", "tier", 99),
    ],
)
def test_an_unknown_enum_value_is_invalid_argument(
    query: query_pb2_grpc.QueryServiceStub,
    embedding: embedding_pb2_grpc.EmbeddingServiceStub,
    retrieval: retrieval_pb2_grpc.RetrievalServiceStub,
    generation: generation_pb2_grpc.GenerationServiceStub,
    tenant_a: str,
    rpc: str,
    field: str,
    value: Any,
) -> None:
    calls = {
        "Query": lambda: query.Query(_query(tenant_a, **{field: value}), timeout=60),
        "Search": lambda: retrieval.Search(_search(tenant_a, **{field: value}), timeout=60),
        "Embed": lambda: embedding.Embed(
            embedding_pb2.EmbedRequest(texts=[QUESTION], truncation=value), timeout=60
        ),
        "Generate": lambda: generation.Generate(_generate(tier=value), timeout=60),
    }
    _refused(outcome(calls[rpc]), INVALID, field)


# -- 13. a long CJK question ---------------------------------------------------------------------

CJK_QUESTION = ("数据库" * 667)[:2000]


def test_a_long_cjk_question_is_answered_without_the_model_servers_raw_error(
    query: query_pb2_grpc.QueryServiceStub, tenant_a: str
) -> None:
    reply = query.Query(_query(tenant_a, CJK_QUESTION), timeout=180)
    for raw in RAW_CONTEXT_ERRORS:
        assert raw not in str(reply), [d.reason for d in reply.degradations]


def test_generate_with_a_long_cjk_question_reports_no_raw_model_server_error(
    generation: generation_pb2_grpc.GenerationServiceStub,
) -> None:
    reply = generation.Generate(_generate(question=CJK_QUESTION), timeout=180)
    reasons = [attempt.reason for attempt in reply.attempts]
    reasons += [degradation.reason for degradation in reply.degradations]
    for raw in RAW_CONTEXT_ERRORS:
        assert raw not in str(reply), reasons


# -- 14. more passages than the context holds ----------------------------------------------------


def test_generate_with_too_many_passages_keeps_what_fits_and_says_so(
    generation: generation_pb2_grpc.GenerationServiceStub,
) -> None:
    words = "The Aurora 7 impeller is inspected every 400 operating hours by the crew. "
    passages = [
        common_pb2.Passage(
            document_id=f"p{n}.md",
            chunk_id=f"p{n}.md#0",
            text=(words * 120)[:8000],
            score=1.0 - n / 100,
        )
        for n in range(50)
    ]
    reply = generation.Generate(_generate(passages=passages), timeout=180)
    assert 0 < reply.passages_dropped < 50, reply.passages_dropped
    flagged = [
        d.reason
        for d in reply.degradations
        if d.stage == common_pb2.STAGE_GENERATION and "passage" in d.reason.lower()
    ]
    assert flagged, [d.reason for d in reply.degradations]


# -- 15. a huge tenant never becomes a metric label ----------------------------------------------


def test_a_multiline_tenant_is_refused_and_never_becomes_a_metric_label(
    stack: Stack, generation: generation_pb2_grpc.GenerationServiceStub
) -> None:
    result = outcome(lambda: generation.Generate(_generate(tenant="x\n" * 5000), timeout=60))
    assert result.code == INVALID, str(result)
    values = label_values(stack.ports.generation_metrics)
    assert values, "the generation service exposes no labelled sample"
    assert max(len(value) for value in values) <= 64, max(values, key=len)[:100]


# -- 16. the documented limits fit the deadlines ---------------------------------------------------


def test_an_embed_request_at_the_reported_maximum_finishes_within_a_minute(
    embedding: embedding_pb2_grpc.EmbeddingServiceStub,
) -> None:
    info = embedding.Info(embedding_pb2.InfoRequest(), timeout=30)
    assert info.max_texts_per_request > 0
    assert info.max_chars_per_text > 0
    words = "pumps seals impellers kilns bearings valves gaskets filters "
    texts = [
        (f"{n} " + words * (info.max_chars_per_text // len(words) + 1))[: info.max_chars_per_text]
        for n in range(info.max_texts_per_request)
    ]
    result = outcome(lambda: embedding.Embed(embedding_pb2.EmbedRequest(texts=texts), timeout=60))
    assert result.code == grpc.StatusCode.OK, str(result)
    assert len(result.reply.embeddings) == info.max_texts_per_request


# -- 17. smaller ones ------------------------------------------------------------------------------


def test_query_stream_passes_its_request_id_to_the_generation_call(
    stack: Stack, query: query_pb2_grpc.QueryServiceStub, tenant_a: str
) -> None:
    request_id = uuid.uuid4().hex
    events = list(
        query.QueryStream(
            _query(tenant_a, f"{QUESTION} ({request_id})", temperature=0.2),
            timeout=120,
            metadata=(("x-request-id", request_id),),
        )
    )
    assert events[-1].HasField("done"), events[-1]
    assert events[-1].done.provider, "the answer must come from the generation service"
    wait_for_log_line(stack.log_file("generation"), request_id, timeout_s=30)


def test_a_cached_reply_reports_its_budget(
    query: query_pb2_grpc.QueryServiceStub, tenant_a: str
) -> None:
    question = f"{QUESTION} ({_fresh('budget')})"
    query.Query(_query(tenant_a, question), timeout=120)
    cached = query.Query(_query(tenant_a, question), timeout=120)
    assert cached.cache.hit
    assert cached.budget_ms > 0, cached


def test_a_blank_document_fails_alone(
    query: query_pb2_grpc.QueryServiceStub, retrieval: retrieval_pb2_grpc.RetrievalServiceStub
) -> None:
    tenant = _fresh("hostile-blank")
    documents = [
        _document("first.md", PASSAGE_TEXT),
        _document("blank.md", "   "),
        _document("third.md", "The Zephyr kiln is fired at 1200 degrees."),
    ]
    reply = query.Ingest(query_pb2.IngestRequest(tenant=tenant, documents=documents), timeout=120)
    statuses = {result.document_id: result.status for result in reply.results}
    assert statuses == {
        "first.md": query_pb2.DOCUMENT_STATUS_INDEXED,
        "blank.md": query_pb2.DOCUMENT_STATUS_FAILED,
        "third.md": query_pb2.DOCUMENT_STATUS_INDEXED,
    }, reply
    count = retrieval_pb2.CountChunksRequest(tenant=tenant, document_ids=["first.md", "third.md"])
    per_document = retrieval.CountChunks(count, timeout=60).per_document
    assert per_document["first.md"] > 0
    assert per_document["third.md"] > 0
