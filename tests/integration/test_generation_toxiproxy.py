"""Network faults from a real toxiproxy-server: first its client, then the generation service
with toxiproxy between it and a real llama-cpp-python server."""

from __future__ import annotations

import http.client
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.integration.toxiproxy import Proxy, Toxiproxy, ToxiproxyError


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"hello"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def hello_port() -> Iterator[int]:
    """A plain HTTP server answering "hello", for the client tests."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def hello_proxy(
    toxiproxy: Toxiproxy, hello_port: int, request: pytest.FixtureRequest
) -> Iterator[Proxy]:
    proxy = toxiproxy.create_proxy(f"hello-{request.node.name}", f"127.0.0.1:{hello_port}")
    try:
        yield proxy
    finally:
        proxy.delete()


# What urllib raises when the connection is reset or closed before a reply.
_CONNECTION_LOST = (ConnectionResetError, http.client.RemoteDisconnected, urllib.error.URLError)


def _get(proxy: Proxy, timeout_s: float = 10) -> bytes:
    with urllib.request.urlopen(f"http://{proxy.address}/", timeout=timeout_s) as reply:
        return bytes(reply.read())


def test_a_proxy_forwards_and_its_toxics_can_be_listed_and_removed(hello_proxy: Proxy) -> None:
    assert _get(hello_proxy) == b"hello"
    assert hello_proxy.port != 0  # listen on port 0 reports the port actually taken
    toxic = hello_proxy.add_latency(300, stream="downstream")
    assert (toxic.type, toxic.stream, toxic.attributes["latency"]) == ("latency", "downstream", 300)
    assert [t.name for t in hello_proxy.toxics()] == [toxic.name]
    started = time.monotonic()
    assert _get(hello_proxy) == b"hello"
    assert time.monotonic() - started >= 0.3  # a lower bound only: the added latency
    hello_proxy.remove_toxic(toxic.name)
    assert hello_proxy.toxics() == []


def test_reset_peer_resets_the_connection(hello_proxy: Proxy) -> None:
    hello_proxy.add_reset_peer()
    with pytest.raises(_CONNECTION_LOST):
        _get(hello_proxy)


def test_timeout_lets_nothing_through_then_closes(hello_proxy: Proxy) -> None:
    # Upstream: the request never arrives. (Downstream, this server's own close of its
    # HTTP/1.0 connection would end the link at once, before the toxic's timeout.)
    hello_proxy.add_timeout(500, stream="upstream")
    started = time.monotonic()
    with pytest.raises(_CONNECTION_LOST):
        _get(hello_proxy)
    assert time.monotonic() - started >= 0.5


def test_a_disabled_proxy_refuses_connections_until_enabled(hello_proxy: Proxy) -> None:
    hello_proxy.disable()
    with pytest.raises(urllib.error.URLError):
        _get(hello_proxy)
    hello_proxy.enable()
    assert _get(hello_proxy) == b"hello"


def test_reset_removes_every_toxic(toxiproxy: Toxiproxy, hello_proxy: Proxy) -> None:
    hello_proxy.add_timeout(0)
    toxiproxy.reset()
    assert _get(hello_proxy) == b"hello"


def test_api_errors_name_the_call(toxiproxy: Toxiproxy) -> None:
    with pytest.raises(ToxiproxyError, match="GET /proxies/no-such-proxy: HTTP 404"):
        toxiproxy.proxy("no-such-proxy")
