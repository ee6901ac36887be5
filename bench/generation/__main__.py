"""python -m bench.generation: (a) answers under injected faults, (b) the service's overhead.

Two real llama-cpp-python servers serve SmolLM2-135M. (a) A generation service whose primary
sits behind the FaultInjectingProxy (a test double that fails a share of chat completions with
503, 500 or 429 + Retry-After, picked at random) and whose secondary is the second server takes
N Generate calls, one at a time, each with a deadline. (b) Pairs of identical requests
(temperature 0, same prompt, same max tokens) go straight to the first server through the
openai client and through a generation service whose only provider is that server,
alternating which goes first. Nothing here judges the timings: it prints them with their goals
and saves a JSON summary under reports/.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench.embedding.servers import ServerSpec, free_port, running
from bench.generation.runs import FaultRun, OverheadRun, run_faults, run_overhead
from bench.machine import this_machine
from ragplane.cli.stack import LLM_MODEL_ALIAS, Ports, Stack, grpc_serving
from tests.integration.fault_injecting_proxy import Fault, FaultInjectingProxy

REPO = Path(__file__).resolve().parents[2]

# What the primary's failed calls answer: retryable, and one that asks for a wait.
FAULTS = [
    Fault(503, "injected: overloaded"),
    Fault(500, "injected: internal error"),
    Fault(429, "injected: rate limited", {"Retry-After": "1"}),
]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.generation", description=__doc__)
    parser.add_argument("--requests", type=int, default=120, help="Generate calls in (a)")
    parser.add_argument(
        "--fail-share", type=float, default=0.3, help="share of primary calls failed in (a)"
    )
    parser.add_argument("--deadline-s", type=float, default=10.0, help="deadline of each call")
    parser.add_argument("--pairs", type=int, default=60, help="paired calls in (b)")
    parser.add_argument("--max-output-tokens", type=int, default=16)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--reports", type=Path, default=REPO / "reports" / "bench-generation")
    return parser.parse_args(argv)


def provider(name: str, base_url: str) -> dict[str, object]:
    return {"name": name, "base_url": base_url, "model": LLM_MODEL_ALIAS, "request_timeout_s": 30}


def generation_spec(
    name: str, providers: list[dict[str, object]], redis_port: int
) -> tuple[ServerSpec, str]:
    port = free_port()
    env = {
        "GENERATION_PORT": str(port),
        "GENERATION_PROVIDERS": json.dumps(providers),
        # As deployed with replicas: breaker state in Redis, read and written on every call.
        "GENERATION_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "GENERATION_LOG_LEVEL": "WARNING",
    }
    argv = [sys.executable, "-m", "ragplane.generation"]
    return ServerSpec(name, argv, env, grpc_serving(port)), f"127.0.0.1:{port}"


@contextlib.contextmanager
def llm_servers(run_dir: Path) -> Iterator[Stack]:
    """The stack's two LLM servers and its Redis, on free ports, and nothing else of it."""
    stack = Stack(run_dir, Ports.free(), bin_dir=REPO / ".bin", python=sys.executable)
    try:
        stack.up(["redis", "llm", "llm2"], report=lambda line: print(f"   {line}", flush=True))
        yield stack
    finally:
        stack.down(report=lambda line: None)


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.1f} / {five:.1f} / {fifteen:.1f} (1 / 5 / 15 min)"


def print_faults(run: FaultRun, injected: int, primary_calls: int) -> None:
    n = run.requests
    print(f"    primary calls: {primary_calls}, failed by the injector: {injected}")
    print(f"    answered:                {run.answered}/{n} = {run.answered / n:.1%}  (goal 100%)")
    print(
        f"    answered within deadline: {run.within_deadline}/{n} = "
        f"{run.within_deadline / n:.1%}  (goal 100%; deadline {run.deadline_s:g} s)"
    )
    print(
        f"    by a model: {run.by_model}, after a retry: {run.retried}, "
        f"from a later provider: {run.fell_back}, errors: {dict(run.errors) or 'none'}"
    )
    print(f"    latency: {run.latency.describe()}")


