"""Settings every service shares, read from environment variables and validated at start-up."""

from __future__ import annotations

import sys
from typing import Annotated, Literal, TypeVar

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from ragplane.runtime.channels import ChannelSettings
from ragplane.runtime.edge import StringLimits
from ragplane.runtime.tls import TlsSettings

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
# The rules of the shared settings below, stated once: a service that changes one's default
# (its own port, RETRIEVAL_REDIS_TIMEOUT_S) restates only the default.
Port = Annotated[int, Field(ge=1, le=65535)]
# A duration, more than none.
Seconds = Annotated[float, Field(gt=0)]


class ServiceSettings(BaseSettings):
    """Server settings common to all services.

    Subclasses set an env_prefix (for example ``EMBEDDING_``) so that the four services can be
    configured from one environment: ``EMBEDDING_PORT``, ``QUERY_PORT``, ...
    """

    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    host: str = "127.0.0.1"
    port: Port
    # Prometheus metrics over HTTP; 0 turns the endpoint off.
    metrics_port: int = Field(default=0, ge=0, le=65535)
    # In-flight calls get this long to finish after SIGTERM before they are cancelled.
    grace_period_s: Seconds = 10.0
    # Time between reporting NOT_SERVING and refusing new calls, so that load balancers
    # and readiness probes see the change before connections are refused.
    drain_delay_s: float = Field(default=1.0, ge=0)
    max_message_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    keepalive_time_s: Seconds = 30.0
    keepalive_timeout_s: Seconds = 10.0
    # A client connection is closed (GOAWAY) after this long, give or take 10%, so that clients
    # resolve the service's name again and spread their calls over replicas added since; calls
    # in flight then get max_connection_age_grace_s to finish (longer than the longest call: a
    # generation may take 120 s).
    max_connection_age_s: Seconds = 60.0
    max_connection_age_grace_s: Seconds = 130.0
    log_level: LogLevel = "INFO"
    # Shared by every service: RAGPLANE_TLS_* (see ragplane.runtime.tls).
    tls: TlsSettings = Field(default_factory=TlsSettings)
    # Shared by every service: RAGPLANE_CHANNEL_* (see ragplane.runtime.channels).
    channels: ChannelSettings = Field(default_factory=ChannelSettings)

    def string_limits(self) -> StringLimits:
        """How long each string field of a request may be (checked before anything else)."""
        return StringLimits()


class RedisSettings(BaseSettings):
    """How a service reaches Redis (its own prefix: QUERY_REDIS_URL, EMBEDDING_REDIS_URL, ...).

    An empty URL turns off what the service keeps in Redis: the one convention for "off".
    """

    redis_url: str = ""
    # Seconds one Redis call may take before the call counts as failed.
    redis_timeout_s: Seconds = 0.25
    # After this many Redis failures in a row, Redis is left alone for redis_retry_after_s.
    redis_fail_max: int = Field(default=3, ge=1)
    redis_retry_after_s: Seconds = 5.0

    @property
    def redis_enabled(self) -> bool:
        return bool(self.redis_url)


class WeaviateSettings(BaseSettings):
    """How a service reaches Weaviate (its own prefix: RETRIEVAL_WEAVIATE_HOST, ...)."""

    weaviate_host: str = "127.0.0.1"
    weaviate_http_port: Port = 8080
    weaviate_grpc_port: Port = 50060
    # Seconds to wait for one Weaviate call.
    weaviate_timeout_s: Seconds = 30.0


class BreakerSettings(BaseSettings):
    """The circuit breakers a service puts in front of what it calls."""

    # Failures in a row that open a breaker, and how long it then stays open.
    breaker_fail_max: int = Field(default=5, ge=1)
    breaker_reset_timeout_s: Seconds = 10.0


SettingsT = TypeVar("SettingsT", bound=BaseSettings)


def describe_validation_error(settings_class: type[BaseSettings], error: ValidationError) -> str:
    """One line per bad variable, naming the environment variable and what is wrong with it."""
    prefix = _owner(settings_class, error.title).model_config.get("env_prefix", "")
    lines = []
    for problem in error.errors():
        field = ".".join(str(part) for part in problem["loc"])
        if not field:
            # A rule over several fields: its message names the variables.
            lines.append(problem["msg"])
            continue
        variable = f"{prefix}{field}".upper()
        value = problem.get("input")
        shown = "" if problem["type"] == "missing" else f"={value!r}"
        lines.append(f"{variable}{shown}: {problem['msg']}")
    return "\n".join(lines)


def _owner(settings_class: type[BaseSettings], title: str) -> type[BaseSettings]:
    """The class whose validation failed: settings_class or one of its nested settings (TLS,
    channels), which read variables of their own prefix."""
    for field in settings_class.model_fields.values():
        nested = field.annotation
        if (
            isinstance(nested, type)
            and issubclass(nested, BaseSettings)
            and nested.__name__ == title
        ):
            return nested
    return settings_class


def load_settings(settings_class: type[SettingsT]) -> SettingsT:
    """Read settings from the environment, or exit with a message naming each bad variable."""
    try:
        return settings_class()
    except ValidationError as error:
        print(
            f"invalid configuration:\n{describe_validation_error(settings_class, error)}",
            file=sys.stderr,
        )
        raise SystemExit(2) from None
