"""The one way a ragplane service connects to Weaviate.

Only the services that talk to Weaviate import this module (retrieval, and the query service's
semantic cache), so the embedding and generation images need not carry weaviate-client. The
tenant-name rule Weaviate imposes is ragplane.runtime.fields.TENANT_PATTERN, which every
service checks at its edge.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

# httpx is weaviate-client's own HTTP library (a dependency of it), imported for its errors.
import httpx
import weaviate
from weaviate.classes.init import AdditionalConfig, Timeout
from weaviate.exceptions import WeaviateBaseError

from ragplane.runtime.settings import WeaviateSettings

# What a Weaviate call raises when Weaviate is unreachable, slow or failing: the client's own
# errors, and httpx's when a connection breaks mid-request (the client lets those through as
# they are: a SIGKILL of Weaviate during a REST call does that).
WeaviateFailure = (WeaviateBaseError, httpx.TransportError)

# Connecting (a handshake, not a query) never deserves more than this.
_MAX_CONNECT_S = 10.0


def weaviate_client(settings: WeaviateSettings) -> weaviate.WeaviateAsyncClient:
    """An async client, not yet connected: Weaviate may start after the service does."""
    timeout_s = settings.weaviate_timeout_s
    return weaviate.use_async_with_custom(
        http_host=settings.weaviate_host,
        http_port=settings.weaviate_http_port,
        http_secure=False,
        grpc_host=settings.weaviate_host,
        grpc_port=settings.weaviate_grpc_port,
        grpc_secure=False,
        additional_config=AdditionalConfig(
            timeout=Timeout(init=min(timeout_s, _MAX_CONNECT_S), query=timeout_s, insert=timeout_s)
        ),
    )


# The batch writes weaviate-client sent again by itself in the running task (see resends_seen).
_resends: ContextVar[list[str] | None] = ContextVar("weaviate_client_resends", default=None)
# weaviate-client's own logger, and the words of the line it logs before it sends a call again
# (weaviate/retry.py: "... received exception: ... Retrying with exponential backoff ...").
_CLIENT_LOGGER = "weaviate-client"
_RESEND_WORDS = "received exception"


class _ResendRecorder(logging.Filter):
    """Notes each call the client is about to send again, in the context of the task sending it."""

    def filter(self, record: logging.LogRecord) -> bool:
        seen = _resends.get()
        message = record.getMessage()
        if seen is not None and _RESEND_WORDS in message:
            seen.append(message)
        return True


_client_log = logging.getLogger(_CLIENT_LOGGER)
_client_log.addFilter(_ResendRecorder())
# The client logs its resends at INFO (its default level); the record must be made to be seen.
if not _client_log.isEnabledFor(logging.INFO):
    _client_log.setLevel(logging.INFO)


@contextmanager
def resends_seen() -> Iterator[list[str]]:
    """The calls weaviate-client sent again on its own (after UNAVAILABLE) within the block.

    The client re-sends a batch write that broke off, unchanged, once Weaviate answers again. A
    caller that must know whether its write went through in one piece (the chunk store) watches
    for that here: the list fills with the client's log line for each resend in this task.
    """
    seen: list[str] = []
    token = _resends.set(seen)
    try:
        yield seen
    finally:
        _resends.reset(token)
