"""Feature flags hot-reloaded from a file, sticky A/B variants, and shadow generation, on the
real stack (Redis, Weaviate, LLM servers) and query services of the tests' own."""

from __future__ import annotations

from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ragplane.cli.stack import Stack
from ragplane.v1 import common_pb2, generation_pb2, query_pb2
from tests.integration.flags import reloads, shadow_records, tiered_generation, write_flags
from tests.integration.orchestrator import QueryService, degraded, query_service, stack_caches
from tests.integration.polling import log_lines_with, wait_until
from tests.integration.toxiproxy import Toxiproxy

QUESTION = "How do I create a virtual environment?"
# Short prompts and answers keep the LLM calls short.
MAX_OUTPUT_TOKENS = 12
TOP_K = 2


def _request(tenant: str, question: str = QUESTION, caller: str = "") -> query_pb2.QueryRequest:
    return query_pb2.QueryRequest(
        tenant=tenant,
        query=question,
        caller=caller,
        max_output_tokens=MAX_OUTPUT_TOKENS,
        top_k=TOP_K,
    )


def _ask(
    service: QueryService, tenant: str, question: str = QUESTION, caller: str = ""
) -> query_pb2.QueryResponse:
    return service.stub.Query(_request(tenant, question, caller), timeout=60)


def _stream(service: QueryService, tenant: str) -> list[query_pb2.QueryStreamResponse]:
    return list(service.stub.QueryStream(_request(tenant), timeout=60))


def _tenant_flags(version: str, tenant: str, **flags: object) -> dict[str, object]:
    return {"version": version, "tenants": {tenant: flags}}


def test_a_changed_flags_file_switches_tier_prompt_and_rerank_without_a_restart(
    stack: Stack, docs_tenant: str, tmp_path: Path
) -> None:
    path = tmp_path / "flags.json"
    write_flags(
        path,
        _tenant_flags("1", docs_tenant, tier="small", prompt_version="cited", rerank=False),
    )
    with (
        tiered_generation(stack, tmp_path) as generation,
        query_service(
            stack,
            tmp_path,
            generation_target=generation.target,
            flags_file=str(path),
            flags_poll_s="0.2",
        ) as service,
    ):
        before = _ask(service, docs_tenant)
        assert (before.flags.flag_set, before.flags.version) == (docs_tenant, "1")
        assert (before.tier, before.provider) == (generation_pb2.MODEL_TIER_SMALL, "small-llm")
        assert before.flags.prompt_version == "PROMPT_VERSION_CITED"
        assert common_pb2.STAGE_RERANK not in degraded(before)

        write_flags(
            path,
            _tenant_flags(
                "2",
                docs_tenant,
                tier="large",
                prompt_version="concise",
                rerank=True,
                streaming=False,
            ),
        )
        wait_until(lambda: _ask(service, docs_tenant).flags.version == "2", 10, "flags v2")
        after = _ask(service, docs_tenant)
        assert (after.tier, after.provider) == (generation_pb2.MODEL_TIER_LARGE, "large-llm")
        assert after.flags.prompt_version == "PROMPT_VERSION_CONCISE"
        # The stack's retrieval service has no reranker: asked to rerank, it says so.
        assert common_pb2.STAGE_RERANK in degraded(after)

        write_flags(path, _tenant_flags("3", docs_tenant, tier="huge"))
        wait_until(lambda: reloads(service.process, "refused") == 1, 10, "the refusal")
        assert log_lines_with(service.process.log, f"tenants.{docs_tenant}.tier") == 1
        # Streaming is off in the flags in force: the text comes whole, in one message.
        sources, text, done = _stream(service, docs_tenant)
        assert sources.HasField("sources")
        assert text.answer_delta == done.done.answer
        assert (done.done.flags.version, done.done.provider) == ("2", "large-llm")


def test_a_fifty_fifty_split_is_even_and_sticky_per_caller(
    stack: Stack, docs_tenant: str, tmp_path: Path
) -> None:
    path = tmp_path / "flags.json"
    experiment = {
        "name": "prompt-test",
        "variants": [
            {"name": "cited", "weight": 50, "prompt_version": "cited"},
            {"name": "concise", "weight": 50, "prompt_version": "concise"},
        ],
    }
    write_flags(path, _tenant_flags("ab-1", docs_tenant, experiment=experiment))
    callers = [f"user-{n}" for n in range(20)] * 10
    with query_service(stack, tmp_path, flags_file=str(path), **stack_caches(stack)) as service:
        # The same question throughout. One call per caller first, one at a time: the LLM
        # answers each variant once, and the exact cache answers every later call.
        first = [_ask(service, docs_tenant, caller=caller) for caller in callers[:20]]
        with ThreadPoolExecutor(4) as pool:
            rest = list(pool.map(lambda c: _ask(service, docs_tenant, caller=c), callers[20:]))
    responses = list(zip(callers, first + rest, strict=True))
    by_caller: defaultdict[str, set[str]] = defaultdict(set)
    for caller, response in responses:
        by_caller[caller].add(response.flags.variant)
        assert response.flags.experiment == "prompt-test"
    assert all(len(variants) == 1 for variants in by_caller.values()), by_caller
    shares = Counter(response.flags.variant for _, response in responses)
    assert set(shares) == {"cited", "concise"}, shares
    assert all(35 <= count / 2 <= 65 for count in shares.values()), shares


def test_shadows_never_fail_the_caller_and_every_answer_has_its_record(
    stack: Stack, docs_tenant: str, tmp_path: Path, toxiproxy: Toxiproxy
) -> None:
    records = tmp_path / "shadow.jsonl"
    path = tmp_path / "flags.json"
    write_flags(
        path,
        {"version": "s1", "defaults": {"shadow": {"share": 1.0, "prompt_version": "concise"}}},
    )
    proxy = toxiproxy.create_proxy("slow-shadow", f"127.0.0.1:{stack.ports.generation}")
    questions = [
        "How do I create a virtual environment? Write to jane.doe@example.com",
        "What is a virtual environment for?",
    ]
    try:
        proxy.add_latency(5_000)
        with query_service(
            stack,
            tmp_path,
            flags_file=str(path),
            shadow_generation_target=proxy.address,
            shadow_records_file=str(records),
            shadow_max_in_flight="8",
            shadow_timeout_s="120",
        ) as service:
            slowed = [_ask(service, docs_tenant, question) for question in questions]
            wait_until(lambda: len(shadow_records(records)) == 2, 120, "the shadows", 0.2)
            proxy.set_enabled(False)  # the shadow's generation service is gone
            down = [_ask(service, docs_tenant, "Where does venv put the interpreter?")]
            wait_until(lambda: len(shadow_records(records)) == 3, 60, "a record per answer", 0.2)
            compared = service.process.metric(
                "ragplane_query_shadow_pairs_total", 'outcome="compared",variant=""'
            )
    finally:
        proxy.delete()
    answered = slowed + down
    assert all(r.answer and r.flags.shadowed for r in answered)
    by_request = {record["request_id"]: record for record in shadow_records(records)}
    assert set(by_request) == {r.request_id for r in answered}
    for response in slowed:
        record = by_request[response.request_id]
        assert record["outcome"] == "compared", record
        assert record["shadow"]["latency_ms"] >= 5_000
        assert record["shadow"]["prompt_version"] == generation_pb2.PROMPT_VERSION_CONCISE
        assert record["primary"]["text"] == response.answer
        assert record["similarity"] is not None
    assert [by_request[r.request_id]["outcome"] for r in down] == ["failed"]
    assert "jane.doe@example.com" not in records.read_text()
    assert compared == 2
