"""Client channels from one service to another."""

from __future__ import annotations

import grpc

from ragplane.runtime.interceptors import client_interceptors


def open_channel(target: str, max_message_bytes: int = 32 * 1024 * 1024) -> grpc.aio.Channel:
    """An insecure channel to another ragplane service that carries trace context and request id."""
    options = [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
    ]
    return grpc.aio.insecure_channel(target, options=options, interceptors=client_interceptors())
