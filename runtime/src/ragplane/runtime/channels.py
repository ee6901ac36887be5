"""Client channels from one service to another."""

from __future__ import annotations

import grpc

from ragplane.runtime.interceptors import client_interceptors
from ragplane.runtime.tls import TlsSettings


def open_channel(
    target: str, max_message_bytes: int = 32 * 1024 * 1024, tls: TlsSettings | None = None
) -> grpc.aio.Channel:
    """A channel to another ragplane service that carries trace context and request id.

    Plaintext unless ``tls`` says to dial with TLS (and a client certificate for mutual TLS).
    """
    options: list[tuple[str, int | str]] = [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
    ]
    if tls is not None and tls.dials_tls:
        return grpc.aio.secure_channel(
            target,
            tls.channel_credentials(),
            options=[*options, *tls.channel_options()],
            interceptors=client_interceptors(),
        )
    return grpc.aio.insecure_channel(target, options=options, interceptors=client_interceptors())
