"""Reading a pybreaker circuit breaker's state as a number for a Prometheus gauge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pybreaker

CLOSED, HALF_OPEN, OPEN = 0, 1, 2


def breaker_state_value(breaker: pybreaker.CircuitBreaker) -> int:
    """0 closed, 1 half-open, 2 open.

    pybreaker moves open -> half-open only on the next call, but once reset_timeout has passed
    the breaker lets a trial call through, which is what an operator wants to see.
    """
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
