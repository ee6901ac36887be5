"""Helpers for the hostile-input tests and the fuzz suite.

Calls that report their outcome instead of raising, calls made of hand-written bytes, every
string field of a request (walked from its message descriptor), metrics read from /metrics,
the stack's Redis keys and a poller that watches every service's health while a test runs.
"""

from __future__ import annotations

import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, cast

import grpc
import redis
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from ragplane.cli.stack import Stack
from ragplane.runtime.index_versions import index_version_key
from ragplane.v1 import common_pb2, embedding_pb2, generation_pb2, query_pb2, retrieval_pb2
from tests.integration.polling import wait_until

# The public RPCs that take caller input, by service (Info, ListTenants and Providers take none).
PUBLIC_RPCS: dict[str, tuple[str, ...]] = {
    "query": ("Query", "QueryStream", "Ingest", "DeleteDocuments"),
    "embedding": ("Embed",),
    "retrieval": (
        "Upsert",
        "Search",
        "Delete",
        "CreateTenant",
        "DeactivateTenant",
        "ActivateTenant",
        "DeleteTenant",
        "CountChunks",
    ),
    "generation": ("Generate", "GenerateStream"),
}
_SERVICES = {
    "query": query_pb2.DESCRIPTOR.services_by_name["QueryService"],
    "embedding": embedding_pb2.DESCRIPTOR.services_by_name["EmbeddingService"],
    "retrieval": retrieval_pb2.DESCRIPTOR.services_by_name["RetrievalService"],
    "generation": generation_pb2.DESCRIPTOR.services_by_name["GenerationService"],
}
# Server-streaming RPCs: their outcome is the stream's, read to the end.
_STREAMING = {"QueryStream", "GenerateStream"}
# The embedding model's dimension (all-MiniLM-L6-v2): vectors of any other length are refused.
DIMENSIONS = 384


def method(service: str, name: str) -> MethodDescriptor:
    found: MethodDescriptor = _SERVICES[service].methods_by_name[name]
    return found


def request_class(service: str, name: str) -> type[Message]:
    return GetMessageClass(method(service, name).input_type)


def port_of(stack: Stack, service: str) -> int:
    port: int = getattr(stack.ports, service)
    return port


# -- calls that report their outcome ------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """How a call ended: its status, its message, how long it took and its (last) reply."""

    code: grpc.StatusCode
    details: str
    elapsed_s: float
    reply: Any = None

    def __str__(self) -> str:
        return f"{self.code.name} after {self.elapsed_s:.2f} s: {self.details[:300]!r}"


def outcome(call: Callable[[], Any]) -> Outcome:
    """Run a call (a stream is read to its end) and report how it ended instead of raising."""
    started = time.monotonic()
    try:
        reply = call()
        if isinstance(reply, Iterator):
            events = list(reply)
            reply = events[-1] if events else None
    except grpc.RpcError as error:
        code, details = failure(error)
        return Outcome(code, details, time.monotonic() - started)
    return Outcome(grpc.StatusCode.OK, "", time.monotonic() - started, reply)


def failure(error: grpc.RpcError) -> tuple[grpc.StatusCode, str]:
    """Status and message of a failed call (every RpcError a stub raises is also a Call)."""
    call = cast(grpc.Call, error)
    return call.code(), call.details() or ""


def invoke(
    channel: grpc.Channel,
    service: str,
    name: str,
    request: Message | bytes,
    timeout_s: float,
    metadata: tuple[tuple[str, str | bytes], ...] | None = None,
) -> Outcome:
    """Call any public RPC generically; ``request`` may be a message or hand-made bytes."""
    rpc = method(service, name)
    path = f"/{rpc.containing_service.full_name}/{rpc.name}"
    reply_class = GetMessageClass(rpc.output_type)
    serialize = None if isinstance(request, bytes) else _serialize
    if name in _STREAMING:
        stream = channel.unary_stream(
            path, request_serializer=serialize, response_deserializer=reply_class.FromString
        )
        return outcome(
            lambda: stream(request, timeout=timeout_s, metadata=metadata)  # type: ignore[arg-type]
        )
    unary = channel.unary_unary(
        path, request_serializer=serialize, response_deserializer=reply_class.FromString
    )
    # A request of bytes is sent as it is (no serializer): the stubs' types do not know that.
    return outcome(
        lambda: unary(request, timeout=timeout_s, metadata=metadata)  # type: ignore[arg-type]
    )


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


