"""The load: ghz for gRPC and vegeta for HTTP, both closed loops with a fixed number of calls.

Both tools are Go programs with the same model of load: N workers, each sending its next call as
soon as the previous one answered, for a fixed time after a warm-up. Their JSON reports are kept.
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.embedding.texts import ghz_text_template, short_text

NS_PER_S = 1e9
NS_PER_MS = 1e6
# vegeta cycles through its prepared requests; this many distinct texts are plenty for a server
# without a cache (Infinity runs with its disk cache off) and keep the targets file small.
VEGETA_DISTINCT_TEXTS = 20_000


@dataclass(frozen=True)
class Load:
    concurrency: int
    warmup_s: float
    duration_s: float


@dataclass(frozen=True)
class LoadResult:
    tool: str
    ok: int
    failed: int
    seconds: float
    p50_ms: float
    p99_ms: float
    report: str
    # The tool's own words for what failed (ghz counts each kind, vegeta lists them).
    errors: tuple[str, ...] = ()

    @property
    def texts_per_s(self) -> float:
        # Every call carries one text; failed calls embed nothing.
        return self.ok / self.seconds if self.seconds > 0 else 0.0

    def describe(self) -> str:
        line = (
            f"{self.texts_per_s:8.1f} texts/s   p50 {self.p50_ms:7.1f} ms   "
            f"p99 {self.p99_ms:7.1f} ms   ({self.ok} ok, {self.failed} failed, {self.tool})"
        )
        for message in self.errors[:3]:
            line += f"\n        error: {message}"
        return line


class LoadFailed(Exception):
    """The load tool itself failed (not the calls it made)."""


def run_tool(argv: list[str]) -> None:
    completed = subprocess.run(argv, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise LoadFailed(
            f"{Path(argv[0]).name} exited with {completed.returncode}: "
            f"{(completed.stderr or completed.stdout).strip()[-2000:]}"
        )


def warm_up_then_measure(run: Callable[[float, Path], None], load: Load, report: Path) -> None:
    # The warm-up's report only shows that it ran; the measured run starts on a warm server.
    run(load.warmup_s, report.with_name(report.stem + ".warmup.json"))
    run(load.duration_s, report)


# --- gRPC: ghz ---------------------------------------------------------------------------------


def ghz_argv(
    ghz: Path, repo: Path, port: int, concurrency: int, seconds: float, out: Path
) -> list[str]:
    request = {"texts": [ghz_text_template()]}
    return [
        str(ghz),
        "--insecure",
        f"--proto={repo / 'protos/ragplane/v1/embedding.proto'}",
        f"--import-paths={repo / 'protos'}",
        "--call=ragplane.v1.EmbeddingService/Embed",
        f"--data={json.dumps(request)}",
        f"--concurrency={concurrency}",
        f"--duration={seconds:g}s",
        # Calls still in flight at the end are waited for and counted, as vegeta does.
        "--duration-stop=wait",
        "--timeout=60s",
        "--format=json",
        f"--output={out}",
        f"127.0.0.1:{port}",
    ]


def parse_ghz_report(path: Path) -> LoadResult:
    report: dict[str, Any] = json.loads(path.read_text())
    statuses: dict[str, int] = report.get("statusCodeDistribution") or {}
    ok = int(statuses.get("OK", 0))
    percentiles = {
        int(item["percentage"]): float(item["latency"]) / NS_PER_MS
        for item in report.get("latencyDistribution") or []
    }
    return LoadResult(
        tool="ghz",
        ok=ok,
        failed=sum(statuses.values()) - ok,
        seconds=float(report["total"]) / NS_PER_S,
        p50_ms=percentiles.get(50, float("nan")),
        p99_ms=percentiles.get(99, float("nan")),
        report=str(path),
        errors=tuple(
            f"{count} x {message}"
            for message, count in (report.get("errorDistribution") or {}).items()
        ),
    )


def run_ghz(ghz: Path, repo: Path, port: int, load: Load, report: Path) -> LoadResult:
    def run(seconds: float, out: Path) -> None:
        run_tool(ghz_argv(ghz, repo, port, load.concurrency, seconds, out))

    warm_up_then_measure(run, load, report)
    return parse_ghz_report(report)


# --- HTTP: vegeta ------------------------------------------------------------------------------


def write_vegeta_targets(path: Path, url: str, body: Callable[[str], dict[str, Any]]) -> None:
    """One prepared POST per text (vegeta's JSON target format), so that texts vary per call."""
    with path.open("w") as targets:
        for number in range(VEGETA_DISTINCT_TEXTS):
            payload = json.dumps(body(short_text(number))).encode()
            target = {
                "method": "POST",
                "url": url,
                "body": base64.b64encode(payload).decode(),
                "header": {"Content-Type": ["application/json"]},
            }
            targets.write(json.dumps(target) + "\n")


def vegeta_attack_argv(
    vegeta: Path, targets: Path, concurrency: int, seconds: float, out: Path
) -> list[str]:
    return [
        str(vegeta),
        "attack",
        "-format=json",
        f"-targets={targets}",
        # rate 0: no schedule, each worker sends as soon as its last call answered; with the
        # workers fixed at the concurrency this is the same closed loop as ghz's.
        "-rate=0",
        f"-workers={concurrency}",
        f"-max-workers={concurrency}",
        f"-duration={seconds:g}s",
        "-timeout=60s",
        f"-output={out}",
    ]


def parse_vegeta_report(path: Path) -> LoadResult:
    report: dict[str, Any] = json.loads(path.read_text())
    statuses: dict[str, int] = report.get("status_codes") or {}
    ok = int(statuses.get("200", 0))
    latencies: dict[str, float] = report.get("latencies") or {}
    return LoadResult(
        tool="vegeta",
        ok=ok,
        failed=int(report.get("requests", 0)) - ok,
        # Sending time plus the wait for the last answers, like ghz's total.
        seconds=(float(report["duration"]) + float(report["wait"])) / NS_PER_S,
        p50_ms=float(latencies.get("50th", float("nan"))) / NS_PER_MS,
        p99_ms=float(latencies.get("99th", float("nan"))) / NS_PER_MS,
        report=str(path),
        errors=tuple(report.get("errors") or ()),
    )


def run_vegeta(
    vegeta: Path,
    url: str,
    body: Callable[[str], dict[str, Any]],
    load: Load,
    report: Path,
) -> LoadResult:
    targets = report.with_name(report.stem + ".targets.jsonl")
    results = report.with_name(report.stem + ".results.bin")
    write_vegeta_targets(targets, url, body)
    try:

        def run(seconds: float, out: Path) -> None:
            run_tool(vegeta_attack_argv(vegeta, targets, load.concurrency, seconds, results))
            with out.open("w") as report_file:
                completed = subprocess.run(
                    [str(vegeta), "report", "-type=json", str(results)],
                    stdout=report_file,
                    stderr=subprocess.PIPE,
                    text=True,
                    check=False,
                )
            if completed.returncode != 0:
                raise LoadFailed(
                    f"vegeta report exited with {completed.returncode}: {completed.stderr}"
                )

        warm_up_then_measure(run, load, report)
    finally:
        # Both are large and say nothing the report does not.
        targets.unlink(missing_ok=True)
        results.unlink(missing_ok=True)
    return parse_vegeta_report(report)
