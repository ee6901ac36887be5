"""How long each stage of answering took: recorded here and nowhere else."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from enum import IntEnum


class Stage(IntEnum):
    """The stages of answering (the values of the contract's Stage)."""

    UNSPECIFIED = 0
    CACHE = 1
    EMBEDDING = 2
    RETRIEVAL = 3
    RERANK = 4
    GENERATION = 5


class StageTimings:
    """Stage durations in milliseconds, in the order the stages ran."""

    def __init__(self) -> None:
        self._entries: list[tuple[Stage, float]] = []

    def add(self, stage: Stage, duration_ms: float) -> None:
        self._entries.append((stage, duration_ms))

    def add_first(self, stage: Stage, duration_ms: float) -> None:
        """For a stage that ran around the others (the caches: before and after)."""
        self._entries.insert(0, (stage, duration_ms))

    @contextmanager
    def measure(self, stage: Stage) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add(stage, (time.perf_counter() - started) * 1000)

    def split_last(self, inner: Stage, inner_ms: float) -> None:
        """The last stage included ``inner`` (the search, its rerank): report them apart."""
        if inner_ms <= 0 or not self._entries:
            return
        stage, outer_ms = self._entries.pop()
        self.add(stage, max(0.0, outer_ms - inner_ms))
        self.add(inner, inner_ms)

    def __iter__(self) -> Iterator[tuple[Stage, float]]:
        return iter(self._entries)


def elapsed_ms(started: float) -> float:
    """Milliseconds since ``started`` (a time.perf_counter() reading)."""
    return (time.perf_counter() - started) * 1000
