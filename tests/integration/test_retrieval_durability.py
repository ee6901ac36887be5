"""No acknowledged chunk is lost, and none is stored twice, when Weaviate is SIGKILLed.

A Weaviate of its own (same helper as the session stack, its own ports and data folder) and a
retrieval service pointed at it, on a machine loaded by a CPU burner the test starts. Each kill
cycle SIGKILLs Weaviate at one point of an Upsert and starts it again:
- before: Weaviate is down when the Upsert arrives (the service retries until it is back);
- during: the Upsert is being handled (the service's in-flight gauge says so, and the call has
  not returned) when Weaviate dies, and a batch write to Weaviate broke mid-call (the client's
  log line in the service's log says so); every other such cycle replaces an acknowledged
  document;
- after: right after the acknowledgement.
After each restart the acknowledged chunks are counted at once, as a reader would see them. A
refused call is UNAVAILABLE (Weaviate is down: send it again), never INTERNAL.
RAGPLANE_DURABILITY_CYCLES sets the number of cycles (`make chaos` runs at least 20).

weaviate-client sends a batch that Weaviate broke off again by itself, and Weaviate keeps an
object written again unchanged as it was, holes in its indexes included (a CI run lost 20
acknowledged chunks to it); the chunk store watches for those resends with `resends_seen`,
proven by the last test here.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator, Iterator

import grpc
import pytest
from weaviate import WeaviateAsyncClient
from weaviate.classes.config import Configure
from weaviate.classes.data import DataObject

from ragplane.cli.stack import Ports, Stack
from ragplane.runtime.settings import WeaviateSettings
from ragplane.runtime.weaviate_client import resends_seen, weaviate_client
from ragplane.v1 import retrieval_pb2, retrieval_pb2_grpc
from tests.conftest import REPO
from tests.integration.durability import (
    DedicatedWeaviate,
    InFlightUpsert,
    Ledger,
    cpu_burner,
    cycles,
    document,
    upserts_in_flight,
    wait_until_handled,
    writes_cut_off,
)
from tests.integration.services import RunningService, service_process

# Chunks per document: enough that Weaviate takes a while to store them, so a kill can land
# inside an Upsert.
CHUNKS = 200
PHASES = ("before", "during", "after")
# Tries at catching an Upsert's write in flight before the cycle gives up.
DURING_TRIES = 8
# The kill comes this long (at random) after the Upsert is handled: past the tenant lookup, most
# often inside the writes of its 200 chunks.
KILL_AFTER_S = (0.02, 0.3)
# Tries at an Upsert to acknowledge before an "after" kill (Weaviate was just restarted).
AFTER_TRIES = 3
# A collection of its own for the resend test, beside the retrieval service's.
PROBE_COLLECTION = "ResendProbe"


@pytest.fixture(scope="module")
def weaviate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DedicatedWeaviate]:
    stack = Stack(tmp_path_factory.mktemp("weaviate-kill"), Ports.free(), bin_dir=REPO / ".bin")
    stack.up(["weaviate"], timeout_s=180, report=lambda line: None)
    try:
        yield DedicatedWeaviate(stack)
    finally:
        stack.down(report=lambda line: None)


@pytest.fixture(scope="module")
def retrieval(
    weaviate: DedicatedWeaviate, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RunningService, Ledger]]:
    env = {
        "RETRIEVAL_WEAVIATE_HTTP_PORT": str(weaviate.stack.ports.weaviate_http),
        "RETRIEVAL_WEAVIATE_GRPC_PORT": str(weaviate.stack.ports.weaviate_grpc),
        # Enough tries (backoff doubling to 4 s) to ride out a Weaviate restart.
        "RETRIEVAL_WRITE_ATTEMPTS": "10",
    }
    logs = tmp_path_factory.mktemp("retrieval-kill")
    with (
        service_process("retrieval", env, logs) as service,
        grpc.insecure_channel(service.target) as channel,
    ):
        yield service, Ledger(retrieval_pb2_grpc.RetrievalServiceStub(channel))


class Documents:
    """New documents, and new versions of acknowledged ones (same chunk ids, new text)."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self.versions: dict[str, int] = {}

    def new(self) -> retrieval_pb2.UpsertRequest:
        document_id = f"doc-{len(self.versions)}.md"
        self.versions[document_id] = 0
        return document(document_id, CHUNKS, 0)

    def replacement(self) -> retrieval_pb2.UpsertRequest:
        acknowledged = sorted(self._ledger.acknowledged)
        if not acknowledged:
            return self.new()
        document_id = acknowledged[-1]
        self.versions[document_id] += 1
        return document(document_id, CHUNKS, self.versions[document_id])

    def again(self, document_id: str) -> retrieval_pb2.UpsertRequest:
        return document(document_id, CHUNKS, self.versions[document_id])


def _kill_before(
    weaviate: DedicatedWeaviate,
    service: RunningService,
    ledger: Ledger,
    request: retrieval_pb2.UpsertRequest,
) -> None:
    weaviate.kill()
    call = InFlightUpsert(ledger, request)
    wait_until_handled(service.metrics_port, call)
    weaviate.restart()
    call.join()


