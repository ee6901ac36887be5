"""Provider breakers: which provider failures count, and their state in Redis, or in local
memory while Redis cannot be reached."""

from __future__ import annotations

import asyncio

import pybreaker
import pytest

from ragplane.cli.stack import free_ports
from ragplane.generation.breakers import (
    BreakerStatus,
    SharedBreakerStorage,
    breaker_status,
    new_breaker,
)
from ragplane.generation.providers import ProviderFailure
from ragplane.runtime.redis_client import SharedRedis
from ragplane.runtime.resilience import CLOSED, HALF_OPEN, OPEN, AsyncBreaker, CircuitOpen
from ragplane.runtime.settings import RedisSettings


async def _failing(error: BaseException) -> None:
    await asyncio.sleep(0)  # the failure happens after a real suspension point
    raise error


async def _call(breaker: AsyncBreaker, error: BaseException | None) -> None:
    async def call() -> None:
        if error is None:
            await asyncio.sleep(0)
        else:
            await _failing(error)

    await breaker.call(call)


async def _until_half_open(breaker: AsyncBreaker) -> None:
    """Polls the state an operator sees (the gauge's value) until reset_timeout has passed."""
    for _ in range(500):
        if breaker.state_value() == HALF_OPEN:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the breaker did not turn half-open within 5 s")


def _unavailable() -> ProviderFailure:
    return ProviderFailure("p", "HTTP 503", retryable=True, http_status=503)


async def test_provider_failures_open_the_breaker_and_keep_their_own_error() -> None:
    breaker = new_breaker("unit-open", fail_max=3, reset_timeout_s=60)
    for expected_count in (1, 2):
        with pytest.raises(ProviderFailure):
            await _call(breaker, _unavailable())
        assert breaker.breaker.fail_counter == expected_count
        assert breaker.state_value() == CLOSED
    # The third failure trips it; the provider's own error still reaches the caller.
    with pytest.raises(ProviderFailure):
        await _call(breaker, _unavailable())
    assert breaker.state_value() == OPEN
    # While open the call is refused before it runs.
    ran = False

    async def call() -> None:
        nonlocal ran
        ran = True

    with pytest.raises(CircuitOpen):
        await breaker.call(call)
    assert not ran


async def test_request_errors_and_cancellation_do_not_count() -> None:
    breaker = new_breaker("unit-excluded", fail_max=1, reset_timeout_s=60)
    bad_request = ProviderFailure("p", "HTTP 400", retryable=False, http_status=400)
    with pytest.raises(ProviderFailure):
        await _call(breaker, bad_request)
    with pytest.raises(asyncio.CancelledError):
        await _call(breaker, asyncio.CancelledError())
    assert breaker.state_value() == CLOSED
    # 401 means a broken configuration: it does count.
    unauthorized = ProviderFailure("p", "HTTP 401", retryable=False, http_status=401)
    with pytest.raises(ProviderFailure):
        await _call(breaker, unauthorized)
    assert breaker.state_value() == OPEN


async def test_after_reset_timeout_a_successful_trial_call_closes_it() -> None:
    breaker = new_breaker("unit-reset", fail_max=1, reset_timeout_s=0.2)
    with pytest.raises(ProviderFailure):
        await _call(breaker, _unavailable())
    assert breaker.state_value() == OPEN
    await _until_half_open(breaker)  # reported before pybreaker itself notices
    await _call(breaker, None)
    assert breaker.state_value() == CLOSED


async def test_a_failed_trial_call_opens_it_again() -> None:
    breaker = new_breaker("unit-trial", fail_max=1, reset_timeout_s=0.2)
    with pytest.raises(ProviderFailure):
        await _call(breaker, _unavailable())
    await _until_half_open(breaker)
    with pytest.raises(ProviderFailure):
        await _call(breaker, _unavailable())
    assert breaker.state_value() == OPEN


def _unreachable_redis_storage() -> SharedBreakerStorage:
    # A loopback port nothing listens on: every Redis call is refused at once.
    [port] = free_ports(1)
    settings = RedisSettings(redis_url=f"redis://127.0.0.1:{port}/0", redis_timeout_s=0.5)
    return SharedBreakerStorage("p", SharedRedis.connect("unit-redis", settings), "unit")


async def test_with_redis_unreachable_the_breaker_still_trips_in_local_memory() -> None:
    storage = _unreachable_redis_storage()
    await storage.sync()
    breaker = new_breaker("unit-failover", fail_max=2, reset_timeout_s=60, storage=storage)
    for _ in range(2):
        with pytest.raises(ProviderFailure):
            await _call(breaker, _unavailable())
    await storage.sync()
    assert breaker_status(breaker) == BreakerStatus(OPEN, 2, "local")


async def test_breaker_state_is_read_and_written_without_waiting_for_redis() -> None:
    # Every read pybreaker makes on the request path comes from memory: with Redis refusing
    # connections, a thousand reads never reach it (the sync is the only caller of Redis).
    storage = _unreachable_redis_storage()
    for _ in range(1000):
        assert storage.state == pybreaker.STATE_CLOSED
        assert storage.counter == 0
    assert storage.in_use == "local"


def test_a_breaker_without_redis_reports_local_storage() -> None:
    breaker = new_breaker("unit-memory", fail_max=3, reset_timeout_s=60)
    assert breaker_status(breaker) == BreakerStatus(CLOSED, 0, "local")
