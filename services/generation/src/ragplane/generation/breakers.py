"""One pybreaker circuit breaker per provider, driven explicitly around awaited calls.

pybreaker's decorator calls the function and inspects the result; for a coroutine function the
result is an un-awaited coroutine, so the failure happens later, outside the breaker, and it
never trips. ``with breaker.calling(): await ...`` runs the await inside the breaker instead.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pybreaker

from ragplane.generation.metrics import BREAKER_STATE
from ragplane.generation.providers import ProviderFailure

CLOSED, HALF_OPEN, OPEN = 0, 1, 2


def counts_as_failure(error: BaseException) -> bool:
    """Only failures that say the provider is unhealthy move its breaker towards open."""
    if isinstance(error, ProviderFailure):
        return error.provider_unhealthy
    # A cancelled call (the caller went away) says nothing about the provider.
    return not isinstance(error, asyncio.CancelledError | GeneratorExit)


def new_breaker(provider: str, fail_max: int, reset_timeout_s: float) -> pybreaker.CircuitBreaker:
    breaker = pybreaker.CircuitBreaker(
        fail_max=fail_max,
        reset_timeout=reset_timeout_s,
        name=provider,
        # pybreaker excludes an error when the callable returns True.
        exclude=[lambda error: not counts_as_failure(error)],
        # Keep the provider's own error when the breaker trips, so callers see why it failed.
        throw_new_error_on_trip=False,
    )
    # Computed at scrape time: pybreaker moves open -> half-open only on the next call, but
    # once reset_timeout has passed the breaker lets a trial call through, which is what an
    # operator wants to see.
    BREAKER_STATE.labels(provider=provider).set_function(lambda: state_value(breaker))
    return breaker


def state_value(breaker: pybreaker.CircuitBreaker) -> int:
    state = breaker.current_state
    if state == pybreaker.STATE_CLOSED:
        return CLOSED
    if state == pybreaker.STATE_HALF_OPEN:
        return HALF_OPEN
    opened_at = breaker._state_storage.opened_at  # no public accessor in pybreaker 1.4
    if opened_at is not None and datetime.now(UTC) >= opened_at + timedelta(
        seconds=breaker.reset_timeout
    ):
        return HALF_OPEN
    return OPEN
