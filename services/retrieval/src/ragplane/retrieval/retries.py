"""Bounded retries of idempotent Weaviate calls that failed for a transient reason."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import structlog
from weaviate.exceptions import WeaviateBaseError

from ragplane.runtime.errors import Unavailable
from ragplane.runtime.resilience import Backoff, Deadline

log = structlog.get_logger(__name__)
T = TypeVar("T")


def weaviate_unavailable(what: str, error: WeaviateBaseError) -> Unavailable:
    """UNAVAILABLE in ragplane's words; Weaviate's own error text goes to the log only."""
    log.warning("Weaviate call failed", what=what, error=str(error))
    return Unavailable(f"Weaviate could not {what} ({_kind_of(error)}); try again later")


def _kind_of(error: WeaviateBaseError) -> str:
    text = str(error).lower()
    if "connect" in text or "unavailable" in text:
        return "it is unreachable"
    if "timeout" in text or "timed out" in text or "deadline" in text:
        return "it timed out"
    return "it reported an error"


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` tries in all, waiting as ``backoff`` says between them."""

    attempts: int
    backoff: Backoff

    @classmethod
    def of(cls, attempts: int, first_backoff_s: float, max_backoff_s: float = 4.0) -> RetryPolicy:
        return cls(attempts, Backoff(first_backoff_s, max_backoff_s))

    def wait_s(self, failed_attempts: int) -> float:
        return self.backoff.delay(failed_attempts - 1)


async def retry_transient(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    what: str,
    deadline: Deadline | None = None,
) -> T:
    """Run ``call``; on a Weaviate client error try again after a backoff, within ``deadline``.

    Only idempotent calls come here (writes use deterministic ids), so a retry after a failure
    whose outcome is unknown cannot duplicate anything. Raises UNAVAILABLE when retries run out.
    """
    failures = 0
    while True:
        try:
            return await call()
        except WeaviateBaseError as error:
            failures += 1
            wait_s = policy.wait_s(failures)
            out_of_time = deadline is not None and not deadline.allows(wait_s)
            if failures >= policy.attempts or out_of_time:
                raise weaviate_unavailable(f"{what} after {failures} attempt(s)", error) from error
            log.warning(
                "transient Weaviate error; retrying", what=what, retry_in_s=wait_s, error=str(error)
            )
            await asyncio.sleep(wait_s)
