"""TEST DOUBLE for failures no real LLM server produces on demand (401, 429 with Retry-After,
5xx, context overflow, broken streams): an OpenAI-compatible endpoint in front of a real
llama-cpp-python server that fails scripted or random requests and forwards the rest unchanged.

Used by the integration tests and by ``make bench-generation`` (a share of failed primary calls).
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal


@dataclass(frozen=True)
class Fault:
    status: int
    message: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StreamFault:
    """A 200 event stream that sends one good chunk, then goes wrong in the given way."""

    kind: Literal["cut", "stall", "malformed", "slow"]
    stall_s: float = 0.0


GOOD_CHUNK = {
    "id": "chatcmpl-double",
    "object": "chat.completion.chunk",
    "created": 0,
    "model": "double",
    "choices": [{"index": 0, "delta": {"content": "The impeller"}, "finish_reason": None}],
}


class FaultInjectingProxy:
    """TEST DOUBLE: an OpenAI-compatible endpoint that answers the next requests with scripted
    faults, or a random share of requests with random faults, and forwards every other request
    to a real LLM server unchanged."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream = f"http://127.0.0.1:{upstream_port}"
        self.completions = 0  # chat completion requests received, faulted or forwarded
        self.injected = 0  # chat completion requests answered with a fault
        self._faults: deque[Fault | StreamFault] = deque()
        self._random_faults: list[Fault] = []
        self._share = 0.0
        self._random = random.Random(0)
        # Set when a client hung up on a "slow" stream before it ended.
        self.client_gone = threading.Event()
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                fault = proxy._next_fault(self.path)
                if isinstance(fault, StreamFault):
                    self._broken_stream(fault)
                    return
                if fault is not None:
                    payload = {"error": {"message": fault.message, "type": "injected_fault"}}
                    self._reply(fault.status, json.dumps(payload).encode(), fault.headers)
                    return
                request = urllib.request.Request(
                    proxy.upstream + self.path,
                    data=body,
                    headers={"Content-Type": "application/json"},
                    method="POST",
                )
                try:
                    with urllib.request.urlopen(request, timeout=120) as reply:
                        kind = reply.headers.get("Content-Type", "application/json")
                        self._reply(reply.status, reply.read(), {}, kind)
                except urllib.error.HTTPError as error:
                    self._reply(error.code, error.read(), {})

            def _broken_stream(self, fault: StreamFault) -> None:
                # Chunked transfer encoding, so that closing early is an incomplete body.
                self.protocol_version = "HTTP/1.1"
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                self._chunk(f"data: {json.dumps(GOOD_CHUNK)}\n\n".encode())
                if fault.kind == "cut":
                    self.close_connection = True  # no terminating chunk: the body is cut
                    return
                if fault.kind == "slow":
                    # A chunk every 0.2 s for 10 s: only a client that hangs up ends it early.
                    try:
                        for _ in range(50):
                            time.sleep(0.2)
                            self._chunk(f"data: {json.dumps(GOOD_CHUNK)}\n\n".encode())
                    except (BrokenPipeError, ConnectionResetError):
                        proxy.client_gone.set()
                        self.close_connection = True
                        return
                if fault.kind == "stall":
                    time.sleep(fault.stall_s)
                if fault.kind == "malformed":
                    self._chunk(b"data: {this is not json\n\n")
                self._chunk(b"data: [DONE]\n\n")
                self.wfile.write(b"0\r\n\r\n")
                self.close_connection = True

            def _chunk(self, data: bytes) -> None:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def _reply(
                self,
                status: int,
                body: bytes,
                headers: dict[str, str],
                content_type: str = "application/json",
            ) -> None:
                # The client may have hung up already (its deadline passed): nothing to tell it.
                with contextlib.suppress(ConnectionError):
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(body)))
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def fail_next(self, fault: Fault | StreamFault, count: int = 1) -> None:
        with self._lock:
            self._faults.extend([fault] * count)

    def fail_share(self, faults: list[Fault], share: float, seed: int = 0) -> None:
        """From now on answer each request with probability ``share`` with one of ``faults``,
        picked at random (reproducibly, from ``seed``); scripted faults still come first."""
        with self._lock:
            self._random_faults = list(faults)
            self._share = share
            self._random = random.Random(seed)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self._random_faults = []
            self._share = 0.0
        self.client_gone.clear()

    def _next_fault(self, path: str) -> Fault | StreamFault | None:
        with self._lock:
            if not path.endswith("/chat/completions"):
                return None
            self.completions += 1
            fault: Fault | StreamFault | None = None
            if self._faults:
                fault = self._faults.popleft()
            elif self._random_faults and self._random.random() < self._share:
                fault = self._random.choice(self._random_faults)
            if fault is not None:
                self.injected += 1
            return fault

    def __enter__(self) -> FaultInjectingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
