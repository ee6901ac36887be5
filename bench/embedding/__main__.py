"""python -m bench.embedding: (a) the limit, (b) ragplane batched, (c) unbatched, (d) Infinity.

The phases run one after another on this machine, each server alone (on 2 cores anything else
running would distort the figures). Nothing here judges the timings: it prints them, the ratios
and their goals, and keeps the load tools' JSON reports and a summary under reports/.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import sys
from pathlib import Path

from bench.embedding.limit import LimitResult, measure_limit
from bench.embedding.loadgen import Load, LoadResult
from bench.embedding.phases import (
    INFINITY_ENGINES,
    Bench,
    InfinityOutcome,
    PhaseFailed,
    find_infinity,
    measure_infinity_engine,
    measure_ragplane,
)
from bench.embedding.report import Summary, ratios
from bench.embedding.texts import short_text, short_texts
from bench.machine import this_machine
from ragplane.embedding.config import bundled_model_path

REPO = Path(__file__).resolve().parents[2]

# (b) and (c): the service as deployed, and the same with every call its own model run. The cache
# is off in both: every text is new anyway, and a hit would measure Redis, not the model.
RAGPLANE_PHASES = {
    "ragplane-batched": ("(b)", "ragplane, batched", {"EMBEDDING_REDIS_URL": ""}),
    "ragplane-unbatched": (
        "(c)",
        "ragplane, max batch size 1",
        {"EMBEDDING_REDIS_URL": "", "EMBEDDING_MAX_BATCH_SIZE": "1"},
    ),
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.embedding", description=__doc__)
    parser.add_argument("--texts", type=int, default=2000, help="texts for the limit (a)")
    parser.add_argument(
        "--limit-seconds", type=float, default=3.0, help="time per batch size in (a)"
    )
    parser.add_argument("--concurrency", type=int, default=64, help="calls in flight in (b)-(d)")
    parser.add_argument("--warmup-seconds", type=float, default=5.0)
    parser.add_argument("--seconds", type=float, default=20.0, help="measured time in (b)-(d)")
    parser.add_argument("--skip-infinity", action="store_true", help="leave out (d)")
    parser.add_argument("--reports", type=Path, default=REPO / "reports" / "bench-embedding")
    return parser.parse_args(argv)


def ragplane_cache() -> Path:
    return Path(os.environ.get("RAGPLANE_CACHE") or Path.home() / ".cache" / "ragplane")


def installed_tool(name: str) -> Path | None:
    """scripts/install-bench.sh links the load tools into .bin/."""
    linked = REPO / ".bin" / name
    if linked.exists():
        return linked
    found = shutil.which(name)
    return Path(found) if found else None


def run_limit(texts: list[str], seconds: float) -> LimitResult:
    print(f"(a) the limit: SentenceTransformer.encode in-process, passes over {len(texts)} texts")
    limit = measure_limit(bundled_model_path(), texts, seconds)
    best = limit.best
    print(
        f"    best: {best.backend}, batch {best.batch_size}: {best.texts_per_s:.1f} texts/s "
        f"({limit.device}, {limit.mean_tokens_per_text:.1f} tokens per text)"
    )
    return limit


def run_ragplane_phases(bench: Bench) -> tuple[dict[str, LoadResult], dict[str, str]]:
    results: dict[str, LoadResult] = {}
    failures: dict[str, str] = {}
    for name, (label, title, settings) in RAGPLANE_PHASES.items():
        shown = " ".join(f"{key}={value}" for key, value in settings.items())
        print(f"{label} {title} ({shown}), ghz:", flush=True)
        try:
            results[name] = measure_ragplane(bench, name, settings)
            print(f"    {results[name].describe()}")
        except PhaseFailed as error:
            failures[name] = str(error)
            print(f"    FAILED: {error}")
    return results, failures


def run_infinity_phase(bench: Bench, skip: bool) -> InfinityOutcome:
    print("(d) Infinity, same load on its REST API (POST /embeddings), vegeta:", flush=True)
    outcome = InfinityOutcome()
    if skip:
        outcome.skipped = "left out (--skip-infinity)"
        print(f"    skipped: {outcome.skipped}")
        return outcome
    try:
        install = find_infinity(ragplane_cache())
    except PhaseFailed as error:
        outcome.skipped = str(error)
        print(f"    skipped: {outcome.skipped}")
        return outcome
    outcome.version = install.version
    for engine in INFINITY_ENGINES:
        try:
            outcome.results[engine] = measure_infinity_engine(bench, install, engine)
            print(f"    {engine:<8}{outcome.results[engine].describe()}")
        except PhaseFailed as error:
            outcome.failures[engine] = str(error)
            print(f"    {engine:<8}FAILED: {error}")
    if outcome.best_engine is None:
        outcome.skipped = "no engine of Infinity ran; see the failures above"
    else:
        print(f"    best engine: {outcome.best_engine}")
    return outcome


def texts_per_s(result: LoadResult | None) -> float | None:
    return result.texts_per_s if result else None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    reports: Path = args.reports
    reports.mkdir(parents=True, exist_ok=True)
    machine = this_machine()
    load = Load(args.concurrency, args.warmup_seconds, args.seconds)
    ghz = installed_tool("ghz")
    if ghz is None:
        print("error: ghz is not installed; run scripts/install-bench.sh", file=sys.stderr)
        return 2

    print(f"embedding benchmark, {started}")
    print(f"machine: {machine.describe()}")
    print(
        f"load for (b)-(d): {load.concurrency} concurrent single-text calls, "
        f"{load.warmup_s:g} s warm-up, then {load.duration_s:g} s measured; "
        f'texts like "{short_text(1234)}", each call its own'
    )
    print()

    limit = run_limit(short_texts(args.texts), args.limit_seconds)
    bench = Bench(REPO, reports, load, ghz, installed_tool("vegeta"), bundled_model_path())
    ragplane, failures = run_ragplane_phases(bench)
    infinity = run_infinity_phase(bench, args.skip_infinity)

    best_infinity = infinity.results.get(infinity.best_engine or "")
    table = ratios(
        limit.best.texts_per_s,
        texts_per_s(ragplane.get("ragplane-batched")),
        texts_per_s(ragplane.get("ragplane-unbatched")),
        texts_per_s(best_infinity),
    )
    print()
    print(f"ratios of texts/s on {machine.describe()}:")
    for ratio in table:
        print(ratio.describe())

    summary = Summary(
        started,
        machine,
        load,
        args.texts,
        short_text(1234),
        limit,
        ragplane,
        failures,
        infinity,
        table,
    )
    summary.write(reports / "summary.json")
    print()
    print(f"reports: {reports}/ (summary.json, *.ghz.json, *.vegeta.json, logs/)")
    # Timings are never a failure; a phase of ragplane's own that could not run is.
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
