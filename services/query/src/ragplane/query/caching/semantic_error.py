"""The semantic cache's failure, apart from the cache itself: the guard catches it without
importing weaviate-client, which a query service without the semantic cache never loads (it
takes longer to import than the rest of the service)."""

from __future__ import annotations

import structlog

log = structlog.get_logger(__name__)


class SemanticCacheError(Exception):
    """Weaviate failed during a semantic cache lookup or store.

    The message is ragplane's own words (callers see it in a degradation); Weaviate's raw
    error text goes to the log only.
    """

    @classmethod
    def of(cls, what: str, error: Exception) -> SemanticCacheError:
        log.warning("semantic cache: Weaviate failed", what=what, error=str(error))
        return cls(f"Weaviate could not {what} ({type(error).__name__})")
