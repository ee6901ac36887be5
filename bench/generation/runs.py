"""The two measured phases: calls under injected faults, and paired calls for the overhead."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import grpc
import openai

from bench.generation.stats import Latencies, percentile
from ragplane.generation.prompt import ContextPassage, build_messages
from ragplane.v1 import common_pb2, generation_pb2, generation_pb2_grpc

QUESTION = "How often is the Aurora 7 impeller inspected?"
PASSAGES = [
    ContextPassage(
        "aurora-pumps.md",
        "aurora-pumps.md#0",
        "The Aurora 7 impeller is inspected every 400 operating hours. Seals last longer.",
        1.0,
    ),
    ContextPassage(
        "aurora-pumps.md", "aurora-pumps.md#1", "Aurora pumps ship with a two-year warranty.", 0.5
    ),
]


def generate_request(max_output_tokens: int) -> generation_pb2.GenerateRequest:
    # Temperature 0: the same prompt gives the same tokens, so paired calls do the same work.
    return generation_pb2.GenerateRequest(
        question=QUESTION,
        passages=[
            common_pb2.Passage(
                document_id=p.document_id, chunk_id=p.chunk_id, text=p.text, score=p.score
            )
            for p in PASSAGES
        ],
        max_output_tokens=max_output_tokens,
        temperature=0.0,
    )


@dataclass
class FaultRun:
    requests: int
    deadline_s: float
    answered: int = 0  # any response: a model's answer or the extractive one
    by_model: int = 0  # answered by a model, not degraded
    within_deadline: int = 0  # answered, and no later than the deadline
    fell_back: int = 0  # answered by a provider after the first one failed or was skipped
    retried: int = 0  # answered after more than one call to the answering provider
    errors: Counter[str] = field(default_factory=Counter)  # gRPC status -> calls
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def latency(self) -> Latencies:
        return Latencies.of(self.latencies_ms)

    def record(self, response: generation_pb2.GenerateResponse, elapsed_s: float) -> None:
        self.answered += 1
        self.latencies_ms.append(elapsed_s * 1000)
        if elapsed_s <= self.deadline_s:
            self.within_deadline += 1
        if not response.degradations:
            self.by_model += 1
        if len(response.attempts) > 1:
            self.fell_back += 1
        if response.attempts and response.attempts[-1].calls > 1:
            self.retried += 1


def run_faults(target: str, requests: int, deadline_s: float, max_output_tokens: int) -> FaultRun:
    """``requests`` Generate calls, one at a time, each with the deadline ``deadline_s``."""
    run = FaultRun(requests, deadline_s)
    request = generate_request(max_output_tokens)
    with grpc.insecure_channel(target) as channel:
        stub = generation_pb2_grpc.GenerationServiceStub(channel)
        for _ in range(requests):
            started = time.perf_counter()
            try:
                response = stub.Generate(request, timeout=deadline_s)
            except grpc.RpcError as error:
                code = error.code() if isinstance(error, grpc.Call) else None
                run.errors[code.name if code else "UNKNOWN"] += 1
                continue
            run.record(response, time.perf_counter() - started)
    return run


@dataclass(frozen=True)
class OverheadRun:
    pairs: int
    direct: Latencies
    service: Latencies
    # Median over the pairs of (through the service - straight to the server).
    p50_overhead_ms: float
    # Pairs whose two answers had different token counts (their difference is not overhead).
    unequal_pairs: int


def run_overhead(
    service_target: str,
    llm_base_url: str,
    model: str,
    pairs: int,
    max_output_tokens: int,
    warm_up_calls: int = 3,
) -> OverheadRun:
    """Identical requests straight to the LLM server and through a generation service whose
    only provider is that server, alternating which goes first, one call at a time."""
    client = openai.OpenAI(base_url=llm_base_url, api_key="unused", max_retries=0)
    messages = build_messages(QUESTION, PASSAGES)

    def direct() -> tuple[float, int]:
        started = time.perf_counter()
        completion = client.chat.completions.create(
            model=model,
            messages=messages,  # type: ignore[arg-type]
            max_tokens=max_output_tokens,
            temperature=0.0,
        )
        elapsed = time.perf_counter() - started
        return elapsed * 1000, completion.usage.completion_tokens if completion.usage else -1

    request = generate_request(max_output_tokens)
    with grpc.insecure_channel(service_target) as channel:
        stub = generation_pb2_grpc.GenerationServiceStub(channel)

        def through_service() -> tuple[float, int]:
            started = time.perf_counter()
            response = stub.Generate(request, timeout=60)
            return (time.perf_counter() - started) * 1000, response.usage.output_tokens

        for _ in range(warm_up_calls):
            direct()
            through_service()
        direct_ms: list[float] = []
        service_ms: list[float] = []
        unequal = 0
        for pair in range(pairs):
            calls = (direct, through_service) if pair % 2 == 0 else (through_service, direct)
            results = {call: call() for call in calls}
            (d_ms, d_tokens), (s_ms, s_tokens) = results[direct], results[through_service]
            direct_ms.append(d_ms)
            service_ms.append(s_ms)
            unequal += d_tokens != s_tokens
    client.close()
    differences = [s - d for s, d in zip(service_ms, direct_ms, strict=True)]
    return OverheadRun(
        pairs,
        Latencies.of(direct_ms),
        Latencies.of(service_ms),
        percentile(differences, 50),
        unequal,
    )
