"""A batch's questions, results and progress, as plain data, and their form in Redis (JSON)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

from ragplane.query.domain import (
    Cause,
    Degradation,
    MetadataFilter,
    Passage,
    Question,
    SourceDocument,
    ValueBounds,
)
from ragplane.query.timings import Stage


class BatchState(Enum):
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    DONE = "done"
    CANCELLED = "cancelled"


class ItemStatus(Enum):
    DONE = "done"
    FAILED = "failed"


# What one item of a batch asks for: a question answered, or a document ingested.
Work = Question | SourceDocument


@dataclass(frozen=True)
class BatchItem:
    """One question (or document) of a batch, as the queue carries it to a worker."""

    batch_id: str
    tenant: str
    index: int
    work: Work


@dataclass(frozen=True)
class ItemResult:
    """What became of one question: its answer at the batch price, or why it failed."""

    index: int
    status: ItemStatus
    query: str
    answer: str = ""
    # Passages cut to the service's snippet length.
    citations: tuple[Passage, ...] = ()
    provider: str = ""
    model: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    interactive_cost_usd: float = 0.0
    error: str = ""
    attempts: int = 0
    degradations: tuple[Degradation, ...] = ()
    # A document: its id and how many chunks it was indexed as.
    document_id: str = ""
    chunks: int = 0

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "status": self.status.value})

    @classmethod
    def from_json(cls, text: str | bytes) -> ItemResult:
        data = json.loads(text)
        return cls(
            **{
                **data,
                "status": ItemStatus(data["status"]),
                "citations": tuple(Passage(**c) for c in data["citations"]),
                "degradations": tuple(
                    Degradation(Stage(d["stage"]), Cause(d["cause"]), d["reason"], d["dependency"])
                    for d in data["degradations"]
                ),
            }
        )


@dataclass(frozen=True)
class Progress:
    total: int
    queued: int
    running: int
    done: int
    failed: int
    cancelled: int
    eta_s: float

    def state(self, cancelled: bool, paused: bool, started: bool) -> BatchState:
        """The batch's state: cancelled, else done once every question finished, else
        paused, running once a question started, or queued."""
        if cancelled:
            return BatchState.CANCELLED
        if self.done + self.failed == self.total:
            return BatchState.DONE
        if paused:
            return BatchState.PAUSED
        return BatchState.RUNNING if started else BatchState.QUEUED


@dataclass(frozen=True)
class BatchStatus:
    batch_id: str
    tenant: str
    state: BatchState
    progress: Progress
    paused_reason: str
    cost_usd: float
    interactive_cost_usd: float
    results: list[ItemResult] = field(default_factory=list)

    @property
    def saved_usd(self) -> float:
        return max(0.0, self.interactive_cost_usd - self.cost_usd)


def work_to_json(work: Work) -> str:
    if isinstance(work, SourceDocument):
        return json.dumps({"document": asdict(work)})
    # Feature flags are applied to interactive queries at the edge; a batch question has the
    # service's own settings, so it carries none (and the queue needs no schema for them).
    question = asdict(work)
    del question["flags"]
    return json.dumps({"question": question})


def work_from_json(text: str | bytes) -> Work:
    data: dict[str, Any] = json.loads(text)
    if "document" in data:
        return SourceDocument(**data["document"])
    return _question(data["question"])


def _question(data: dict[str, Any]) -> Question:
    filters = tuple(
        MetadataFilter(
            f["field"],
            f["equals"],
            tuple(f["any_of"]),
            ValueBounds(**f["bounds"]) if f["bounds"] is not None else None,
        )
        for f in data.pop("filters")
    )
    return Question(**data, filters=filters)