def _kill_during(
    weaviate: DedicatedWeaviate,
    service: RunningService,
    ledger: Ledger,
    documents: Documents,
    replace: bool,
    rng: random.Random,
) -> bool:
    """Kill Weaviate while an Upsert writes; False when no try was cut off mid-write."""
    for _ in range(DURING_TRIES):
        cut_off = writes_cut_off(service.log)
        call = InFlightUpsert(ledger, documents.replacement() if replace else documents.new())
        wait_until_handled(service.metrics_port, call)
        # A randomised moment inside the write (not a wait for anything).
        pause = rng.uniform(*KILL_AFTER_S)
        call.done.wait(pause)
        handled = upserts_in_flight(service.metrics_port) >= 1
        weaviate.kill()
        returned_first = not handled or call.done.is_set()
        weaviate.restart()
        call.join()
        # The kill broke a batch write to Weaviate, which was then retried.
        if not returned_first and writes_cut_off(service.log) > cut_off:
            return True
    return False


def test_acknowledged_chunks_survive_sigkills_before_during_and_after_upserts(
    weaviate: DedicatedWeaviate,
    retrieval: tuple[RunningService, Ledger],
    capsys: pytest.CaptureFixture[str],
) -> None:
    service, ledger = retrieval
    documents = Documents(ledger)
    rng = random.Random(18)
    kills: Counter[str] = Counter()
    lost_after_restart = 0
    # The cycles after which an acknowledged chunk was missing, for the failure message.
    losses: list[str] = []
    with cpu_burner(cores=2):
        for cycle in range(cycles()):
            phase = PHASES[cycle % len(PHASES)]
            if phase == "before":
                _kill_before(weaviate, service, ledger, documents.new())
            elif phase == "during":
                replace = cycle % 2 == 1
                assert _kill_during(weaviate, service, ledger, documents, replace, rng), (
                    f"cycle {cycle}: no Upsert was in flight at the kill in {DURING_TRIES} tries"
                )
            else:
                request = documents.new()
                stored = any(ledger.upsert(request) for _ in range(AFTER_TRIES))
                assert stored, ledger.refused
                weaviate.kill()
                weaviate.restart()
            kills[phase] += 1
            # Right after the restart, as a reader would: everything acknowledged is there.
            audit = ledger.audit()
            lost_after_restart = max(lost_after_restart, audit.lost)
            if audit.lost:
                losses.append(f"cycle {cycle} ({phase}): {audit.wrong}")
        # Before anything is sent again: what was acknowledged is all there.
        lost_before_resend = ledger.audit().lost

    # Send again what was refused (the caller's duty); stored once, whatever happened before.
    for document_id in sorted(ledger.refused):
        assert ledger.upsert(documents.again(document_id)), ledger.refused[document_id]
    audit = ledger.audit()
    acknowledged = sum(ledger.acknowledged.values())
    with capsys.disabled():
        print(
            f"\ndurability: {sum(kills.values())} kill cycles {dict(kills)} under a CPU burner; "
            f"{acknowledged} chunks acknowledged in {len(ledger.acknowledged)} documents; "
            f"lost {lost_before_resend} (at most {lost_after_restart} right after a restart; "
            f"after re-sending refused ones: {audit.lost}); "
            f"duplicates {audit.duplicated}"
        )
    assert kills["during"] >= 1, "no kill landed during an Upsert"
    assert set(ledger.refusal_codes) <= {grpc.StatusCode.UNAVAILABLE}, ledger.refused
    lost = (lost_after_restart, lost_before_resend, audit.lost)
    assert (*lost, audit.duplicated) == (0, 0, 0, 0), (audit.wrong, losses)


@pytest.fixture
async def client(
    weaviate: DedicatedWeaviate,
) -> AsyncIterator[WeaviateAsyncClient]:
    ports = weaviate.stack.ports
    settings = WeaviateSettings(
        weaviate_http_port=ports.weaviate_http, weaviate_grpc_port=ports.weaviate_grpc
    )
    client = weaviate_client(settings)
    await client.connect()
    if not await client.collections.exists(PROBE_COLLECTION):
        await client.collections.create(
            PROBE_COLLECTION, vector_config=Configure.Vectors.self_provided()
        )
    try:
        yield client
    finally:
        await client.close()


def _objects(first: int) -> list[DataObject[dict[str, str], None]]:
    return [
        DataObject(properties={"text": f"object {n}"}, vector=[1.0, float(n), 0.5])
        for n in range(first, first + 3)
    ]


async def _write_watched(client: WeaviateAsyncClient, first: int) -> list[str]:
    with resends_seen() as resends:
        result = await client.collections.use(PROBE_COLLECTION).data.insert_many(_objects(first))
    assert not result.errors, result.errors
    return resends


async def test_a_write_resent_after_weaviate_came_back_is_seen_and_an_unbroken_one_is_not(
    client: WeaviateAsyncClient, weaviate: DedicatedWeaviate
) -> None:
    assert await _write_watched(client, 0) == []

    weaviate.kill()
    # Refused, the client waits (1 s, 2 s, 4 s, ...) and sends again; Weaviate starts meanwhile.
    broken = asyncio.create_task(_write_watched(client, 3))
    await asyncio.to_thread(weaviate.restart)
    resends = await broken
    unbroken = await _write_watched(client, 6)

    assert len(resends) >= 1, "the client did not send the broken write again"
    assert all("received exception" in line for line in resends), resends
    assert unbroken == []
    total = await client.collections.use(PROBE_COLLECTION).aggregate.over_all(total_count=True)
    assert total.total_count == 9
