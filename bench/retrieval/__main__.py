"""python -m bench.retrieval: retrieval quality and latency per search mode on a labelled set.

Scores nDCG@10 (graded), Recall@10, Recall@50 and MRR@10 (ir-measures) at the document level for
BM25 only, vector only, hybrid at several alphas and fusions, each document ranked by its best
chunk or by the sum of its chunks' scores (doc-sum: the Search option DOCUMENT_RANKING_CHUNK_SUM),
and hybrid + cross-encoder rerank when a reranker is given (--reranker DIR), over the
hand-labelled questions in tests/data/retrieval-eval.jsonl, for all of them and for the
low-overlap ones, with the p50 latency of one Search call per mode (the query vector is computed
once beforehand, so embedding time is not in it).

The chunks are the whole demo corpus (every document of scripts/fetch-corpus.sh with text):
1. the `make run` stack's tenant `demo`, when that stack is up and the tenant holds every one
   of them: its Weaviate and embedding service are used, with a retrieval service of our own
   beside them (ours has the reranker configured);
2. otherwise a stack of our own in .run/eval-retrieval (ports kept between runs), whose tenant
   `eval` gets the documents it does not hold yet.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import grpc

from bench.retrieval.scoring import (
    MODES,
    LabelledQuery,
    Mode,
    ModeResult,
    documents_in_order,
    load_queries,
    missing_evidence,
    table,
)
from ragplane.cli.documents import batches
from ragplane.cli.stack import Ports, Stack, free_ports, grpc_serving
from ragplane.v1 import (
    embedding_pb2,
    embedding_pb2_grpc,
    query_pb2,
    query_pb2_grpc,
    retrieval_pb2,
    retrieval_pb2_grpc,
)

REPO = Path(__file__).resolve().parents[2]
LABELS = REPO / "tests" / "data" / "retrieval-eval.jsonl"
DISTRACTOR_FOLDERS = ("tutorial/", "howto/", "reference/", "faq/")


@dataclass
class Target:
    description: str
    tenant: str
    retrieval: retrieval_pb2_grpc.RetrievalServiceStub
    embedding: embedding_pb2_grpc.EmbeddingServiceStub


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.retrieval", description=__doc__)
    parser.add_argument(
        "--chunks", type=int, default=100, help="chunks fetched per search (Recall@50 needs many)"
    )
    parser.add_argument("--rerank-candidates", type=int, default=100)
    parser.add_argument("--run-dir", type=Path, default=REPO / ".run" / "eval-retrieval")
    parser.add_argument("--reuse-tenant", default="demo", help="tenant of the `make run` stack")
    parser.add_argument("--tenant", default="eval", help="tenant of the bench's own stack")
    parser.add_argument("--reranker", type=Path, default=None, help="cross-encoder directory")
    parser.add_argument("--reports", type=Path, default=REPO / "reports" / "eval-retrieval")
    return parser.parse_args(argv)


def fetch_corpus() -> Path:
    script = REPO / "scripts" / "fetch-corpus.sh"
    out = subprocess.run([str(script)], check=True, capture_output=True, text=True)
    return Path(out.stdout.strip())


def _channel(port: int) -> grpc.Channel:
    options = [("grpc.max_send_message_length", 64 * 1024 * 1024)]
    return grpc.insecure_channel(f"127.0.0.1:{port}", options=options)


def _holds_all(
    retrieval: retrieval_pb2_grpc.RetrievalServiceStub, tenant: str, ids: list[str]
) -> bool:
    try:
        counts = retrieval.CountChunks(
            retrieval_pb2.CountChunksRequest(tenant=tenant, document_ids=ids), timeout=30
        )
    except grpc.RpcError:
        return False  # not running, no such tenant, or an older service without CountChunks
    return all(counts.per_document[document_id] > 0 for document_id in ids)


def _reranker_env(reranker: Path | None) -> dict[str, str]:
    if reranker is None:
        return {}
    # A generous budget: this measures what rerank achieves, and reports what it costs.
    return {"RETRIEVAL_RERANKER_PATH": str(reranker), "RETRIEVAL_RERANK_BUDGET_MS": "60000"}


@contextmanager
def reused_stack(
    args: argparse.Namespace, reranker: Path | None, documents: list[str]
) -> Iterator[Target | None]:
    ports = Ports.from_env()
    if not (grpc_serving(ports.retrieval)() and grpc_serving(ports.embedding)()):
        yield None
        return
    with _channel(ports.retrieval) as channel:
        if not _holds_all(
            retrieval_pb2_grpc.RetrievalServiceStub(channel), args.reuse_tenant, documents
        ):
            yield None
            return
    retrieval_port, metrics_port = free_ports(2)
    own = replace(ports, retrieval=retrieval_port, retrieval_metrics=metrics_port)
    stack = Stack(
        args.run_dir / "beside-make-run",
        own,
        REPO / ".bin",
        sys.executable,
        _reranker_env(reranker),
    )
    stack.up(["retrieval"], timeout_s=300, report=lambda line: print(line, file=sys.stderr))
    try:
        with _channel(own.retrieval) as retrieval, _channel(own.embedding) as embedding:
            yield Target(
                f"`make run` stack, tenant {args.reuse_tenant!r} (the whole demo corpus)",
                args.reuse_tenant,
                retrieval_pb2_grpc.RetrievalServiceStub(retrieval),
                embedding_pb2_grpc.EmbeddingServiceStub(embedding),
            )
    finally:
        stack.stop("retrieval")


def corpus_files(corpus: Path) -> list[Path]:
    """Every document of the demo corpus that has text: what `make run` ingests."""
    return sorted(p for p in corpus.rglob("*.txt") if p.read_text(errors="replace").strip())


def ingest_missing(
    query: query_pb2_grpc.QueryServiceStub,
    retrieval: retrieval_pb2_grpc.RetrievalServiceStub,
    tenant: str,
    files: list[Path],
    corpus: Path,
) -> int:
    ids = [str(p.relative_to(corpus)) for p in files]
    counts: dict[str, int] = {}
    try:
        request = retrieval_pb2.CountChunksRequest(tenant=tenant, document_ids=ids)
        counts = dict(retrieval.CountChunks(request, timeout=60).per_document)
    except grpc.RpcError:
        pass  # no tenant yet: everything is missing
    missing = [p for p, d in zip(files, ids, strict=True) if not counts.get(d)]
    for n, batch in enumerate(batches(missing, corpus, 16, 400_000), start=1):
        response = query.Ingest(
            query_pb2.IngestRequest(tenant=tenant, documents=batch), timeout=900
        )
        failed = [r for r in response.results if r.status != query_pb2.DOCUMENT_STATUS_INDEXED]
        if failed:
            raise SystemExit(f"ingest failed: {failed}")
        print(f"  ingested batch {n} ({len(batch)} documents)", file=sys.stderr)
    return len(missing)


@contextmanager
def own_stack(
    args: argparse.Namespace, reranker: Path | None, corpus: Path, files: list[Path]
) -> Iterator[Target]:
    ports = Ports.kept_in(args.run_dir)
    stack = Stack(args.run_dir, ports, REPO / ".bin", sys.executable, _reranker_env(reranker))
    names = ["redis", "weaviate", "embedding", "retrieval", "query"]
    stack.up(names, timeout_s=600, report=lambda line: print(line, file=sys.stderr))
    try:
        with (
            _channel(ports.retrieval) as r,
            _channel(ports.embedding) as e,
            _channel(ports.query) as q,
        ):
            retrieval = retrieval_pb2_grpc.RetrievalServiceStub(r)
            started = time.monotonic()
            added = ingest_missing(
                query_pb2_grpc.QueryServiceStub(q), retrieval, args.tenant, files, corpus
            )
            print(
                f"  {added} documents ingested in {time.monotonic() - started:.0f} s",
                file=sys.stderr,
            )
            yield Target(
                f"own stack in {args.run_dir}, tenant {args.tenant!r}: all {len(files)} "
                "documents of the demo corpus",
                args.tenant,
                retrieval,
                embedding_pb2_grpc.EmbeddingServiceStub(e),
            )
    finally:
        stack.down(report=lambda line: None)


def run_mode(
    target: Target,
    mode: Mode,
    queries: Sequence[LabelledQuery],
    vectors: dict[str, list[float]],
    args: argparse.Namespace,
) -> ModeResult:
    result = ModeResult(mode)
    for n, query in enumerate([queries[0], *queries]):
        request = retrieval_pb2.SearchRequest(
            tenant=target.tenant,
            query_text=query.question,
            query_vector=vectors[query.query_id] if mode.use_vector else [],
            top_k=args.chunks,
            alpha=mode.alpha,
            fusion_type=mode.fusion,
            rerank=retrieval_pb2.RERANK_MODE_ON if mode.rerank else retrieval_pb2.RERANK_MODE_OFF,
            rerank_candidates=args.rerank_candidates,
            document_ranking=mode.document_ranking,
        )
        started = time.perf_counter()
        response = target.retrieval.Search(request, timeout=300)
        elapsed_ms = (time.perf_counter() - started) * 1000
        if n == 0:
            continue  # warm-up call, not counted
        result.latencies_ms.append(elapsed_ms)
        result.rankings[query.query_id] = documents_in_order(response.hits)
        result.degraded += bool(response.degradations)
    return result


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    corpus = fetch_corpus()
    queries = load_queries(LABELS)
    problems = missing_evidence(queries, corpus)
    if problems:
        raise SystemExit("labelled set does not match the corpus:\n" + "\n".join(problems))
    files = corpus_files(corpus)
    documents = [str(p.relative_to(corpus)) for p in files]
    reranker = args.reranker
    with ExitStack() as stacks:
        reused = stacks.enter_context(reused_stack(args, reranker, documents))
        target = reused or stacks.enter_context(own_stack(args, reranker, corpus, files))
        texts = [q.question for q in queries]
        embedded = target.embedding.Embed(embedding_pb2.EmbedRequest(texts=texts), timeout=300)
        vectors = {
            q.query_id: list(e.values) for q, e in zip(queries, embedded.embeddings, strict=True)
        }
        modes = [m for m in MODES if reranker is not None or not m.rerank]
        results = [run_mode(target, mode, queries, vectors, args) for mode in modes]
    report(args, target, queries, results, reranker)


def report(
    args: argparse.Namespace,
    target: Target,
    queries: Sequence[LabelledQuery],
    results: list[ModeResult],
    reranker: Path | None,
) -> None:
    print(f"\nretrieval eval: {len(queries)} labelled questions, document level")
    print(f"data: {target.description}")
    print(f"reranker: {reranker or 'none given (--reranker DIR measures one)'}")
    print(
        f"each search fetches {args.chunks} chunks (rerank: {args.rerank_candidates} candidates)\n"
    )
    low_overlap = [q for q in queries if q.low_overlap]
    print(table(results, queries))
    print(f"\nthe {len(low_overlap)} low-overlap questions (same searches):\n")
    print(table(results, low_overlap))
    args.reports.mkdir(parents=True, exist_ok=True)
    summary = {
        "data": target.description,
        "reranker": str(reranker),
        "modes": {
            r.mode.name: {
                "all": r.scores(queries),
                "low_overlap": r.scores(low_overlap),
                "p50_ms": r.p50_ms(),
                "degraded": r.degraded,
            }
            for r in results
        },
    }
    path = args.reports / "summary.json"
    path.write_text(json.dumps(summary, indent=2))
    print(f"\nsummary: {path}")


if __name__ == "__main__":
    main()
