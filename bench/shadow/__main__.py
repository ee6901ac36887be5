"""python -m bench.shadow: the callers' latency with shadow generation at 100% vs off, side by side.

A stack of real components (Redis, Weaviate, two llama-cpp-python servers with SmolLM2-135M, the
four services) on free ports, and two more query services on it: one without flags (shadow
off), one whose flags send every generation call to a shadow too, through a toxiproxy that
delays every answer of the shadow's generation service by 5 s. The two are asked the same
questions in alternating order, one call at a time, so that both see the same machine; the
shadow's own LLM work (on the same LLM servers) loads both sides alike. Then the shadow's
generation service goes down (the proxy is disabled) and the shadowed service is asked again.
Nothing here judges the timings: it prints them, their ratio and the shadow records counted.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import grpc

from bench.load.__main__ import LOAD_TENANT, ingest_load_tenant
from bench.load.report import percentile
from bench.machine import this_machine
from ragplane.cli.stack import Ports, Stack
from ragplane.v1 import query_pb2, query_pb2_grpc
from tests.integration.flags import shadow_records, write_flags
from tests.integration.orchestrator import query_service
from tests.integration.polling import wait_until
from tests.integration.toxiproxy import Proxy, toxiproxy_server

REPO = Path(__file__).resolve().parents[2]
# The load tenant's pages (bench.load) answer these.
QUESTIONS = [
    "How do I create a virtual environment?",
    "How do I activate a virtual environment on Windows?",
    "What does the --system-site-packages option do?",
    "How do I start the Python interpreter?",
    "How do I exit the interactive interpreter?",
    "How are command line arguments passed to a script?",
    "How do I install packages with pip into a venv?",
    "What is the source encoding of Python files?",
]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.shadow", description=__doc__)
    parser.add_argument("--pairs", type=int, default=24, help="questions asked of both services")
    parser.add_argument("--shadow-delay-ms", type=int, default=5_000)
    parser.add_argument("--down-queries", type=int, default=6)
    parser.add_argument("--max-output-tokens", type=int, default=16)
    return parser.parse_args()


def ingest(stack: Stack) -> None:
    with grpc.insecure_channel(stack.target("query")) as channel:
        ingest_load_tenant(query_pb2_grpc.QueryServiceStub(channel))


def timed(stub: query_pb2_grpc.QueryServiceStub, question: str, tokens: int) -> float | str:
    """Seconds the call took, or the status of its error."""
    request = query_pb2.QueryRequest(tenant=LOAD_TENANT, query=question, max_output_tokens=tokens)
    started = time.perf_counter()
    try:
        stub.Query(request, timeout=60)
    except grpc.RpcError as error:
        return str(error.code())
    return time.perf_counter() - started


def describe(seconds: list[float]) -> str:
    p50, p90 = percentile(seconds, 0.5) * 1000, percentile(seconds, 0.9) * 1000
    return f"p50 {p50:7.0f} ms   p90 {p90:7.0f} ms   ({len(seconds)} calls)"


def question(n: int, tag: str = "") -> str:
    """A question no earlier call asked (no answer cache could answer it)."""
    return f"{QUESTIONS[n % len(QUESTIONS)]} ({tag}{n})"


def main() -> int:
    args = parse_args()
    print(f"machine: {this_machine().describe()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-shadow-") as tmp:
        run_dir = Path(tmp)
        stack = Stack(run_dir / "stack", Ports.free(), bin_dir=REPO / ".bin", python=sys.executable)
        try:
            stack.up(timeout_s=600, report=lambda line: print(f"   {line}", flush=True))
            ingest(stack)
            with toxiproxy_server(REPO / ".bin" / "toxiproxy-server", run_dir / "tp.log") as api:
                proxy = api.create_proxy("shadow", f"127.0.0.1:{stack.ports.generation}")
                proxy.add_latency(args.shadow_delay_ms)
                measure(stack, run_dir, proxy, args)
        finally:
            stack.down(report=lambda line: None)
    return 0


def measure(stack: Stack, run_dir: Path, proxy: Proxy, args: argparse.Namespace) -> None:
    records, flags = run_dir / "shadow.jsonl", run_dir / "flags.json"
    write_flags(flags, {"version": "bench", "defaults": {"shadow": {"share": 1.0}}})
    shadowed = {
        "flags_file": str(flags),
        "shadow_generation_target": proxy.address,
        "shadow_records_file": str(records),
        "shadow_max_in_flight": "64",
        # Generous: on a loaded 2-core machine the shadow's own LLM call can take a minute.
        "shadow_timeout_s": "300",
    }
    with query_service(stack, run_dir) as off, query_service(stack, run_dir, **shadowed) as on:
        sides = {"off": off.stub, "on": on.stub}
        for stub in sides.values():  # warm-up: channels, the first LLM calls
            timed(stub, QUESTIONS[0], args.max_output_tokens)
        seconds, errors = side_by_side(sides, args.pairs, args.max_output_tokens)
        answered = 1 + len(seconds["on"])
        wait_until(lambda: len(shadow_records(records)) >= answered, 300, "shadow records", 1)
        ratio = percentile(seconds["on"], 0.5) / percentile(seconds["off"], 0.5)
        print(f"\nshadow at 100%, its generation service delayed {args.shadow_delay_ms} ms:")
        print(f"  shadow off: {describe(seconds['off'])}")
        print(f"  shadow on:  {describe(seconds['on'])}")
        print(f"  p50 on / off: {ratio:.3f}   errors: {dict(errors) or 'none'}")
        outcomes = Counter(r["outcome"] for r in shadow_records(records))
        print(f"  shadow records: {sum(outcomes.values())} for {answered} answers {dict(outcomes)}")
        proxy.set_enabled(False)
        shadow_down(on.stub, records, answered, args)


def side_by_side(
    sides: dict[str, query_pb2_grpc.QueryServiceStub], pairs: int, tokens: int
) -> tuple[dict[str, list[float]], Counter[str]]:
    """Pairs of calls, one at a time, the side that goes first alternating. The two calls of a
    pair ask different questions (about different pages), and every 8 pairs each side asks
    each question once: an LLM server that reuses the previous prompt's cached prefix would
    make the second of two calls with the same passages fast, whichever side it was."""
    seconds: dict[str, list[float]] = {side: [] for side in sides}
    errors: Counter[str] = Counter()
    for n in range(pairs):
        order = sorted(sides, reverse=n % 2 == 1)
        for offset, side in enumerate(order):
            # Questions n and n + 4 are about different pages.
            asked = f"{QUESTIONS[(n + 4 * offset) % len(QUESTIONS)]} (pair {n})"
            got = timed(sides[side], asked, tokens)
            if isinstance(got, str):
                errors[f"{side}: {got}"] += 1
            else:
                seconds[side].append(got)
    return seconds, errors


def shadow_down(
    stub: query_pb2_grpc.QueryServiceStub, records: Path, before: int, args: argparse.Namespace
) -> None:
    down = [
        timed(stub, question(n, "down "), args.max_output_tokens) for n in range(args.down_queries)
    ]
    total = before + len(down)
    wait_until(lambda: len(shadow_records(records)) >= total, 120, "shadow records", 1)
    failures = [d for d in down if isinstance(d, str)]
    outcomes = Counter(r["outcome"] for r in shadow_records(records)[before:])
    print(f"\nthe shadow's generation service down: {len(down)} queries")
    print(f"  caller errors: {failures or 'none'}; shadow records: {dict(outcomes)}")


if __name__ == "__main__":
    sys.exit(main())
