"""A typed client for toxiproxy's HTTP API, and the toxiproxy-server process the tests run.

toxiproxy (github.com/Shopify/toxiproxy, built from its Go module by scripts/install.sh) is a TCP
proxy whose faults are real network faults, not a double's imitation of them: added latency,
connections that go silent and are closed later (timeout) and connections reset by the peer
(reset_peer). Put a proxy between a service and
its dependency, point the service at ``proxy.address``, then add toxics.

API reference: https://github.com/Shopify/toxiproxy#http-api
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ragplane.cli.stack import free_ports, stop_process

# Downstream: server -> client (the answer); upstream: client -> server (the request).
Direction = Literal["upstream", "downstream"]


class ToxiproxyError(RuntimeError):
    """toxiproxy refused an API call; the message holds its status and reason."""


@dataclass(frozen=True)
class Toxic:
    name: str
    type: str
    stream: Direction
    attributes: dict[str, int]

    @classmethod
    def of(cls, data: dict[str, Any]) -> Toxic:
        return cls(data["name"], data["type"], data["stream"], dict(data["attributes"]))


class Toxiproxy:
    """The HTTP API of one toxiproxy-server."""

    def __init__(self, api_url: str, timeout_s: float = 10.0) -> None:
        self.api_url = api_url.rstrip("/")
        self._timeout_s = timeout_s

    def version(self) -> str:
        return str(self.call("GET", "/version"))

    def create_proxy(self, name: str, upstream: str, listen: str = "127.0.0.1:0") -> Proxy:
        """A new enabled proxy to ``upstream`` (host:port); port 0 listens on a free port."""
        data = self.call("POST", "/proxies", {"name": name, "upstream": upstream, "listen": listen})
        return Proxy(self, data["name"], data["listen"], data["upstream"])

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One API call; the decoded JSON reply (None for an empty one)."""
        request = urllib.request.Request(
            self.api_url + path,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method=method,
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s) as reply:
                raw = reply.read()
        except urllib.error.HTTPError as error:
            raise ToxiproxyError(
                f"toxiproxy {method} {path}: HTTP {error.code}: {error.read().decode().strip()}"
            ) from error
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode().strip()  # /version answers plain text in some versions


class Proxy:
    """One proxy of a toxiproxy-server; toxics added here apply to new and open connections."""

    def __init__(self, api: Toxiproxy, name: str, listen: str, upstream: str) -> None:
        self._api = api
        self.name = name
        self.listen = listen
        self.upstream = upstream

    @property
    def port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])

    @property
    def address(self) -> str:
        """host:port to give the client instead of the upstream's."""
        return f"127.0.0.1:{self.port}"

    def add_latency(
        self, latency_ms: int, jitter_ms: int = 0, stream: Direction = "downstream"
    ) -> Toxic:
        """Delay all data by ``latency_ms`` (plus or minus ``jitter_ms``)."""
        return self._add("latency", stream, {"latency": latency_ms, "jitter": jitter_ms})

    def add_timeout(self, timeout_ms: int, stream: Direction = "downstream") -> Toxic:
        """Let no data through and close the connection after ``timeout_ms``.

        0 never closes it: the connection just goes silent until the toxic is removed.
        """
        return self._add("timeout", stream, {"timeout": timeout_ms})

    def add_reset_peer(self, timeout_ms: int = 0, stream: Direction = "downstream") -> Toxic:
        """Reset connections (TCP RST, "connection reset by peer") after ``timeout_ms``."""
        return self._add("reset_peer", stream, {"timeout": timeout_ms})

    def set_enabled(self, enabled: bool) -> None:
        """Disabled, the proxy closes its connections and refuses new ones: the upstream is
        down as far as its clients can tell."""
        self._api.call("POST", f"/proxies/{self.name}", {"enabled": enabled})

    def delete(self) -> None:
        self._api.call("DELETE", f"/proxies/{self.name}")

    def _add(self, kind: str, stream: Direction, attributes: dict[str, int]) -> Toxic:
        body = {
            "name": f"{kind}_{stream}",
            "type": kind,
            "stream": stream,
            "toxicity": 1.0,
            "attributes": attributes,
        }
        return Toxic.of(self._api.call("POST", f"/proxies/{self.name}/toxics", body))


@contextmanager
def toxiproxy_server(binary: Path, log: Path, ready_timeout_s: float = 30) -> Iterator[Toxiproxy]:
    """Run ``toxiproxy-server`` with its API on a free loopback port; stop it after."""
    if not binary.exists():
        raise RuntimeError(f"{binary} is missing; run `make install`")
    [port] = free_ports(1)
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(binary), "-host", "127.0.0.1", "-port", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    api = Toxiproxy(f"http://127.0.0.1:{port}")
    try:
        _wait_until_ready(api, process, log, ready_timeout_s)
        yield api
    finally:
        stop_process(process, timeout_s=10)


def _wait_until_ready(
    api: Toxiproxy, process: subprocess.Popen[bytes], log: Path, timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            api.version()
            return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"toxiproxy-server did not start:\n{log.read_text()[-2000:]}")
        time.sleep(0.1)
