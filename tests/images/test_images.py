"""The four service images built with podman (make images) and started as the chart runs them,
against the session's local stack (its Weaviate, Redis and LLM servers): each SERVING by
grpc_health_probe, one Query through the four containers answering with a citation, and the
embedding CPU image (no torch) giving the local stack's vectors."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace

import grpc
import numpy as np
import pytest

from ragplane.cli.documents import document_for
from ragplane.cli.stack import Ports, Stack, free_ports
from ragplane.v1 import embedding_pb2, embedding_pb2_grpc, query_pb2, query_pb2_grpc
from tests.conftest import DATA, REPO
from tests.images.containers import (
    SERVICES,
    Container,
    health,
    image,
    image_size,
    missing_images,
    missing_tool,
    podman,
)
from tests.images.texts import hundred_texts
from tests.stack_fixtures import TEST_ENV

pytestmark = pytest.mark.skipif(missing_tool() is not None, reason=str(missing_tool()))

SERVICE_PORTS = [f"{name}{kind}" for name in SERVICES for kind in ("", "_metrics")]
START_TIMEOUT_S = 300
GIB = 1024**3


@pytest.fixture(scope="module")
def built() -> None:
    missing = missing_images()
    assert not missing, f"{missing}: run `make images` (make test builds them first)"


@pytest.fixture(scope="module")
def ports(stack: Stack) -> Ports:
    """The stack's Redis, Weaviate and LLM servers; the four services on ports of their own."""
    own = free_ports(len(SERVICE_PORTS))
    return replace(stack.ports, **dict(zip(SERVICE_PORTS, own, strict=True)))


# Settings an image sets itself (ENV in services/Dockerfile), where the local stack's differ.
IMAGE_OWN = frozenset({"EMBEDDING_BACKEND", "EMBEDDING_MODEL_PATH"})


@pytest.fixture(scope="module")
def containers(
    built: None, ports: Ports, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Container]]:
    # The local stack's own settings for each service, with the containers' ports.
    sibling = Stack(tmp_path_factory.mktemp("images"), ports, bin_dir=REPO / ".bin")
    # The local stack's embedding cache would answer for the image: its vectors are compared.
    extra = {"embedding": {"EMBEDDING_CACHE_ENABLED": "false"}}
    started: dict[str, Container] = {}
    try:
        for service in SERVICES:
            env = {**TEST_ENV, **sibling.component(service).env, **extra.get(service, {})}
            # The image brings its own model and backend (services/Dockerfile), not the host's.
            env = {name: value for name, value in env.items() if name not in IMAGE_OWN}
            name = f"ragplane-test-{service}-{os.getpid()}"
            started[service] = Container.start(service, env, name)
        for service, container in started.items():
            container.wait_serving(getattr(ports, service), START_TIMEOUT_S)
        yield started
    finally:
        for container in started.values():
            container.remove()


def test_each_image_serves_as_the_chart_runs_it(
    containers: dict[str, Container], ports: Ports
) -> None:
    for service, container in containers.items():
        assert health(getattr(ports, service)) == "status: SERVING", service
        state = container.state()
        assert (state["Config"]["User"], state["HostConfig"]["ReadonlyRootfs"]) == ("10001", True)


def test_the_root_filesystem_is_read_only_and_tmp_writable(
    containers: dict[str, Container],
) -> None:
    write = "import sys; open(sys.argv[1], 'w').write('x')"
    name = containers["query"].name
    refused = subprocess.run(
        ["podman", "exec", name, "python", "-c", write, "/opt/ragplane/written"],
        capture_output=True,
        text=True,
        env={**os.environ, "CONTAINERS_CONF": str(REPO / "scripts" / "containers.conf")},
        timeout=60,
    )
    assert "Read-only file system" in refused.stderr
    podman("exec", name, "python", "-c", write, "/tmp/written")


def test_a_query_through_the_four_containers_answers_with_a_citation(
    containers: dict[str, Container], ports: Ports
) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{ports.query}") as channel:
        query = query_pb2_grpc.QueryServiceStub(channel)
        folder = DATA / "tenant-a"
        documents = [document_for(folder / "aurora-pumps.md", folder)]
        ingested = query.Ingest(
            query_pb2.IngestRequest(tenant="images", documents=documents), timeout=300
        )
        assert [r.status for r in ingested.results] == [query_pb2.DOCUMENT_STATUS_INDEXED]
        answer = query.Query(
            query_pb2.QueryRequest(
                tenant="images", query="How often is the Aurora 7 impeller inspected?"
            ),
            timeout=180,
        )
    assert answer.answer.strip()
    assert [c.document_id for c in answer.citations][:1] == ["aurora-pumps.md"]
    assert not answer.degradations


def _vectors(port: int, texts: list[str]) -> np.typing.NDArray[np.float32]:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        embedding = embedding_pb2_grpc.EmbeddingServiceStub(channel)
        reply = embedding.Embed(embedding_pb2.EmbedRequest(texts=texts), timeout=300)
    return np.array([list(e.values) for e in reply.embeddings], dtype=np.float32)


def test_the_embedding_cpu_image_gives_the_local_stacks_vectors(
    containers: dict[str, Container], ports: Ports, stack: Stack
) -> None:
    texts = hundred_texts()
    local = _vectors(stack.ports.embedding, texts)
    from_image = _vectors(ports.embedding, texts)
    difference = float(np.abs(local - from_image).max())
    print(f"largest difference over {len(texts)} texts: {difference:.2e}", file=sys.stderr)
    assert local.shape == (100, 384)
    assert difference < 1e-5


def test_the_embedding_cpu_image_has_no_torch_and_is_under_a_gigabyte(built: None) -> None:
    find = "import importlib.util as u; print([m for m in {} if u.find_spec(m)])"
    modules = ("torch", "sentence_transformers", "transformers", "onnxruntime", "tokenizers")
    found = podman(
        "run", "--rm", "--entrypoint", "python", image("embedding"), "-c", find.format(modules)
    )
    assert found.strip() == "['onnxruntime', 'tokenizers']"
    sizes = {service: image_size(service) for service in SERVICES}
    print("image sizes (MB):", {s: round(b / 1e6) for s, b in sizes.items()}, file=sys.stderr)
    assert sizes["embedding"] < GIB
