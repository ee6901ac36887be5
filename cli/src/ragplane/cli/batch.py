"""`ragplane batch`: submit a JSONL file of questions, follow the batch, fetch its results."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, TypeVar

import grpc
from google.protobuf.json_format import MessageToDict, Parse, ParseError
from google.protobuf.message import Message
from tqdm import tqdm

from ragplane.cli.calls import DEFAULT_TENANT, fail, target
from ragplane.v1 import query_pb2, query_pb2_grpc

_M = TypeVar("_M", bound=Message)
_FINISHED = (query_pb2.BATCH_STATE_DONE, query_pb2.BATCH_STATE_CANCELLED)


def read_lines(path: Path, kind: type[_M]) -> list[_M]:
    """One message per non-blank line, as JSON: {"query": "...", "topK": 3, ...} for a
    QueryRequest, {"documentId": "...", "text": "..."} for a Document."""
    messages = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            messages.append(Parse(line, kind()))
        except ParseError as error:
            raise SystemExit(f"{path}:{number}: not a {kind.__name__}: {error}") from error
    return messages


def _call(args: argparse.Namespace, method: str, request: Any) -> Any:
    with grpc.insecure_channel(target(args)) as channel:
        stub = query_pb2_grpc.QueryServiceStub(channel)
        return getattr(stub, method)(request, timeout=args.timeout)


def submit(args: argparse.Namespace) -> int:
    request = query_pb2.SubmitBatchRequest(tenant=args.tenant)
    if args.documents:
        request.documents.extend(read_lines(Path(args.file), query_pb2.Document))
    else:
        request.questions.extend(read_lines(Path(args.file), query_pb2.QueryRequest))
    try:
        response = _call(args, "SubmitBatch", request)
    except grpc.RpcError as error:
        return fail(error)
    print(f"{response.items} items queued", file=sys.stderr)
    print(response.batch_id)
    return 0


def _get(args: argparse.Namespace, results: bool = False) -> query_pb2.GetBatchResponse:
    request = query_pb2.GetBatchRequest(
        tenant=args.tenant, batch_id=args.batch_id, include_results=results
    )
    response: query_pb2.GetBatchResponse = _call(args, "GetBatch", request)
    return response


def _describe(batch: query_pb2.GetBatchResponse) -> str:
    state = query_pb2.BatchState.Name(batch.state).removeprefix("BATCH_STATE_").lower()
    p = batch.progress
    text = (
        f"{state}: {p.done} done, {p.failed} failed, {p.running} running, {p.queued} queued"
        + (f", {p.cancelled} cancelled" if p.cancelled else "")
        + f"; ${batch.cost_usd:.6f} (saved ${batch.saved_usd:.6f})"
    )
    return text + (f"; paused: {batch.paused_reason}" if batch.paused_reason else "")


def status(args: argparse.Namespace) -> int:
    """A progress bar of the batch; with --follow, kept up to date until the batch ends."""
    try:
        batch = _get(args)
        with tqdm(total=batch.progress.total, unit="q", file=sys.stderr) as bar:
            while True:
                bar.n = batch.progress.done + batch.progress.failed
                bar.set_postfix_str(f"eta {batch.progress.eta_s:.0f} s")
                bar.refresh()
                if not args.follow or batch.state in _FINISHED:
                    break
                time.sleep(args.interval)
                batch = _get(args)
    except grpc.RpcError as error:
        return fail(error)
    print(_describe(batch))
    return 0


def results(args: argparse.Namespace) -> int:
    """The results so far as JSONL on stdout, one BatchItemResult per line."""
    try:
        batch = _get(args, results=True)
    except grpc.RpcError as error:
        return fail(error)
    for result in batch.results:
        print(json.dumps(MessageToDict(result), separators=(",", ":")))
    print(_describe(batch), file=sys.stderr)
    return 0


def cancel(args: argparse.Namespace) -> int:
    request = query_pb2.CancelBatchRequest(tenant=args.tenant, batch_id=args.batch_id)
    try:
        _call(args, "CancelBatch", request)
        print(_describe(_get(args)))
    except grpc.RpcError as error:
        return fail(error)
    return 0


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    batch_cmd = commands.add_parser(
        "batch",
        help="answer many questions (or ingest documents) later, cheaper (README, Batch mode)",
    )
    actions = batch_cmd.add_subparsers(dest="action", required=True)
    submit_cmd = actions.add_parser(
        "submit", help='queue a JSONL file of questions ({"query": ...} per line); prints the id'
    )
    submit_cmd.add_argument("file")
    submit_cmd.add_argument(
        "--documents",
        action="store_true",
        help='lines are documents to ingest ({"documentId": ...})',
    )
    submit_cmd.set_defaults(handler=submit)
    status_cmd = actions.add_parser("status", help="the batch's progress")
    status_cmd.add_argument("batch_id")
    status_cmd.add_argument("--follow", action="store_true", help="update until it finishes")
    status_cmd.add_argument("--interval", type=float, default=2.0, help="seconds between updates")
    status_cmd.set_defaults(handler=status)
    results_cmd = actions.add_parser("results", help="the results so far, as JSONL")
    results_cmd.add_argument("batch_id")
    results_cmd.set_defaults(handler=results)
    cancel_cmd = actions.add_parser("cancel", help="stop the questions not yet answered")
    cancel_cmd.add_argument("batch_id")
    cancel_cmd.set_defaults(handler=cancel)
    for action in (submit_cmd, status_cmd, results_cmd, cancel_cmd):
        action.add_argument("--tenant", default=DEFAULT_TENANT)
        action.add_argument("--timeout", type=float, default=60.0, help="deadline per call, s")