def raw_string_field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field written by hand (payload < 128 bytes)."""
    assert len(payload) < 128
    return bytes([(number << 3) | 2, len(payload)]) + payload


# -- every string field of a request ------------------------------------------------------------


class Step(Enum):
    SCALAR = "scalar"
    REPEATED = "repeated"
    MESSAGE = "message"
    REPEATED_MESSAGE = "repeated message"
    MAP_KEY = "map key"
    MAP_VALUE = "map value"


# Fields of which a message may set only one: setting one clears the others.
_EXCLUSIVE = {"ragplane.v1.MetadataFilter": frozenset({"equals", "any_of", "range"})}


@dataclass(frozen=True)
class StringField:
    """One string in a request, reached through ``steps`` (field name, how it is held)."""

    steps: tuple[tuple[str, Step], ...]

    @property
    def name(self) -> str:
        """The field an error message must name: the last field on the path."""
        return self.steps[-1][0]

    @property
    def path(self) -> str:
        parts = []
        for name, step in self.steps:
            parts.append(
                {
                    Step.REPEATED: f"{name}[0]",
                    Step.REPEATED_MESSAGE: f"{name}[0]",
                    Step.MAP_KEY: f"{name}{{key}}",
                    Step.MAP_VALUE: f"{name}{{value}}",
                }.get(step, name)
            )
        return ".".join(parts)

    def set(self, request: Message, value: str) -> Message:
        """A copy of ``request`` with this field (its first element) set to ``value``."""
        copy = type(request)()
        copy.CopyFrom(request)
        _set(copy, self.steps, value)
        return copy


def string_fields(descriptor: Any) -> list[StringField]:
    """Every string field of a message, nested messages, repeated fields and maps included."""
    return [StringField(steps) for steps in _string_paths(descriptor, depth=0)]


def _repeated(field: FieldDescriptor) -> bool:
    return bool(field.is_repeated)


def _string_paths(descriptor: Descriptor, depth: int) -> Iterator[tuple[tuple[str, Step], ...]]:
    assert depth < 8, f"{descriptor.full_name}: messages nested too deep (a cycle?)"
    for member in descriptor.fields:
        entry = member.message_type
        if entry is not None and entry.GetOptions().map_entry:
            if entry.fields_by_name["key"].type == FieldDescriptor.TYPE_STRING:
                yield ((member.name, Step.MAP_KEY),)
            if entry.fields_by_name["value"].type == FieldDescriptor.TYPE_STRING:
                yield ((member.name, Step.MAP_VALUE),)
        elif entry is not None:
            step = Step.REPEATED_MESSAGE if _repeated(member) else Step.MESSAGE
            for rest in _string_paths(entry, depth + 1):
                yield ((member.name, step), *rest)
        elif member.type == FieldDescriptor.TYPE_STRING:
            yield ((member.name, Step.REPEATED if _repeated(member) else Step.SCALAR),)


def _set(message: Message, steps: tuple[tuple[str, Step], ...], value: str) -> None:
    (name, step), rest = steps[0], steps[1:]
    for other in _EXCLUSIVE.get(message.DESCRIPTOR.full_name, frozenset()):
        if other != name and name in _EXCLUSIVE[message.DESCRIPTOR.full_name]:
            message.ClearField(other)
    held = getattr(message, name)
    if step is Step.SCALAR:
        setattr(message, name, value)
    elif step is Step.REPEATED:
        if held:
            held[0] = value
        else:
            held.append(value)
    elif step is Step.MESSAGE:
        _set(held, rest, value)
    elif step is Step.REPEATED_MESSAGE:
        _set(held[0] if held else held.add(), rest, value)
    elif step is Step.MAP_KEY:
        entry = message.DESCRIPTOR.fields_by_name[name].message_type
        assert entry is not None
        value_field = entry.fields_by_name["value"]
        held[value] = "v" if value_field.type == FieldDescriptor.TYPE_STRING else 1
    else:
        held["key"] = value


# -- valid requests, one per public RPC ---------------------------------------------------------

QUESTION = "How often is the Aurora 7 impeller inspected?"
PASSAGE_TEXT = "The Aurora 7 impeller is inspected every 500 operating hours."


def unit_vector(seed: int = 0) -> list[float]:
    """A vector of the model's dimension, the same for the same seed."""
    return [1.0 if index == seed % DIMENSIONS else 0.0 for index in range(DIMENSIONS)]


