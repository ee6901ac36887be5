"""The labelled query set, the search modes compared, and their document-level scores."""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import ir_measures
from ir_measures import RR, R, nDCG

from ragplane.v1 import retrieval_pb2

# Graded judgements: nDCG uses the grades; Recall and MRR count grade 1 (partly answers) too.
MEASURES = {
    "nDCG@10": nDCG @ 10,
    "Recall@10": R(rel=1) @ 10,
    "Recall@50": R(rel=1) @ 50,
    "MRR@10": RR(rel=1) @ 10,
}
ANSWERS = 2  # the grade of a document that answers the question; 1 answers it partly

# A reST heading (a line underlined, maybe overlined, with one punctuation character repeated)
# and the markup kept as its text (:mod:`venv` -> venv); words are compared after both.
_HEADING = re.compile(r"^[ \t]*(\S[^\n]*)\n([=\-~^*#+\"'`])\2{2,}[ \t]*$", re.MULTILINE)
_MARKUP = re.compile(r":[a-z:]+:`!?~?([^`<]*?)\s*(?:<[^>]*>)?`")
_WORD = re.compile(r"[a-z0-9]+")
_STOP_WORDS = frozenset(
    _WORD.findall(
        """a an the and or but if then else of to in on at by for with without from into onto
        over under about as is are was were be been being do does did doing done have has had i
        me my we our you your it its this that these those there here what which who whom whose
        when where why how can could should would will shall may might must not no than so such
        too very just only also any some each every all both either neither one ones get got make
        makes use using used way ways out"""
    )
)


@dataclass(frozen=True)
class LabelledQuery:
    query_id: str
    question: str
    # Relevant document id -> grade (2 answers the question, 1 partly).
    grades: Mapping[str, int]
    # Relevant document id -> a phrase of the answer that the document contains.
    evidence: Mapping[str, str]
    # Written without the words of the title and headings of the documents that answer it.
    low_overlap: bool


def load_queries(path: Path) -> list[LabelledQuery]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [
        LabelledQuery(
            row["id"],
            row["question"],
            {document: label["grade"] for document, label in row["relevant"].items()},
            {document: label["evidence"] for document, label in row["relevant"].items()},
            row["low_overlap"],
        )
        for row in rows
    ]


def content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(_MARKUP.sub(r"\1", text).lower()) if len(w) >= 3} - _STOP_WORDS


def _same_word(a: str, b: str) -> bool:
    """One word is the other's prefix (sort, sorting), or they share five letters (creating,
    creation): strict on purpose, so a low-overlap question cannot lean on a variant."""
    shorter, longer = sorted((a, b), key=len)
    return longer.startswith(shorter) or (len(shorter) >= 5 and longer[:5] == shorter[:5])


def heading_words(document: Path) -> set[str]:
    """Content words of a document's headings (its title first) and of its file name."""
    text = document.read_text(errors="replace")
    headings = " ".join(match.group(1) for match in _HEADING.finditer(text))
    return content_words(headings) | content_words(document.name.removesuffix(".rst.txt"))


def shared_heading_words(query: LabelledQuery, corpus: Path) -> set[str]:
    """Words of the question that the headings of a document answering it also use."""
    question = content_words(query.question)
    return {
        word
        for document, grade in query.grades.items()
        if grade == ANSWERS
        for heading in heading_words(corpus / document)
        for word in question
        if _same_word(word, heading)
    }


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
    document_ranking: retrieval_pb2.DocumentRanking.ValueType = (
        retrieval_pb2.DOCUMENT_RANKING_BEST_CHUNK
    )


_CHUNK_SUM = retrieval_pb2.DOCUMENT_RANKING_CHUNK_SUM
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
    # Documents ranked by the sum of their chunks' scores among the candidates (the service's
    # RETRIEVAL_DOCUMENT_CANDIDATES, at least --chunks), instead of by their best chunk.
    Mode("bm25 doc-sum", use_vector=False, document_ranking=_CHUNK_SUM),
    Mode("vector doc-sum", use_vector=True, alpha=1.0, document_ranking=_CHUNK_SUM),
    Mode("hybrid a=0.75 doc-sum", use_vector=True, alpha=0.75, document_ranking=_CHUNK_SUM),
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
        qrels = {q.query_id: dict(q.grades) for q in queries}
        # ir-measures ranks by score: give the n-th document the score -n.
        run = {
            query_id: {document: -float(rank) for rank, document in enumerate(documents)}
            for query_id, documents in self.rankings.items()
            if query_id in qrels
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
