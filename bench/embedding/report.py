"""The ratios that issue 3 sets goals for, and the summary JSON kept beside the tools' reports."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.embedding.limit import LimitResult
from bench.embedding.loadgen import Load, LoadResult
from bench.embedding.phases import InfinityOutcome
from bench.machine import Machine


@dataclass(frozen=True)
class Ratio:
    name: str
    meaning: str
    # None when a phase it needs did not run.
    value: float | None
    goal: float

    def describe(self) -> str:
        if self.value is None:
            return f"  {self.name:<19} {'n/a':>6}   goal >= {self.goal:<4g}  ({self.meaning})"
        verdict = "meets the goal" if self.value >= self.goal else "below the goal"
        return (
            f"  {self.name:<19} {self.value:6.2f}   goal >= {self.goal:<4g}  "
            f"{verdict:<15} ({self.meaning})"
        )


def divide(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def ratios(
    limit: float | None, batched: float | None, unbatched: float | None, infinity: float | None
) -> list[Ratio]:
    """Texts/s of (b) against (a), (c) and (d), with the goals of issue 3."""
    return [
        Ratio("served/limit", "(b) / (a)", divide(batched, limit), 0.85),
        Ratio("batched/unbatched", "(b) / (c)", divide(batched, unbatched), 3.0),
        Ratio("ragplane/Infinity", "(b) / (d)", divide(batched, infinity), 1.0),
    ]


def load_result_json(result: LoadResult) -> dict[str, Any]:
    return {**dataclasses.asdict(result), "texts_per_s": result.texts_per_s}


def limit_json(limit: LimitResult) -> dict[str, Any]:
    return {
        "device": limit.device,
        "mean_tokens_per_text": limit.mean_tokens_per_text,
        "best_backend": limit.best.backend,
        "best_batch_size": limit.best.batch_size,
        "texts_per_s": limit.best.texts_per_s,
        "timings": [
            {**dataclasses.asdict(timing), "texts_per_s": timing.texts_per_s}
            for timing in limit.timings
        ],
        "failed_backends": limit.failed_backends,
    }


def infinity_json(outcome: InfinityOutcome) -> dict[str, Any]:
    best = outcome.best_engine
    return {
        "version": outcome.version,
        "skipped": outcome.skipped,
        "best_engine": best,
        "texts_per_s": outcome.results[best].texts_per_s if best else None,
        "by_engine": {engine: load_result_json(r) for engine, r in outcome.results.items()},
        "failed_engines": outcome.failures,
    }


@dataclass(frozen=True)
class Summary:
    started: str
    machine: Machine
    load: Load
    texts: int
    example_text: str
    limit: LimitResult | None
    ragplane: dict[str, LoadResult]
    failures: dict[str, str]
    infinity: InfinityOutcome
    ratios: list[Ratio]

    def to_json(self) -> dict[str, Any]:
        return {
            "started": self.started,
            "machine": dataclasses.asdict(self.machine),
            "load": dataclasses.asdict(self.load),
            "limit_texts": self.texts,
            "example_text": self.example_text,
            "limit": limit_json(self.limit) if self.limit else None,
            "ragplane": {name: load_result_json(r) for name, r in self.ragplane.items()},
            "failures": self.failures,
            "infinity": infinity_json(self.infinity),
            "ratios": [dataclasses.asdict(ratio) for ratio in self.ratios],
        }

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")
