"""The labelled query set, the search modes compared, and their document-level scores."""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import ir_measures
from ir_measures import RR, R, nDCG

from ragplane.v1 import retrieval_pb2

MEASURES = {"nDCG@10": nDCG @ 10, "Recall@10": R @ 10, "MRR@10": RR @ 10}


@dataclass(frozen=True)
class LabelledQuery:
    query_id: str
    question: str
    # Relevant document id -> a phrase of the answer that the document contains.
    evidence: Mapping[str, str]


def load_queries(path: Path) -> list[LabelledQuery]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [LabelledQuery(row["id"], row["question"], row["relevant"]) for row in rows]


def missing_evidence(queries: Sequence[LabelledQuery], corpus: Path) -> list[str]:
    """Labels whose document is absent or does not contain the answer phrase."""
    problems = []
    for query in queries:
        for document_id, phrase in query.evidence.items():
            path = corpus / document_id
            if not path.is_file():
                problems.append(f"{query.query_id}: {document_id} is not in the corpus")
            elif phrase.lower() not in path.read_text(errors="replace").lower():
                problems.append(f"{query.query_id}: {document_id} lacks {phrase!r}")
    return problems


@dataclass(frozen=True)
class Mode:
    name: str
    use_vector: bool
    alpha: float = 0.0
    fusion: retrieval_pb2.FusionType.ValueType = retrieval_pb2.FUSION_TYPE_RELATIVE_SCORE
    rerank: bool = False


MODES = [
    Mode("bm25", use_vector=False),
    Mode("vector", use_vector=True, alpha=1.0),
    Mode("hybrid a=0.25", use_vector=True, alpha=0.25),
    Mode("hybrid a=0.5", use_vector=True, alpha=0.5),
    Mode("hybrid a=0.75", use_vector=True, alpha=0.75),
    Mode(
        "hybrid a=0.5 ranked", use_vector=True, alpha=0.5, fusion=retrieval_pb2.FUSION_TYPE_RANKED
    ),
    Mode("hybrid a=0.5 + rerank", use_vector=True, alpha=0.5, rerank=True),
]


def documents_in_order(hits: Sequence[retrieval_pb2.SearchHit]) -> list[str]:
    """Document ids in the order their first chunk appears: the document-level ranking."""
    seen: dict[str, None] = {}
    for hit in hits:
        seen.setdefault(hit.chunk.document_id, None)
    return list(seen)


@dataclass
class ModeResult:
    mode: Mode
    rankings: dict[str, list[str]] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    degraded: int = 0

    def scores(self, queries: Sequence[LabelledQuery]) -> dict[str, float]:
        qrels = {q.query_id: dict.fromkeys(q.evidence, 1) for q in queries}
        # ir-measures ranks by score: give the n-th document the score -n.
        run = {
            query_id: {document: -float(rank) for rank, document in enumerate(documents)}
            for query_id, documents in self.rankings.items()
        }
        aggregate = ir_measures.calc_aggregate(list(MEASURES.values()), qrels, run)
        return {name: float(aggregate[measure]) for name, measure in MEASURES.items()}

    def p50_ms(self) -> float:
        return statistics.median(self.latencies_ms)


def table(results: Sequence[ModeResult], queries: Sequence[LabelledQuery]) -> str:
    header = f"{'mode':<24}" + "".join(f"{name:>11}" for name in MEASURES) + f"{'p50 ms':>10}"
    lines = [header, "-" * len(header)]
    for result in results:
        scores = result.scores(queries)
        cells = "".join(f"{scores[name]:>11.3f}" for name in MEASURES)
        note = f"  ({result.degraded} degraded)" if result.degraded else ""
        lines.append(f"{result.mode.name:<24}{cells}{result.p50_ms():>10.1f}{note}")
    return "\n".join(lines)
