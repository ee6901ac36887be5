"""`ragplane`: ask questions, ingest files, run the local stack."""

from __future__ import annotations

import argparse
import os
import sys
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path

import grpc
from google.protobuf.json_format import MessageToJson
from tqdm import tqdm

from ragplane.cli import batch
from ragplane.cli.calls import DEFAULT_TENANT, fail, target
from ragplane.cli.documents import batches, document_id_for, find_files, read_text, select
from ragplane.cli.journal import IngestJournal, JournalBusy, text_digest
from ragplane.cli.stack import Ports, Replicas, Stack
from ragplane.v1 import common_pb2, query_pb2, query_pb2_grpc

# Exit status when another ingestion already writes the journal (EX_TEMPFAIL: try again later).
EXIT_JOURNAL_BUSY = 75


def quality_line(quality: query_pb2.AnswerQuality) -> str:
    method = query_pb2.FaithfulnessMethod.Name(quality.faithfulness_method)
    if quality.faithfulness_method == query_pb2.FAITHFULNESS_METHOD_NOT_SCORED:
        return f"faithfulness not scored ({quality.faithfulness_note})"
    unsupported = ", ".join(str(index + 1) for index in quality.unsupported_sentences)
    return (
        f"faithfulness {quality.faithfulness:.2f} "
        f"({method.removeprefix('FAITHFULNESS_METHOD_').lower()}"
        f"{'; unsupported sentences ' + unsupported if unsupported else ''}), "
        f"{quality.citation_coverage:.0%} of sentences cite a passage"
    )


def print_answer(response: query_pb2.QueryResponse) -> None:
    print(response.answer.strip() or "(empty answer)")
    if response.citations:
        print("\nSources:")
        for number, citation in enumerate(response.citations, start=1):
            print(
                f"  [{number}] {citation.document_id}"
                f"  (chunk {citation.chunk_id}, score {citation.score:.3f})"
            )
    for degradation in response.degradations:
        stage = common_pb2.Stage.Name(degradation.stage).removeprefix("STAGE_").lower()
        print(f"\nDegraded: {stage}: {degradation.reason}")
    stages = "  ".join(
        f"{common_pb2.Stage.Name(t.stage).removeprefix('STAGE_').lower()} {t.duration_ms:.0f} ms"
        for t in response.timings
    )
    print(f"\nTimings: {stages}  total {response.total_ms:.0f} ms")
    print(f"Quality: {quality_line(response.quality)}")
    if response.provider:
        usage = response.usage
        print(
            f"Model: {response.model} via {response.provider}, "
            f"{usage.input_tokens} tokens in, {usage.output_tokens} out"
        )
    print(f"Request id: {response.request_id}")


def ask(args: argparse.Namespace) -> int:
    request = query_pb2.QueryRequest(tenant=args.tenant, query=args.question, top_k=args.top_k)
    if args.alpha is not None:
        request.alpha = args.alpha
    with grpc.insecure_channel(target(args)) as channel:
        try:
            response = query_pb2_grpc.QueryServiceStub(channel).Query(request, timeout=args.timeout)
        except grpc.RpcError as error:
            return fail(error)
    if args.json:
        print(MessageToJson(response))
    else:
        print_answer(response)
    return 0


class _IngestProgress:
    """Counts what the service reported, shows it on a progress bar, and journals each document
    the service acknowledged."""

    def __init__(
        self, total: int, tenant: str, journal: IngestJournal | None, digests: dict[str, str]
    ) -> None:
        self.bar = tqdm(total=total, unit="doc", desc=f"ingesting into {tenant}")
        self.failures: list[query_pb2.DocumentResult] = []
        self.indexed = 0
        self.chunks = 0
        self._journal = journal
        self._digests = digests

    def record(self, response: query_pb2.IngestResponse) -> None:
        for result in response.results:
            self.chunks += result.chunks
            if result.status != query_pb2.DOCUMENT_STATUS_INDEXED:
                self.failures.append(result)
                continue
            self.indexed += 1
            if self._journal is not None:
                digest = self._digests[result.document_id]
                self._journal.record(result.document_id, digest, result.chunks)
        self.bar.update(len(response.results))
        self.bar.set_postfix(chunks=self.chunks, failed=len(self.failures))


