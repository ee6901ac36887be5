"""python -m bench.faithfulness: the faithfulness score on the test set, and what it costs.

Starts an embedding service of its own (its Redis cache off, so every scoring embeds) in
.run/eval-faithfulness, and scores each triple of tests/data/faithfulness-eval.jsonl with the
query service's scorer through it, as the query path does. Prints the AUC of the score
(faithful against unfaithful answers), what was caught per kind of flaw, and the p50 time of the
scoring step with scoring on and off, measured side by side (alternating) in this one run.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench.faithfulness.evalset import Triple, auc, load_triples
from ragplane.cli.stack import Ports, Stack
from ragplane.query.backends import Backends
from ragplane.query.config import QuerySettings
from ragplane.query.dependencies import Dependencies
from ragplane.query.pipeline import QueryPipeline
from ragplane.query.quality.faithfulness import Faithfulness
from ragplane.query.wiring import build_faithfulness
from ragplane.runtime.resilience import Deadline

REPO = Path(__file__).resolve().parents[2]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.faithfulness", description=__doc__)
    parser.add_argument("--rounds", type=int, default=5, help="timed passes over the set")
    parser.add_argument("--run-dir", type=Path, default=REPO / ".run" / "eval-faithfulness")
    return parser.parse_args(argv)


def pipelines(settings: QuerySettings) -> tuple[QueryPipeline, QueryPipeline, Backends]:
    """Two pipelines over one embedding client: scoring on, and scoring off."""
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
    return on, off, backends


async def timed_score(pipeline: QueryPipeline, triple: Triple) -> tuple[Faithfulness, float]:
    started = time.perf_counter()
    faithfulness = await pipeline.score_text(triple.answer, triple.passages, Deadline(60.0))
    return faithfulness, (time.perf_counter() - started) * 1000


async def evaluate(settings: QuerySettings, triples: Sequence[Triple], rounds: int) -> None:
    on, off, backends = pipelines(settings)
    try:
        scores = {t.triple_id: (await timed_score(on, t))[0] for t in triples}
        on_ms: list[float] = []
        off_ms: list[float] = []
        for _ in range(rounds):
            for triple in triples:
                on_ms.append((await timed_score(on, triple))[1])
                off_ms.append((await timed_score(off, triple))[1])
    finally:
        await backends.close()
    report(triples, scores, on_ms, off_ms)


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


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    triples = load_triples()
    ports = Ports.kept_in(args.run_dir)
    # No embedding cache: every scoring pays for its embeddings, as a first query would.
    stack = Stack(args.run_dir, ports, REPO / ".bin", sys.executable, {"EMBEDDING_REDIS_URL": ""})
    stack.up(["embedding"], timeout_s=300, report=lambda line: print(line, file=sys.stderr))
    try:
        settings = QuerySettings(embedding_target=f"127.0.0.1:{ports.embedding}")
        asyncio.run(evaluate(settings, triples, args.rounds))
    finally:
        stack.down(report=lambda line: None)


if __name__ == "__main__":
    main()
