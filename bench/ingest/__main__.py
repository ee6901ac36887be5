"""python -m bench.ingest: ingestion served vs the embedding backend's in-process limit.

1. Chunks a fixed slice of the demo corpus with the query service's own chunker.
2. The limit: the embedding service's default backend encodes a fixed sample of those chunks
   in-process, nothing else running, at batch 32 and 64 (one pass each after a warm-up).
3. Served: a stack of our own in .run/bench-ingest ingests the slice into a scratch tenant
   through the query service's Ingest, the way `ragplane ingest` sends it; then it is stopped.
4. Prints both in chunks per second and served/limit (issue 14 asks for at least 0.8).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from bench.ingest import inprocess, served
from bench.ingest.corpus import SLICE_FOLDERS, load_slice
from bench.machine import this_machine


def corpus_root() -> Path:
    fetched = subprocess.run(
        [str(served.REPO / "scripts" / "fetch-corpus.sh")],
        check=True,
        capture_output=True,
        text=True,
    )
    return Path(fetched.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, help="the corpus folder (default: fetch-corpus.sh)")
    args = parser.parse_args()
    root: Path = args.corpus or corpus_root()
    corpus = load_slice(root)
    print(
        f"slice: {len(corpus.files)} documents under {', '.join(SLICE_FOLDERS)} "
        f"({corpus.characters:,} characters), {len(corpus.chunk_texts):,} chunks "
        "(the query service's chunker, default settings)",
        flush=True,
    )

    print("limit: in-process, nothing else running ...", flush=True)
    limit = inprocess.measure(corpus.chunk_texts)
    for timing in limit.timings:
        print(f"  {limit.backend} batch {timing.batch_size:>3}: {timing.texts_per_s:8.1f} chunks/s")

    print("served: own stack in .run/bench-ingest, Ingest as `ragplane ingest` sends it ...")
    with served.own_stack() as stack:
        served.start_from_scratch(stack)
        result = served.ingest(stack, corpus)

    best = limit.best
    ratio = result.chunks_per_s / best.texts_per_s
    print()
    print(f"machine: {this_machine().describe()}")
    print(
        f"documents: {result.documents}   chunks: {result.chunks:,}   Ingest calls: {result.calls}"
    )
    if result.chunks != len(corpus.chunk_texts):
        print(
            f"  note: the service stored {result.chunks} chunks, the local chunker made "
            f"{len(corpus.chunk_texts)}"
        )
    print(f"{'':<8}{'chunks/s':>10}  how")
    print(
        f"{'served':<8}{result.chunks_per_s:>10.1f}  Ingest, {served.BATCH_DOCUMENTS} documents "
        f"per call, {served.IN_FLIGHT} in flight, {result.seconds:.1f} s for all chunks"
    )
    print(
        f"{'limit':<8}{best.texts_per_s:>10.1f}  {limit.backend} on {limit.device}, batch "
        f"{best.batch_size}, in-process, on a fixed sample of {limit.sample} of the chunks"
    )
    print(f"served/limit: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