def _pending(
    files: list[Path], base: Path, journal: IngestJournal | None
) -> tuple[list[Path], dict[str, str]]:
    """The files still to send, and the digest of each one's text by document id."""
    pending: list[Path] = []
    digests: dict[str, str] = {}
    blank = done = 0
    for path in files:
        text = read_text(path)
        # A blank file would fail alone at the service; leave it out up front.
        if not text.strip():
            blank += 1
            continue
        document_id, digest = document_id_for(path, base), text_digest(text)
        if journal is not None and journal.holds(document_id, digest):
            done += 1
            continue
        pending.append(path)
        digests[document_id] = digest
    if blank:
        print(f"skipping {blank} empty file(s)", file=sys.stderr)
    if done:
        print(f"resuming: {done} of {len(files) - blank} documents were ingested before")
    return pending, digests


def ingest(args: argparse.Namespace) -> int:
    root = Path(args.path)
    if not root.exists():
        print(f"error: {root} does not exist", file=sys.stderr)
        return 2
    base = root if root.is_dir() else root.parent
    try:
        journal = IngestJournal(Path(args.journal), args.tenant) if args.journal else None
    except JournalBusy as busy:
        print(f"{busy}; it goes on", file=sys.stderr)
        return EXIT_JOURNAL_BUSY
    files, digests = _pending(select(find_files(root), base, args.only), base, journal)
    progress = _IngestProgress(len(files), args.tenant, journal, digests)
    try:
        _send(args, files, base, progress)
    except grpc.RpcError as error:
        return fail(error)
    except KeyboardInterrupt:
        print(
            f"\ninterrupted after {progress.indexed} documents; "
            + ("run the same command again to resume" if journal else "nothing is journaled"),
            file=sys.stderr,
        )
        return 130
    finally:
        progress.bar.close()
        if journal is not None:
            journal.close()
    print(f"indexed {progress.indexed} of {len(files)} documents ({progress.chunks} chunks)")
    for failure in progress.failures:
        print(f"  failed: {failure.document_id}: {failure.error}", file=sys.stderr)
    return 1 if progress.failures else 0


def _send(
    args: argparse.Namespace, files: list[Path], base: Path, progress: _IngestProgress
) -> None:
    options = [("grpc.max_send_message_length", 64 * 1024 * 1024)]
    # Two calls in flight: the service chunks and stores one while it embeds the other.
    with (
        grpc.insecure_channel(target(args), options=options) as channel,
        ThreadPoolExecutor(max_workers=args.concurrency) as pool,
    ):
        stub = query_pb2_grpc.QueryServiceStub(channel)
        in_flight: set[Future[query_pb2.IngestResponse]] = set()
        try:
            for batch in batches(files, base, args.batch_documents, args.batch_chars):
                if len(in_flight) >= args.concurrency:
                    done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                    for call in done:
                        progress.record(call.result())
                request = query_pb2.IngestRequest(tenant=args.tenant, documents=batch)
                in_flight.add(pool.submit(stub.Ingest, request, timeout=args.timeout))
            for call in in_flight:
                progress.record(call.result())
        except KeyboardInterrupt:
            # Stop at once: closing the channel cancels the calls in flight; they are not
            # journaled, so they are sent again next time.
            pool.shutdown(wait=False, cancel_futures=True)
            channel.close()
            raise


def _stack(args: argparse.Namespace) -> Stack:
    replicas = Replicas(**args.replicas) if args.action == "up" and args.replicas else None
    return Stack(Path(args.run_dir), Ports.from_env(), Path(args.bin_dir), replicas=replicas)


