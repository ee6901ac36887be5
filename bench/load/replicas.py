"""`make load`, with replicas: Embed throughput over 1 and then 3 embedding replicas, side by side.

One stack of its own (CoreDNS and the embedding service, on free ports) starts with one
embedding replica; a steady closed-loop load of Embed calls goes through a channel like the
query service's (dns:/// name, round_robin), then the stack scales to three replicas and the
same load runs again on a new channel. Prints calls and texts per second for each, their ratio,
and each replica's share of the calls (from its own ragplane_rpc_requests_total). On a machine
with fewer cores than replicas the ratio stays modest: the replicas share the same CPUs.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import grpc

from bench.load.metrics import scrape, total
from bench.machine import this_machine
from ragplane.cli.stack import Ports, Replicas, Stack, replica_host
from ragplane.runtime.channels import open_channel
from ragplane.v1 import embedding_pb2, embedding_pb2_grpc

REPO = Path(__file__).resolve().parents[2]
EMBED = "/ragplane.v1.EmbeddingService/Embed"


@dataclass(frozen=True)
class Throughput:
    replicas: int
    calls: int
    texts: int
    failed: int
    seconds: float
    shares: dict[str, float]

    def row(self) -> str:
        parts = ", ".join(f"{name} {share:.0%}" for name, share in self.shares.items())
        return (
            f"{self.replicas:>8} {self.calls / self.seconds:>9.1f} "
            f"{self.texts / self.seconds:>9.1f} {self.failed:>6}   {parts}"
        )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.load.replicas", description=__doc__)
    parser.add_argument("--seconds", type=float, default=30.0, help="load per measurement")
    parser.add_argument("--concurrency", type=int, default=6, help="Embed calls in flight")
    parser.add_argument("--texts", type=int, default=8, help="texts per Embed call")
    return parser.parse_args()


def served(stack: Stack) -> dict[str, float]:
    """Embed calls each embedding replica answered OK, from its own metrics."""
    port = stack.ports.embedding_metrics
    return {
        name: total(
            scrape(port, replica_host(name)), "ragplane_rpc_requests_total", method=EMBED, code="OK"
        )
        for name in stack.instances("embedding")
    }


async def embed_load(stack: Stack, args: argparse.Namespace) -> tuple[int, int, float]:
    """Calls that succeeded, calls that failed, and the seconds the load ran."""
    counts = {"ok": 0, "failed": 0}
    deadline = time.monotonic() + args.seconds
    async with open_channel(stack.target("embedding")) as channel:
        stub = embedding_pb2_grpc.EmbeddingServiceStub(channel)

        async def worker(number: int) -> None:
            sent = 0
            while time.monotonic() < deadline:
                # New texts every call: no cache can answer for the model.
                texts = [f"load text {number}.{sent}.{i} about replicas" for i in range(args.texts)]
                sent += 1
                try:
                    await stub.Embed(embedding_pb2.EmbedRequest(texts=texts), timeout=30)
                    counts["ok"] += 1
                except grpc.aio.AioRpcError:
                    counts["failed"] += 1

        started = time.monotonic()
        await asyncio.gather(*(worker(n) for n in range(args.concurrency)))
    return counts["ok"], counts["failed"], time.monotonic() - started


def measure(stack: Stack, args: argparse.Namespace) -> Throughput:
    before = served(stack)
    ok, failed, seconds = asyncio.run(embed_load(stack, args))
    after = served(stack)
    calls = {name: after[name] - before.get(name, 0.0) for name in after}
    shares = {name: count / max(sum(calls.values()), 1.0) for name, count in calls.items()}
    return Throughput(len(after), ok, ok * args.texts, failed, seconds, shares)


def main() -> int:
    args = parse_args()
    print(f"machine: {this_machine().describe()}")
    with tempfile.TemporaryDirectory(prefix="ragplane-load-replicas-") as run_dir:
        stack = Stack(
            Path(run_dir),
            Ports.free(),
            REPO / ".bin",
            sys.executable,
            # The embedding cache stays off: every call runs the model.
            extra_env={"EMBEDDING_REDIS_URL": ""},
            replicas=Replicas(embedding=1),
        )
        try:
            print("starting CoreDNS and one embedding replica", flush=True)
            stack.up(["dns", "embedding-1"], timeout_s=600, report=lambda line: None)
            results = [measure(stack, args)]
            print("scaling the embedding service to three replicas", flush=True)
            stack.scale("embedding", 3, timeout_s=600, report=lambda line: None)
            results.append(measure(stack, args))
        finally:
            stack.down(report=lambda line: None)
    print(
        f"\nEmbed, {args.concurrency} calls in flight, {args.texts} texts per call, "
        f"{args.seconds:g} s each:"
    )
    print("replicas   calls/s   texts/s failed   share of the calls per replica")
    for result in results:
        print(result.row())
    one, three = results
    ratio = (three.calls / three.seconds) / max(one.calls / one.seconds, 1e-9)
    print(f"throughput with 3 replicas / with 1: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
