"""`make load`: ghz load profiles against the running local stack, summarised.

Runs every profile in bench/load/profiles/ with ghz (closed-loop steady and open-loop step
profiles against Query, a steady one against Embed), keeps each ghz JSON report, and prints
RPS, p50/p95/p99 and the status-code distribution of each. Before the load it measures the
query service's own overhead: a query's total time minus the sum of its stage times.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import grpc

from bench.load.metrics import CacheFigures, VariantFigures, scrape
from bench.load.profiles import Profile, all_profiles
from bench.load.report import HEADER, LoadSummary, percentile
from bench.machine import this_machine
from ragplane.cli.documents import document_for
from ragplane.cli.stack import Ports, grpc_serving
from ragplane.v1 import query_pb2, query_pb2_grpc

REPO = Path(__file__).resolve().parents[2]
LOAD_TENANT = "load"
# Pages of the demo corpus the profiles' questions are about.
LOAD_DOCUMENTS = [
    "library/venv.rst.txt",
    "tutorial/venv.rst.txt",
    "tutorial/interpreter.rst.txt",
    "using/cmdline.rst.txt",
    "tutorial/modules.rst.txt",
]
OVERHEAD_QUESTION = "How do I create a virtual environment with venv?"
# Asked once (a miss), then again word for word (exact hits) and reworded (semantic hits).
CACHED_QUESTIONS = {
    "How do I create a virtual environment?": "How can I create a virtual environment?",
    "How do I exit the Python interpreter?": "How can I exit the Python interpreter?",
    "How do I install packages with pip?": "How can I install packages using pip?",
    "What does the venv module do?": "What does the venv module do exactly?",
}
CACHE_REPEATS = 25


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__)
    parser.add_argument("--profiles", default="", help="comma-separated names (default: all)")
    parser.add_argument("--overhead-samples", type=int, default=30)
    parser.add_argument("--reports", type=Path, default=REPO / "reports" / "load")
    return parser.parse_args()


def ingest_load_tenant(stub: query_pb2_grpc.QueryServiceStub) -> None:
    corpus = Path(
        subprocess.run(
            [str(REPO / "scripts" / "fetch-corpus.sh")], check=True, capture_output=True, text=True
        ).stdout.strip()
    )
    documents = [document_for(corpus / name, corpus) for name in LOAD_DOCUMENTS]
    # Deterministic chunk ids: ingesting again replaces the same chunks.
    response = stub.Ingest(
        query_pb2.IngestRequest(tenant=LOAD_TENANT, documents=documents), timeout=600
    )
    failed = [r.document_id for r in response.results if r.error]
    if failed:
        raise SystemExit(f"error: ingesting the load tenant failed for {failed}")


def measure_overhead(stub: query_pb2_grpc.QueryServiceStub, samples: int) -> dict[str, float]:
    """The query service's own time per query: total_ms less the time its stages took."""
    overheads: list[float] = []
    totals: list[float] = []
    for number in range(samples):
        # A new question each time: the whole path runs, no answer cache hit.
        question = f"{OVERHEAD_QUESTION} (overhead sample {number}, {time.time_ns()})"
        response = stub.Query(
            query_pb2.QueryRequest(tenant=LOAD_TENANT, query=question, max_output_tokens=16),
            timeout=60,
        )
        stages = sum(timing.duration_ms for timing in response.timings)
        overheads.append(response.total_ms - stages)
        totals.append(response.total_ms)
    return {
        "samples": samples,
        "overhead_p50_ms": percentile(overheads, 0.50),
        "overhead_p99_ms": percentile(overheads, 0.99),
        "total_p50_ms": percentile(totals, 0.50),
    }


def _timed(stub: query_pb2_grpc.QueryServiceStub, question: str) -> tuple[float, str]:
    """Client-side latency in ms, and the cache layer that answered ("" for a miss)."""
    started = time.perf_counter()
    response = stub.Query(
        query_pb2.QueryRequest(tenant=LOAD_TENANT, query=question, max_output_tokens=16),
        timeout=60,
    )
    elapsed_ms = (time.perf_counter() - started) * 1000
    layer = query_pb2.CacheLayer.Name(response.cache.layer) if response.cache.hit else ""
    return elapsed_ms, layer.removeprefix("CACHE_LAYER_").lower()