def _replica_counts(text: str) -> dict[str, int]:
    try:
        return Replicas.counts(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def stack_up(args: argparse.Namespace) -> int:
    stack = _stack(args)
    print(f"starting the local stack in {stack.run_dir}")
    try:
        stack.up(timeout_s=args.timeout)
    except (RuntimeError, TimeoutError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"query service on 127.0.0.1:{stack.ports.query}; logs in {stack.run_dir / 'logs'}")
    return 0


def stack_scale(args: argparse.Namespace) -> int:
    stack = _stack(args)
    if not args.replicas:
        print("error: say how many replicas: --replicas embedding=4", file=sys.stderr)
        return 2
    try:
        for service, count in args.replicas.items():
            stack.scale(service, count, timeout_s=args.timeout)
    except (ValueError, RuntimeError, TimeoutError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def stack_down(args: argparse.Namespace) -> int:
    _stack(args).down()
    return 0


def stack_status(args: argparse.Namespace) -> int:
    states = _stack(args).status()
    for name, state in states.items():
        print(f"  {name:<13} {state}")
    return 0 if all(s.startswith("ready") for s in states.values()) else 1


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="ragplane", description=__doc__)
    root.add_argument(
        "--target", help="query service address (default 127.0.0.1:$QUERY_PORT or :50051)"
    )
    commands = root.add_subparsers(dest="command", required=True)

    ask_cmd = commands.add_parser("ask", help="ask a question over a tenant's documents")
    ask_cmd.add_argument("question")
    ask_cmd.add_argument("--tenant", default=DEFAULT_TENANT)
    ask_cmd.add_argument(
        "--top-k", type=int, default=0, help="passages to use (0: service default)"
    )
    ask_cmd.add_argument("--alpha", type=float, help="0 = keyword only, 1 = vector only")
    ask_cmd.add_argument("--timeout", type=float, default=120.0, help="deadline in seconds")
    ask_cmd.add_argument("--json", action="store_true", help="print the whole response as JSON")
    ask_cmd.set_defaults(handler=ask)

    ingest_cmd = commands.add_parser(
        "ingest", help="ingest a file or every text file under a folder"
    )
    ingest_cmd.add_argument("path")
    ingest_cmd.add_argument("--tenant", default=DEFAULT_TENANT)
    ingest_cmd.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="PREFIX",
        help="only the documents whose id (path under the folder) starts with PREFIX; repeatable",
    )
    ingest_cmd.add_argument("--batch-documents", type=int, default=16)
    ingest_cmd.add_argument("--batch-chars", type=int, default=400_000)
    ingest_cmd.add_argument("--concurrency", type=int, default=2, help="Ingest calls in flight")
    ingest_cmd.add_argument(
        "--timeout", type=float, default=600.0, help="deadline per batch, seconds"
    )
    ingest_cmd.add_argument(
        "--journal",
        help="file recording each acknowledged document; an interrupted run given the same "
        f"file resumes where it stopped (exit {EXIT_JOURNAL_BUSY} while another run writes it)",
    )
    ingest_cmd.set_defaults(handler=ingest)

    batch.add_commands(commands)

    stack_cmd = commands.add_parser("stack", help="run the local stack (development)")
    stack_cmd.add_argument("action", choices=["up", "down", "status", "scale"])
    stack_cmd.add_argument("--run-dir", default=os.environ.get("RAGPLANE_RUN_DIR", ".run"))
    stack_cmd.add_argument("--bin-dir", default=os.environ.get("RAGPLANE_BIN_DIR", ".bin"))
    stack_cmd.add_argument("--timeout", type=float, default=300.0)
    stack_cmd.add_argument(
        "--replicas",
        type=_replica_counts,
        default={},
        metavar="SERVICE=COUNT,...",
        help="up: run embedding, retrieval and generation as several replicas behind the "
        "stack's DNS server (e.g. embedding=3,retrieval=2); scale: change their number",
    )
    actions = {"up": stack_up, "down": stack_down, "status": stack_status, "scale": stack_scale}
    stack_cmd.set_defaults(handler=lambda a: actions[a.action](a))
    return root


def main() -> None:
    args = parser().parse_args()
    raise SystemExit(args.handler(args))
