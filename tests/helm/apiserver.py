"""A real Kubernetes API server for the chart's tests: etcd and kube-apiserver (built by
scripts/install-test.sh) on loopback ports, a static token in group system:masters, RBAC on and
the default admission plugins (PodSecurity among them). No kubelet or controllers run: objects
are stored and admitted, pods never start."""

from __future__ import annotations

import json
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragplane.cli.stack import free_ports, stop_process
from tests.conftest import REPO

BIN = REPO / ".bin"
TOKEN = "ragplane-chart-test"
START_TIMEOUT_S = 180
# The server's certificate is self-signed (made in --cert-dir at start-up).
UNVERIFIED = ssl._create_unverified_context()


def missing_binary() -> str | None:
    for name in ("etcd", "kube-apiserver", "helm"):
        if not (BIN / name).exists():
            return f"{BIN / name} is missing (make install-test builds it)"
    return None


def _start(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:
        return subprocess.Popen(
            argv, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )


@dataclass
class ApiServer:
    workdir: Path
    port: int
    processes: list[subprocess.Popen[bytes]]

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    @classmethod
    def start(cls, workdir: Path) -> ApiServer:
        client, peer, secure = free_ports(3)
        etcd_argv = [str(BIN / "etcd"), "--name", "chart-test", "--data-dir", str(workdir / "etcd")]
        etcd_argv += ["--listen-client-urls", f"http://127.0.0.1:{client}"]
        etcd_argv += ["--advertise-client-urls", f"http://127.0.0.1:{client}"]
        etcd_argv += ["--listen-peer-urls", f"http://127.0.0.1:{peer}"]
        etcd_argv += ["--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}"]
        etcd_argv += ["--initial-cluster", f"chart-test=http://127.0.0.1:{peer}"]
        # Nothing here outlives the test: durability would only slow it down.
        etcd_argv += ["--unsafe-no-fsync"]
        server = cls(workdir, secure, [_start(etcd_argv, workdir / "etcd.log")])
        try:
            server._wait(f"http://127.0.0.1:{client}/health", "etcd")
            server.processes.append(_start(server._apiserver_argv(client), workdir / "api.log"))
            server._wait(f"https://127.0.0.1:{secure}/readyz", "kube-apiserver")
        except BaseException:
            server.stop()
            raise
        server._write_kubeconfig()
        return server

    def _apiserver_argv(self, etcd_port: int) -> list[str]:
        (self.workdir / "tokens.csv").write_text(f'{TOKEN},chart-test,1,"system:masters"\n')
        key = self.workdir / "service-accounts.key"
        subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, timeout=60)
        argv = [str(BIN / "kube-apiserver"), f"--etcd-servers=http://127.0.0.1:{etcd_port}"]
        argv += ["--bind-address=127.0.0.1", "--advertise-address=127.0.0.1"]
        argv += [f"--secure-port={self.port}", f"--cert-dir={self.workdir / 'certs'}"]
        argv += [f"--token-auth-file={self.workdir / 'tokens.csv'}", "--authorization-mode=RBAC"]
        argv += ["--service-account-issuer=https://kubernetes.default.svc"]
        argv += [f"--service-account-key-file={key}", f"--service-account-signing-key-file={key}"]
        argv += ["--service-cluster-ip-range=10.96.0.0/16"]
        # The reconciler publishes the advertise address as the kubernetes Service's endpoint,
        # which may not be a loopback one; nothing here reaches the server through it.
        argv += ["--endpoint-reconciler-type=none"]
        return argv

    def _wait(self, url: str, what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._answers_ok(url):
            for process in self.processes:
                assert process.poll() is None, f"{what} exited: see {self.workdir}/*.log"
            assert time.monotonic() < deadline, f"{what} not ready: see {self.workdir}/*.log"
            time.sleep(0.5)

    @staticmethod
    def _answers_ok(url: str) -> bool:
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
        try:
            with urllib.request.urlopen(request, timeout=2, context=UNVERIFIED) as reply:
                return bool(reply.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def _write_kubeconfig(self) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "test",
                    "cluster": {
                        "server": f"https://127.0.0.1:{self.port}",
                        "insecure-skip-tls-verify": True,
                    },
                }
            ],
            "users": [{"name": "test", "user": {"token": TOKEN}}],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
            "current-context": "test",
        }
        self.kubeconfig.write_text(json.dumps(config))
        self.kubeconfig.chmod(0o600)

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """The server's status and JSON answer to one call (errors included, not raised)."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"https://127.0.0.1:{self.port}{path}",
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30, context=UNVERIFIED) as reply:
                return reply.status, json.loads(reply.read())
        except urllib.error.HTTPError as refused:
            return refused.code, json.loads(refused.read())

    def stop(self) -> None:
        for process in reversed(self.processes):
            stop_process(process)