def measure_cache_paths(stub: query_pb2_grpc.QueryServiceStub) -> dict[str, dict[str, float]]:
    """Latency of misses, exact hits and semantic hits on loopback, one call at a time."""
    by_path: dict[str, list[float]] = {"miss": [], "exact": [], "semantic": []}
    for question in CACHED_QUESTIONS:
        elapsed_ms, layer = _timed(stub, question)
        by_path[layer or "miss"].append(elapsed_ms)
    for _ in range(CACHE_REPEATS):
        for question, paraphrase in CACHED_QUESTIONS.items():
            for asked in (question, paraphrase):
                elapsed_ms, layer = _timed(stub, asked)
                by_path[layer or "miss"].append(elapsed_ms)
    return {
        path: {
            "calls": len(values),
            "p50_ms": percentile(values, 0.50),
            "p99_ms": percentile(values, 0.99),
        }
        for path, values in by_path.items()
    }


def run_profile(
    profile: Profile, ghz: Path, ports: Ports, reports: Path, stub: query_pb2_grpc.QueryServiceStub
) -> LoadSummary:
    port = ports.query if profile.service == "query" else ports.embedding
    report = reports / f"{profile.name}.ghz.json"
    argv = profile.ghz_argv(ghz, REPO / "protos", f"127.0.0.1:{port}", report)
    print(f"  {profile.name}: {profile.description} ({profile.duration_s:g} s)", flush=True)
    for question in profile.warm_up:
        _timed(stub, question)
    before = scrape(ports.query_metrics)
    completed = subprocess.run(argv, capture_output=True, text=True, check=False)
    if completed.returncode != 0 or not report.exists():
        output = (completed.stderr or completed.stdout)[-2000:]
        raise SystemExit(f"error: ghz failed for {profile.name}: {output}")
    if profile.service != "query":
        return LoadSummary.from_ghz(profile.name, report)
    after = scrape(ports.query_metrics)
    cache = CacheFigures.between(before, after)
    variants = tuple(VariantFigures.between(before, after))
    return LoadSummary.from_ghz(profile.name, report, cache, variants)


def main() -> int:
    args = parse_args()
    ghz = REPO / ".bin" / "ghz"
    if not ghz.exists():
        print("error: ghz is not installed; run scripts/install-load.sh", file=sys.stderr)
        return 2
    ports = Ports.from_env()
    for name, port in (("query", ports.query), ("embedding", ports.embedding)):
        if not grpc_serving(port)():
            print(
                f"error: the {name} service on port {port} is not serving; run "
                "`make run` or `.venv/bin/ragplane stack up` first",
                file=sys.stderr,
            )
            return 2
    wanted = {name for name in args.profiles.split(",") if name}
    profiles = [p for p in all_profiles() if not wanted or p.name in wanted]
    reports = args.reports / time.strftime("%Y%m%d-%H%M%S")
    reports.mkdir(parents=True, exist_ok=True)
    machine = this_machine()
    print(f"machine: {machine.describe()}")

    with grpc.insecure_channel(f"127.0.0.1:{ports.query}") as channel:
        stub = query_pb2_grpc.QueryServiceStub(channel)
        print(f"ingesting {len(LOAD_DOCUMENTS)} documents into tenant {LOAD_TENANT!r}", flush=True)
        ingest_load_tenant(stub)
        print(
            f"measuring the query service's own overhead over {args.overhead_samples} queries",
            flush=True,
        )
        overhead = measure_overhead(stub, args.overhead_samples)
        print("measuring answer cache misses and hits, one call at a time", flush=True)
        cache_paths = measure_cache_paths(stub)
        print(f"running {len(profiles)} ghz profiles", flush=True)
        summaries = [run_profile(profile, ghz, ports, reports, stub) for profile in profiles]

    print()
    print(HEADER)
    for summary in summaries:
        print(summary.row())
    for summary in summaries:
        if summary.cache is not None:
            print(f"  {summary.profile}: {summary.cache.describe()}")
        # Side by side, when the stack's query service has a flags file with an experiment.
        for variant in summary.variants:
            print(f"    variant {variant.describe()}")
    print("\nanswer cache, one call at a time on loopback:")
    for path, figures in cache_paths.items():
        print(
            f"  {path:<9} {figures['calls']:>4.0f} calls   p50 {figures['p50_ms']:8.1f} ms"
            f"   p99 {figures['p99_ms']:8.1f} ms"
        )
    print(
        f"\nquery service overhead (total - sum of stages), {overhead['samples']:.0f} queries: "
        f"p50 {overhead['overhead_p50_ms']:.2f} ms, p99 {overhead['overhead_p99_ms']:.2f} ms "
        f"(query p50 {overhead['total_p50_ms']:.0f} ms; goal: overhead p50 under 5 ms)"
    )
    summary_path = reports / "summary.json"
    summary_path.write_text(
        json.dumps(
            {
                "machine": machine.describe(),
                "overhead": overhead,
                "answer_cache_paths": cache_paths,
                "profiles": [asdict(s) for s in summaries],
            },
            indent=2,
        )
    )
    print(f"reports: {reports}/ (summary.json, <profile>.ghz.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
