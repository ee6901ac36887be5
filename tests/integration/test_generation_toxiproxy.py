"""Network faults from a real toxiproxy-server: first its client, then the generation service
with toxiproxy between it and a real llama-cpp-python server."""

from __future__ import annotations

import contextlib
import http.client
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc
import pytest

from ragplane.cli.stack import Stack
from ragplane.v1 import generation_pb2, generation_pb2_grpc
from tests.integration.services import RunningService, service_process
from tests.integration.test_generation_fallback import PASSAGES, QUESTION, ask, chain_env, provider
from tests.integration.toxiproxy import Proxy, Toxiproxy, ToxiproxyError

FAILED = generation_pb2.ATTEMPT_OUTCOME_FAILED


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"hello"
        # A reset_peer toxic may have reset the connection before the reply is written.
        with contextlib.suppress(ConnectionError):
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


# -- the generation service with toxiproxy between it and its primary LLM server ------------

# Generous: a first call to a cold llama server on a busy 2-core machine takes a few seconds.
PROVIDER_TIMEOUT_S = 6


@pytest.fixture
def llm2_proxy(toxiproxy: Toxiproxy, stack: Stack) -> Iterator[Proxy]:
    """toxiproxy in front of the stack's second LLM server (the first one is the secondary)."""
    proxy = toxiproxy.create_proxy("generation-primary", f"127.0.0.1:{stack.ports.llm2}")
    try:
        yield proxy
    finally:
        proxy.delete()


@pytest.fixture
def service(stack: Stack, llm2_proxy: Proxy, tmp_path: Path) -> Iterator[RunningService]:
    env = chain_env(
        provider("primary", llm2_proxy.port, request_timeout_s=PROVIDER_TIMEOUT_S),
        provider("secondary", stack.ports.llm),
        retry_max_attempts="2",
        breaker_fail_max="100",
        stream_idle_timeout_s="1.5",
    )
    with service_process("generation", env, tmp_path) as running:
        yield running


def test_latency_beyond_the_provider_timeout_falls_back_to_the_secondary(
    llm2_proxy: Proxy, service: RunningService
) -> None:
    llm2_proxy.add_latency(PROVIDER_TIMEOUT_S * 3000)
    response = ask(service, timeout_s=120)
    assert response.provider == "secondary"
    assert not response.degradations
    first = response.attempts[0]
    assert (first.provider, first.outcome, first.calls) == ("primary", FAILED, 2)
    assert "timed out" in first.reason


def test_connections_reset_by_the_peer_are_retried_then_fall_back(
    llm2_proxy: Proxy, service: RunningService
) -> None:
    llm2_proxy.add_reset_peer()
    response = ask(service, timeout_s=120)
    assert response.provider == "secondary"
    first = response.attempts[0]
    assert (first.provider, first.outcome, first.calls) == ("primary", FAILED, 2)
    assert "unreachable" in first.reason


def _stream(
    service: RunningService, on_first_delta: Callable[[], object] = lambda: None
) -> tuple[list[str], generation_pb2.GenerateResponse | None, grpc.RpcError | None]:
    """The deltas, the final message (None if the stream failed) and the error, if any."""
    request = generation_pb2.GenerateStreamRequest(
        request=generation_pb2.GenerateRequest(
            question=QUESTION, passages=PASSAGES, max_output_tokens=64
        )
    )
    deltas: list[str] = []
    with grpc.insecure_channel(service.target) as channel:
        stub = generation_pb2_grpc.GenerationServiceStub(channel)
        try:
            for message in stub.GenerateStream(request, timeout=120):
                if message.WhichOneof("event") == "done":
                    return deltas, message.done, None
                deltas.append(message.text_delta)
                if len(deltas) == 1:
                    on_first_delta()
        except grpc.RpcError as error:
            return deltas, None, error
    raise AssertionError("the stream ended without its final message")


def test_a_stream_that_goes_silent_after_its_first_token_ends_with_a_clear_status(
    llm2_proxy: Proxy, service: RunningService
) -> None:
    # From the first delta on, nothing more gets through and the connection stays open.
    deltas, done, error = _stream(service, on_first_delta=lambda: llm2_proxy.add_timeout(0))
    assert done is None
    assert deltas  # the primary's first token(s), never followed by another provider's text
    assert isinstance(error, grpc.Call)
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    details = error.details() or ""
    assert "primary failed mid-stream" in details
    assert "stream stalled" in details


def test_a_stream_whose_primary_sends_nothing_falls_back_before_the_first_token(
    llm2_proxy: Proxy, service: RunningService
) -> None:
    llm2_proxy.add_timeout(0)
    deltas, done, error = _stream(service)
    assert error is None
    assert done is not None
    assert done.provider == "secondary"
    assert "".join(deltas) == done.text  # every delta from the secondary: nothing spliced
    first = done.attempts[0]
    assert (first.provider, first.outcome) == ("primary", FAILED)
