"""Phases (b), (c) and (d): a server started alone, warmed up, loaded, measured and stopped."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.embedding.loadgen import Load, LoadFailed, LoadResult, run_ghz, run_vegeta
from bench.embedding.servers import ServerFailed, ServerSpec, free_port, running
from ragplane.cli.stack import grpc_serving, http_ok

# Infinity serves the model under this name; requests must name it.
SERVED_MODEL_NAME = "all-MiniLM-L6-v2"
INFINITY_ENGINES = ("torch", "optimum")


class PhaseFailed(Exception):
    """A phase could not produce figures; the message says why."""


@dataclass(frozen=True)
class Bench:
    repo: Path
    reports: Path
    load: Load
    ghz: Path
    # None when vegeta is not installed; Infinity's phase then says so.
    vegeta: Path | None
    model_path: Path


# --- (b), (c): ragplane's embedding service ------------------------------------------------------


def ragplane_spec(name: str, port: int, settings: dict[str, str]) -> ServerSpec:
    return ServerSpec(
        name=name,
        argv=[sys.executable, "-m", "ragplane.embedding"],
        env={"EMBEDDING_PORT": str(port), "EMBEDDING_METRICS_PORT": "0", **settings},
        ready=grpc_serving(port),
    )


def measure_ragplane(bench: Bench, name: str, settings: dict[str, str]) -> LoadResult:
    """Starts the service with EMBEDDING_* settings, loads it with ghz, stops it."""
    port = free_port()
    spec = ragplane_spec(name, port, settings)
    try:
        with running(spec, bench.reports / "logs" / f"{name}.log"):
            return run_ghz(
                bench.ghz, bench.repo, port, bench.load, bench.reports / f"{name}.ghz.json"
            )
    except (ServerFailed, LoadFailed) as error:
        raise PhaseFailed(str(error)) from error


# --- (d): Infinity -------------------------------------------------------------------------------


@dataclass(frozen=True)
class InfinityInstall:
    """What scripts/install-bench.sh installed, as it describes it in infinity.json."""

    version: str
    venv: Path
    # Infinity's caches (HF_HOME, INFINITY_HOME), kept out of ~/.cache/huggingface.
    home: Path
    # The model exported to ONNX for the optimum engine; None with the reason when that failed.
    onnx_model: Path | None
    onnx_error: str | None


@dataclass
class InfinityOutcome:
    version: str | None = None
    # Why Infinity was not measured at all; None when at least one engine ran.
    skipped: str | None = None
    results: dict[str, LoadResult] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)

    @property
    def best_engine(self) -> str | None:
        if not self.results:
            return None
        return max(self.results, key=lambda engine: self.results[engine].texts_per_s)


def infinity_status_file(cache: Path) -> Path:
    return cache / "bench-venvs" / "infinity.json"


def find_infinity(cache: Path) -> InfinityInstall:
    status_file = infinity_status_file(cache)
    if not status_file.exists():
        raise PhaseFailed(
            f"Infinity is not installed ({status_file} is missing): run scripts/install-bench.sh"
        )
    status: dict[str, Any] = json.loads(status_file.read_text())
    if status.get("error"):
        raise PhaseFailed(
            f"Infinity {status.get('version')} could not be installed: {status['error']}"
        )
    onnx_model = status.get("onnx_model")
    return InfinityInstall(
        version=str(status["version"]),
        venv=Path(status["venv"]),
        home=Path(status["home"]),
        onnx_model=Path(onnx_model) if onnx_model else None,
        onnx_error=status.get("onnx_error"),
    )


def infinity_model_arguments(
    install: InfinityInstall, engine: str, model_path: Path
) -> tuple[list[str], Path | None]:
    """The model options for one engine, and the directory to start Infinity in."""
    if engine != "optimum":
        return ["--model-id", str(model_path)], None
    if install.onnx_model is None:
        raise PhaseFailed(f"no ONNX model for the optimum engine: {install.onnx_error}")
    # Infinity 0.0.78 hands optimum the ONNX file's full path where optimum 2 matches file
    # names, so a local model only loads when named relative to the working directory ("."). The
    # model was optimised at install time as Infinity would do it (ORT transformer fusions,
    # level 99), since Infinity's own optimisation call fails on optimum 2; so it is off here.
    # Pooling "auto" means CLS for this engine; all-MiniLM-L6-v2 is a mean-pooling model.
    options = ["--model-id", ".", "--pooling-method", "mean", "--onnx-disable-optimize"]
    return options, install.onnx_model


def infinity_spec(install: InfinityInstall, engine: str, model_path: Path, port: int) -> ServerSpec:
    model_options, cwd = infinity_model_arguments(install, engine, model_path)
    return ServerSpec(
        name=f"infinity-{engine}",
        argv=[
            str(install.venv / "bin" / "infinity_emb"),
            "v2",
            *model_options,
            f"--served-model-name={SERVED_MODEL_NAME}",
            f"--engine={engine}",
            "--host=127.0.0.1",
            f"--port={port}",
            # Its SQLite cache of embeddings would answer repeated texts without the model.
            "--no-vector-disk-cache",
        ],
        env={
            # Infinity sends anonymous usage statistics unless told not to; it reads both.
            "INFINITY_ANONYMOUS_USAGE_STATS": "0",
            "DO_NOT_TRACK": "1",
            "HF_HOME": str(install.home),
            "INFINITY_HOME": str(install.home),
        },
        ready=http_ok(f"http://127.0.0.1:{port}/health"),
        cwd=cwd,
    )


def infinity_request(text: str) -> dict[str, Any]:
    """OpenAI's embeddings request, which Infinity serves at POST /embeddings."""
    return {"model": SERVED_MODEL_NAME, "input": [text]}


def measure_infinity_engine(bench: Bench, install: InfinityInstall, engine: str) -> LoadResult:
    if bench.vegeta is None:
        raise PhaseFailed("vegeta is not installed: run scripts/install-bench.sh")
    port = free_port()
    spec = infinity_spec(install, engine, bench.model_path, port)
    try:
        with running(spec, bench.reports / "logs" / f"{spec.name}.log"):
            return run_vegeta(
                bench.vegeta,
                f"http://127.0.0.1:{port}/embeddings",
                infinity_request,
                bench.load,
                bench.reports / f"{spec.name}.vegeta.json",
            )
    except (ServerFailed, LoadFailed) as error:
        raise PhaseFailed(str(error)) from error
