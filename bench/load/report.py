"""What a ghz JSON report says, in the figures the summary prints."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.load.metrics import CacheFigures, VariantFigures

NS_PER_S = 1e9
NS_PER_MS = 1e6


@dataclass(frozen=True)
class LoadSummary:
    profile: str
    calls: int
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    statuses: dict[str, int]
    # What the query service counted during the profile (None for other services).
    cache: CacheFigures | None = None
    # The A/B variants that answered (the query service's flags file; empty without one).
    variants: tuple[VariantFigures, ...] = ()

    @classmethod
    def from_ghz(
        cls,
        profile: str,
        path: Path,
        cache: CacheFigures | None = None,
        variants: tuple[VariantFigures, ...] = (),
    ) -> LoadSummary:
        report: dict[str, Any] = json.loads(path.read_text())
        percentiles = {
            int(item["percentage"]): float(item["latency"]) / NS_PER_MS
            for item in report.get("latencyDistribution") or []
        }
        statuses = {str(k): int(v) for k, v in (report.get("statusCodeDistribution") or {}).items()}
        return cls(
            profile=profile,
            calls=int(report.get("count", sum(statuses.values()))),
            rps=float(report.get("rps", 0.0)),
            p50_ms=percentiles.get(50, float("nan")),
            p95_ms=percentiles.get(95, float("nan")),
            p99_ms=percentiles.get(99, float("nan")),
            statuses=statuses,
            cache=cache,
            variants=variants,
        )

    def row(self) -> str:
        codes = ", ".join(f"{code} {count}" for code, count in sorted(self.statuses.items()))
        return (
            f"{self.profile:<14} {self.calls:>6} {self.rps:>8.2f} {self.p50_ms:>9.1f} "
            f"{self.p95_ms:>9.1f} {self.p99_ms:>9.1f}   {codes}"
        )


HEADER = (
    f"{'profile':<14} {'calls':>6} {'rps':>8} {'p50 ms':>9} {'p95 ms':>9} {'p99 ms':>9}   statuses"
)


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]
