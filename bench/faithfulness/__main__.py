"""python -m bench.faithfulness: the faithfulness score on the test set, and what it costs.

Starts an embedding service of its own (its Redis cache off, so every scoring embeds) in
.run/eval-faithfulness, and scores each triple of tests/data/faithfulness-eval.jsonl with the
query service's scorer through it, as the query path does. Prints the AUC of the score
(faithful against unfaithful answers), what was caught per kind of flaw, and the p50 time of the
scoring step with scoring on and off, measured side by side (alternating) in this one run.

With --judge it also starts the LLM server and a generation service, and scores each triple
once more with the LLM judge (QUERY_FAITHFULNESS_JUDGE=on, quality/judge.py): the judge's AUC
beside the evidence score's, how many answers it judged (the others fell back to evidence), its
p50 time and its tokens.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from bench.faithfulness.evalset import Triple, auc, load_triples
from ragplane.cli.stack import Ports, Stack
from ragplane.query.backends import Backends
from ragplane.query.config import QuerySettings
from ragplane.query.dependencies import Dependencies
from ragplane.query.domain import Passage
from ragplane.query.pipeline import QueryPipeline
from ragplane.query.quality.faithfulness import Faithfulness, Method
from ragplane.query.quality.judge import FaithfulnessJudge
from ragplane.query.wiring import build_faithfulness, build_judge
from ragplane.runtime.resilience import Deadline

REPO = Path(__file__).resolve().parents[2]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.faithfulness", description=__doc__)
    parser.add_argument("--rounds", type=int, default=5, help="timed passes over the set")
    parser.add_argument("--run-dir", type=Path, default=REPO / ".run" / "eval-faithfulness")
    parser.add_argument(
        "--judge", action="store_true", help="also score with the LLM judge (minutes on CPU)"
    )
    return parser.parse_args(argv)


@dataclass(frozen=True)
class Scorers:
    """Pipelines over one set of clients: scoring on and off; the LLM judge when it is on."""

    on: QueryPipeline
    off: QueryPipeline
    judge: FaithfulnessJudge | None
    backends: Backends


def scorers(settings: QuerySettings) -> Scorers:
    backends = Backends(
        settings.embedding_target,
        settings.retrieval_target,
        settings.generation_target,
        settings.max_message_bytes,
        document_ranking=settings.document_ranking,
    )
    dependencies = Dependencies(backends, settings, settings.embed_timeout_s)
    on = QueryPipeline(dependencies, settings, build_faithfulness(settings, dependencies))
    off = QueryPipeline(dependencies, settings, None)
    return Scorers(on, off, build_judge(settings, dependencies), backends)


async def timed_score(pipeline: QueryPipeline, triple: Triple) -> tuple[Faithfulness, float]:
    started = time.perf_counter()
    faithfulness = await pipeline.score_text(triple.answer, triple.passages, Deadline(60.0))
    return faithfulness, (time.perf_counter() - started) * 1000


async def judged_score(
    judge: FaithfulnessJudge, evidence: QueryPipeline, triple: Triple
) -> tuple[Faithfulness, float]:
    """The judge's score, as the query path asks for it (the evidence score its fallback)."""
    passages = [
        Passage(f"passage-{n}", f"passage-{n}#0", text, 0.0)
        for n, text in enumerate(triple.passages, start=1)
    ]
    deadline = Deadline(120.0)
    fallback = partial(evidence.score_text, triple.answer, triple.passages, deadline)
    started = time.perf_counter()
    faithfulness = await judge.score("eval", triple.answer, passages, 60.0, fallback)
    return faithfulness, (time.perf_counter() - started) * 1000


async def evaluate(settings: QuerySettings, triples: Sequence[Triple], rounds: int) -> None:
    parts = scorers(settings)
    on, off, judge = parts.on, parts.off, parts.judge
    try:
        scores = {t.triple_id: (await timed_score(on, t))[0] for t in triples}
        on_ms: list[float] = []
        off_ms: list[float] = []
        for _ in range(rounds):
            for triple in triples:
                on_ms.append((await timed_score(on, triple))[1])
                off_ms.append((await timed_score(off, triple))[1])
        judged = [await judged_score(judge, on, t) for t in triples] if judge else []
    finally:
        await parts.backends.close()
    report(triples, scores, on_ms, off_ms)
    if judged:
        report_judge(triples, judged)