def print_overhead(run: OverheadRun) -> None:
    print(f"    straight to the server:  {run.direct.describe()}")
    print(f"    through the service:     {run.service.describe()}")
    print(
        f"    p50 overhead (median of paired differences): {run.p50_overhead_ms:.2f} ms  "
        f"(goal under 5 ms); pairs with unequal answers: {run.unequal_pairs}"
    )


def summary_json(
    started: str, args: argparse.Namespace, faults: FaultRun, overhead: OverheadRun, **extra: Any
) -> dict[str, Any]:
    return {
        "started": started,
        "machine": asdict(this_machine()),
        "llama_cpp_python": version("llama-cpp-python"),
        "settings": {k: str(v) for k, v in vars(args).items()},
        "faults": {
            # Not asdict: it rebuilds a Counter from its items, counting the pairs.
            **{k: v for k, v in vars(faults).items() if k not in ("latencies_ms", "errors")},
            "errors": dict(faults.errors),
            "share_answered": faults.answered / faults.requests,
            "share_within_deadline": faults.within_deadline / faults.requests,
            "latency": asdict(faults.latency),
            **extra,
        },
        "overhead": asdict(overhead),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    reports: Path = args.reports
    reports.mkdir(parents=True, exist_ok=True)
    print(f"generation benchmark, {started}")
    print(f"machine: {this_machine().describe()}; llama-cpp-python {version('llama-cpp-python')}")
    # Other work on the machine stretches every latency here: say how busy it was.
    print(f"load average at start: {load_average()}")
    print(f"model: SmolLM2-135M-Instruct, {args.max_output_tokens} output tokens per call")
    print(
        "starting Redis, two llama-cpp-python servers and two generation services "
        "(breaker state in Redis) ...",
        flush=True,
    )
    with (
        tempfile.TemporaryDirectory(prefix="bench-generation-") as scratch,
        llm_servers(Path(scratch)) as stack,
        FaultInjectingProxy(stack.ports.llm) as proxy,
        contextlib.ExitStack() as services,
    ):
        primary = f"http://127.0.0.1:{proxy.port}/v1"
        secondary = f"http://127.0.0.1:{stack.ports.llm2}/v1"
        direct = f"http://127.0.0.1:{stack.ports.llm}/v1"
        logs = reports / "logs"
        redis_port = stack.ports.redis
        chain, chain_target = generation_spec(
            "generation-chain",
            [provider("primary", primary), provider("secondary", secondary)],
            redis_port,
        )
        alone, alone_target = generation_spec(
            "generation-alone", [provider("direct", direct)], redis_port
        )
        services.enter_context(running(chain, logs / "generation-chain.log"))
        services.enter_context(running(alone, logs / "generation-alone.log"))

        print()
        print(
            f"(a) {args.requests} calls, one at a time; the injector fails "
            f"{args.fail_share:.0%} of primary calls (503, 500, 429 + Retry-After: 1):",
            flush=True,
        )
        proxy.fail_share(FAULTS, args.fail_share, seed=args.seed)
        faults = run_faults(chain_target, args.requests, args.deadline_s, args.max_output_tokens)
        injected, primary_calls = proxy.injected, proxy.completions
        proxy.clear()
        print_faults(faults, injected, primary_calls)

        print()
        print(f"(b) {args.pairs} pairs of identical calls, straight vs through the service:")
        overhead = run_overhead(
            alone_target, direct, LLM_MODEL_ALIAS, args.pairs, args.max_output_tokens
        )
        print_overhead(overhead)

    print(f"load average at the end: {load_average()}")
    summary = summary_json(
        started, args, faults, overhead, injected=injected, primary_calls=primary_calls
    )
    summary["load_average_at_end"] = load_average()
    (reports / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print()
    print(f"report: {reports / 'summary.json'}")
    # Timings are never a failure; a call left without an answer is.
    return 0 if faults.answered == faults.requests else 1


if __name__ == "__main__":
    sys.exit(main())
