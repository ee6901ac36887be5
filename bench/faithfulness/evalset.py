"""The faithfulness test set (tests/data/faithfulness-eval.jsonl) and how a score is judged on it.

Each line is a (question, passages, answer) triple written for the purpose: the faithful
answer of each question paraphrases its passages with [n] citations, its twin makes one
unsupported claim (a changed number, a changed name, or an invented step), flagged in "flaw".
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

EVAL_SET = Path(__file__).resolve().parents[2] / "tests" / "data" / "faithfulness-eval.jsonl"


@dataclass(frozen=True)
class Triple:
    triple_id: str
    question: str
    passages: tuple[str, ...]
    answer: str
    faithful: bool
    # "number", "name" or "step" for an unfaithful answer; empty for a faithful one.
    flaw: str


def load_triples(path: Path = EVAL_SET) -> list[Triple]:
    triples = []
    for line in path.read_text().splitlines():
        row = json.loads(line)
        triples.append(
            Triple(
                row["id"],
                row["question"],
                tuple(row["passages"]),
                row["answer"],
                row["faithful"],
                row["flaw"],
            )
        )
    return triples


def auc(faithful: Sequence[float], unfaithful: Sequence[float]) -> float:
    """Probability that a faithful answer scores above an unfaithful one (ties count half)."""
    pairs = [(f > u) + 0.5 * (f == u) for f in faithful for u in unfaithful]
    return sum(pairs) / len(pairs)
