"""Client channels from one service to another, balanced per call over every replica.

A target such as ``dns:///ragplane-embedding:50052`` (a headless Service in Kubernetes, or the
local stack's DNS server) resolves to one address per replica; the ``round_robin`` policy keeps
a connection to each and spreads the calls over them. Servers end connections after a maximum
age (ServiceSettings.max_connection_age_s), so clients resolve the name again and reach replicas
added since. Idempotent calls are retried on UNAVAILABLE, so a replica going away costs a retry
instead of an error; gRPC bounds every retry by the call's own deadline.

One set of variables (prefix RAGPLANE_CHANNEL_) serves every service's outbound channels.
"""

from __future__ import annotations

import json
from typing import Literal

import grpc
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ragplane.runtime.interceptors import client_interceptors
from ragplane.runtime.tls import TlsSettings

# Calls that may run twice without harm: the reads. Upsert, Delete, Generate and the tenant
# changes are not retried (a second Generate costs a second LLM bill).
IDEMPOTENT_METHODS: dict[str, tuple[str, ...]] = {
    "ragplane.v1.EmbeddingService": ("Embed", "Info"),
    "ragplane.v1.RetrievalService": ("Search", "ListTenants", "CountChunks"),
    "ragplane.v1.GenerationService": ("Providers",),
}


class ChannelSettings(BaseSettings):
    """RAGPLANE_CHANNEL_LOAD_BALANCING / _RETRY_MAX_ATTEMPTS / _RETRY_INITIAL_BACKOFF_S / ..."""

    model_config = SettingsConfigDict(env_prefix="RAGPLANE_CHANNEL_", frozen=True, extra="ignore")

    # round_robin: every call goes to the next ready replica; pick_first: one replica per channel.
    load_balancing: Literal["round_robin", "pick_first"] = "round_robin"
    # Ask each replica's health service and send no calls to one that reports NOT_SERVING (a
    # draining replica), before its connections close.
    health_checking: bool = True
    # Attempts of an idempotent call, the first included (gRPC allows at most 5); 1: no retries.
    retry_max_attempts: int = Field(default=3, ge=1, le=5)
    # Delay before a retry: random up to initial * multiplier**(n-1), capped at max.
    retry_initial_backoff_s: float = Field(default=0.05, gt=0)
    retry_max_backoff_s: float = Field(default=0.5, gt=0)
    retry_backoff_multiplier: float = Field(default=2.0, ge=1)
    # A name is resolved again at most this often (on a lost connection); gRPC's own default
    # is 30 s, too slow to find replicas that a scale-up just added.
    dns_min_resolution_interval_s: float = Field(default=2.0, ge=0)
    # Servers refuse pings more often than every 10 s (server.server_options).
    keepalive_time_s: float = Field(default=30.0, ge=10)
    keepalive_timeout_s: float = Field(default=10.0, gt=0)

    @model_validator(mode="after")
    def _backoff_in_order(self) -> ChannelSettings:
        if self.retry_max_backoff_s < self.retry_initial_backoff_s:
            raise ValueError(
                "RAGPLANE_CHANNEL_RETRY_MAX_BACKOFF_S must be at least "
                "RAGPLANE_CHANNEL_RETRY_INITIAL_BACKOFF_S"
            )
        return self

    def service_config(self) -> str:
        """The gRPC service config (JSON) of every channel: balancing, health and retries."""
        config: dict[str, object] = {"loadBalancingConfig": [{self.load_balancing: {}}]}
        if self.health_checking:
            config["healthCheckConfig"] = {"serviceName": ""}
        if self.retry_max_attempts > 1:
            config["methodConfig"] = [
                {
                    "name": [
                        {"service": service, "method": method}
                        for service, methods in IDEMPOTENT_METHODS.items()
                        for method in methods
                    ],
                    "retryPolicy": {
                        "maxAttempts": self.retry_max_attempts,
                        "initialBackoff": _duration(self.retry_initial_backoff_s),
                        "maxBackoff": _duration(self.retry_max_backoff_s),
                        "backoffMultiplier": self.retry_backoff_multiplier,
                        "retryableStatusCodes": ["UNAVAILABLE"],
                    },
                }
            ]
        return json.dumps(config)

    def options(self) -> list[tuple[str, int | str]]:
        return [
            ("grpc.service_config", self.service_config()),
            # Only this service config applies, never one published in DNS TXT records.
            ("grpc.service_config_disable_resolution", 1),
            ("grpc.enable_retries", 1),
            ("grpc.dns_min_time_between_resolutions_ms", _ms(self.dns_min_resolution_interval_s)),
            ("grpc.keepalive_time_ms", _ms(self.keepalive_time_s)),
            ("grpc.keepalive_timeout_ms", _ms(self.keepalive_timeout_s)),
            ("grpc.keepalive_permit_without_calls", 1),
        ]


def _duration(seconds: float) -> str:
    """A protobuf Duration in JSON: "0.05s"."""
    return f"{seconds:.9f}".rstrip("0").rstrip(".") + "s"


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def open_channel(
    target: str,
    max_message_bytes: int = 32 * 1024 * 1024,
    tls: TlsSettings | None = None,
    settings: ChannelSettings | None = None,
) -> grpc.aio.Channel:
    """A channel to another ragplane service that carries trace context and request id.

    Plaintext unless ``tls`` says to dial with TLS (and a client certificate for mutual TLS).
    ``settings`` default to the RAGPLANE_CHANNEL_* variables (validated at start-up with the
    rest of ServiceSettings).
    """
    channel_settings = ChannelSettings() if settings is None else settings
    options: list[tuple[str, int | str]] = [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
        *channel_settings.options(),
    ]
    if tls is not None and tls.dials_tls:
        return grpc.aio.secure_channel(
            target,
            tls.channel_credentials(),
            options=[*options, *tls.channel_options()],
            interceptors=client_interceptors(),
        )
    return grpc.aio.insecure_channel(target, options=options, interceptors=client_interceptors())
