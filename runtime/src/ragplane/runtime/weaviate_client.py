"""The one way a ragplane service connects to Weaviate.

Only the services that talk to Weaviate import this module (retrieval, and the query service's
semantic cache), so the embedding and generation images need not carry weaviate-client. The
tenant-name rule Weaviate imposes is ragplane.runtime.fields.TENANT_PATTERN, which every
service checks at its edge.
"""

from __future__ import annotations

import weaviate
from weaviate.classes.init import AdditionalConfig, Timeout

from ragplane.runtime.settings import WeaviateSettings

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