def valid_requests(tenant: str, document_id: str) -> dict[str, Message]:
    """A request each public RPC accepts, by RPC name; tests change one field at a time."""
    matching = common_filter()
    generate = generation_pb2.GenerateRequest(
        question=QUESTION,
        passages=[
            common_pb2.Passage(
                document_id=document_id,
                chunk_id=f"{document_id}#0",
                text=PASSAGE_TEXT,
                score=1.0,
            )
        ],
        max_output_tokens=8,
        tenant=tenant,
    )
    query = query_pb2.QueryRequest(
        tenant=tenant, query=QUESTION, max_output_tokens=8, filters=[matching]
    )
    chunk = retrieval_pb2.ChunkWithVector(
        chunk=retrieval_pb2.Chunk(
            chunk_id=f"{document_id}#0",
            document_id=document_id,
            chunk_index=0,
            text=PASSAGE_TEXT,
            metadata={"section": "top"},
            title="Aurora 7",
        ),
        vector=unit_vector(),
    )
    return {
        "Query": query,
        "QueryStream": query,
        "Ingest": query_pb2.IngestRequest(
            tenant=tenant,
            documents=[
                query_pb2.Document(
                    document_id=document_id,
                    text=PASSAGE_TEXT,
                    title="Aurora 7",
                    metadata={"section": "top"},
                )
            ],
        ),
        "DeleteDocuments": query_pb2.DeleteDocumentsRequest(
            tenant=tenant, document_ids=[document_id]
        ),
        "Embed": embedding_pb2.EmbedRequest(texts=[QUESTION]),
        "Upsert": retrieval_pb2.UpsertRequest(
            tenant=tenant, chunks=[chunk], document_chunk_counts={document_id: 1}
        ),
        "Search": retrieval_pb2.SearchRequest(
            tenant=tenant,
            query_text=QUESTION,
            query_vector=unit_vector(),
            top_k=3,
            filters=[matching],
        ),
        "Delete": retrieval_pb2.DeleteRequest(tenant=tenant, document_ids=[document_id]),
        "CreateTenant": retrieval_pb2.CreateTenantRequest(tenant=tenant),
        "DeactivateTenant": retrieval_pb2.DeactivateTenantRequest(tenant=tenant),
        "ActivateTenant": retrieval_pb2.ActivateTenantRequest(tenant=tenant),
        "DeleteTenant": retrieval_pb2.DeleteTenantRequest(tenant=tenant),
        "CountChunks": retrieval_pb2.CountChunksRequest(tenant=tenant, document_ids=[document_id]),
        "Generate": generate,
        "GenerateStream": generation_pb2.GenerateStreamRequest(request=generate),
    }


def common_filter() -> common_pb2.MetadataFilter:
    """A metadata filter every document ingested by these tests matches."""
    return common_pb2.MetadataFilter(field="section", equals="top")


# -- metrics, Redis, logs -----------------------------------------------------------------------