def report(
    triples: Sequence[Triple],
    scores: dict[str, Faithfulness],
    on_ms: Sequence[float],
    off_ms: Sequence[float],
) -> None:
    faithful = [scores[t.triple_id].score for t in triples if t.faithful]
    unfaithful = [scores[t.triple_id].score for t in triples if not t.faithful]
    print(f"triples: {len(faithful)} faithful, {len(unfaithful)} with an unsupported claim")
    print(f"AUC (faithful above unfaithful): {auc(faithful, unfaithful):.3f}")
    print(f"faithful answers scored 1: {sum(s == 1 for s in faithful)}/{len(faithful)}")
    for flaw in sorted({t.flaw for t in triples if t.flaw}):
        flawed = [t for t in triples if t.flaw == flaw]
        caught = sum(scores[t.triple_id].score < 1 for t in flawed)
        print(f"unsupported {flaw}: caught {caught}/{len(flawed)}")
    for triple in triples:
        got = scores[triple.triple_id]
        if got.score < 1 if triple.faithful else got.score == 1:
            print(f"  missed {triple.triple_id} ({triple.flaw or 'faithful'}): {got.score:.2f}")
    p50_on, p50_off = statistics.median(on_ms), statistics.median(off_ms)
    print(
        f"scoring step p50, {len(on_ms)} answers each, alternating: on {p50_on:.1f} ms, "
        f"off {p50_off:.3f} ms; added {p50_on - p50_off:.1f} ms "
        f"(p90 on {statistics.quantiles(on_ms, n=10)[-1]:.1f} ms)"
    )


def report_judge(triples: Sequence[Triple], judged: Sequence[tuple[Faithfulness, float]]) -> None:
    faithful = [score.score for t, (score, _) in zip(triples, judged, strict=True) if t.faithful]
    unfaithful = [
        score.score for t, (score, _) in zip(triples, judged, strict=True) if not t.faithful
    ]
    by_judge = [(score, ms) for score, ms in judged if score.method is Method.JUDGE]
    print(f"LLM judge: judged {len(by_judge)}/{len(judged)} (the others: the evidence score)")
    print(f"LLM judge AUC (fallbacks included): {auc(faithful, unfaithful):.3f}")
    if by_judge:
        tokens_in = sum(score.judge_usage.input_tokens for score, _ in by_judge)
        tokens_out = sum(score.judge_usage.output_tokens for score, _ in by_judge)
        print(
            f"LLM judge p50 {statistics.median(ms for _, ms in by_judge):.0f} ms an answer; "
            f"tokens {tokens_in} in, {tokens_out} out"
        )
    for reason in sorted({score.note for score, _ in judged if score.method is not Method.JUDGE}):
        print(f"  fell back: {reason[:120]}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    triples = load_triples()
    ports = Ports.kept_in(args.run_dir)
    # No caches: every scoring pays for its embeddings, as a first query would.
    stack = Stack(
        args.run_dir,
        ports,
        REPO / ".bin",
        sys.executable,
        {"EMBEDDING_REDIS_URL": "", "GENERATION_REDIS_URL": ""},
    )
    names = ["embedding", "llm", "generation"] if args.judge else ["embedding"]
    stack.up(names, timeout_s=300, report=lambda line: print(line, file=sys.stderr))
    try:
        settings = QuerySettings(
            embedding_target=f"127.0.0.1:{ports.embedding}",
            generation_target=f"127.0.0.1:{ports.generation}",
            faithfulness_judge="on" if args.judge else "off",
        )
        asyncio.run(evaluate(settings, triples, args.rounds))
    finally:
        stack.down(report=lambda line: None)


if __name__ == "__main__":
    main()