def samples(metrics_port: int) -> list[tuple[str, dict[str, str], float]]:
    """Every sample on a service's /metrics: (name, labels, value)."""
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as reply:
        text = reply.read().decode()
    return [
        (sample.name, dict(sample.labels), float(sample.value))
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def metric_sum(metrics_port: int, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``; 0 when there is none."""
    return sum(
        value
        for sample, sample_labels, value in samples(metrics_port)
        if sample == name and labels.items() <= sample_labels.items()
    )


def rpc_metric(metrics_port: int, name: str, rpc: str) -> float:
    """Sum of a per-RPC metric (labels service, method = /package.Service/Rpc) for one RPC."""
    return sum(
        value
        for sample, labels, value in samples(metrics_port)
        if sample == name and labels.get("method", "").endswith(f"/{rpc}")
    )


def label_values(metrics_port: int) -> list[str]:
    return [value for _, labels, _ in samples(metrics_port) for value in labels.values()]


def query_redis(stack: Stack) -> redis.Redis:
    """The Redis database of the stack's query service (answer caches, index generations)."""
    url = stack.component("query").env["QUERY_REDIS_URL"]
    db = int(urllib.parse.urlparse(url).path.lstrip("/") or 0)
    return redis.Redis(host="127.0.0.1", port=stack.ports.redis, db=db)


def generation_key(tenant: str) -> str:
    """The tenant's index version key: only tenants that exist may get one."""
    return index_version_key(tenant)


def wait_for_log_line(log: Path, needle: str, timeout_s: float) -> str:
    """The first line of ``log`` that contains ``needle``, polled until ``timeout_s``."""

    def found() -> list[str]:
        return [line for line in log.read_text(errors="replace").splitlines() if needle in line]

    wait_until(lambda: bool(found()), timeout_s, f"a line with {needle!r} in {log}", 0.2)
    return found()[0]


# -- health, watched while a test runs ----------------------------------------------------------


def health(port: int, timeout_s: float = 5.0) -> str:
    """grpc.health.v1 status of the server on ``port``, or the status code of a failed check."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        return _health_check(channel, timeout_s)


def _health_check(channel: grpc.Channel, timeout_s: float) -> str:
    try:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=timeout_s
        )
    except grpc.RpcError as error:
        code, details = failure(error)
        return f"{code.name} {details}"
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


@dataclass
class HealthPoller:
    """Checks grpc.health.v1 of each service again and again from a thread of its own."""

    ports: Mapping[str, int]
    interval_s: float = 0.2
    timeout_s: float = 2.0
    seen: dict[str, Counter[str]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.seen = {name: Counter() for name in self.ports}

    def rounds(self) -> int:
        return min(sum(counts.values()) for counts in self.seen.values())

    def run(self) -> None:
        channels = {
            name: grpc.insecure_channel(f"127.0.0.1:{port}") for name, port in self.ports.items()
        }
        try:
            while not self._stop.is_set():
                for name, channel in channels.items():
                    self.seen[name][_health_check(channel, self.timeout_s)] += 1
                self._stop.wait(self.interval_s)
        finally:
            for channel in channels.values():
                channel.close()

    def stop(self) -> None:
        self._stop.set()

    def assert_always_serving(self) -> None:
        for name in self.ports:
            counts = self.seen[name]
            assert counts["SERVING"] > 0, f"{name} never SERVING while watched: {dict(counts)}"
            assert set(counts) == {"SERVING"}, f"{name} was not always SERVING: {dict(counts)}"


@contextmanager
def watching_health(stack: Stack) -> Iterator[HealthPoller]:
    """Poll the health of the four services while the block runs."""
    poller = HealthPoller({service: port_of(stack, service) for service in PUBLIC_RPCS})
    thread = threading.Thread(target=poller.run, daemon=True)
    thread.start()
    try:
        yield poller
    finally:
        # One more full round of checks after the block, then stop.
        rounds = poller.rounds()
        while thread.is_alive() and poller.rounds() < rounds + 2:
            time.sleep(0.05)
        poller.stop()
        thread.join()
