"""pybreaker driven explicitly around awaited calls: failures inside the with-block count;
state in Redis, or in local memory while Redis cannot be reached."""

from __future__ import annotations

import asyncio

import pybreaker
import pytest

from ragplane.cli.stack import free_ports
from ragplane.generation.breakers import (
    BreakerStatus,
    FailoverStorage,
    breaker_status,
    new_breaker,
    redis_client,
)
from ragplane.generation.providers import ProviderFailure
from ragplane.runtime.breakers import CLOSED, HALF_OPEN, OPEN, breaker_state_value


async def _failing(error: BaseException) -> None:
    await asyncio.sleep(0)  # the failure happens after a real suspension point
    raise error


async def _call(breaker: pybreaker.CircuitBreaker, error: BaseException | None) -> None:
    with breaker.calling():
        if error is None:
            await asyncio.sleep(0)
        else:
            await _failing(error)


def _unavailable() -> ProviderFailure:
    return ProviderFailure("p", "HTTP 503", retryable=True, http_status=503)


async def test_failures_raised_after_an_await_inside_calling_open_the_breaker() -> None:
    breaker = new_breaker("unit-open", fail_max=3, reset_timeout_s=60)
    for expected_count in (1, 2):
        with pytest.raises(ProviderFailure):
            await _call(breaker, _unavailable())
        assert breaker.fail_counter == expected_count
        assert breaker_state_value(breaker) == CLOSED
    # The third failure trips it; the provider's own error still reaches the caller.
    with pytest.raises(ProviderFailure):
        await _call(breaker, _unavailable())
    assert breaker_state_value(breaker) == OPEN
    # While open the call is refused before the block runs.
    ran = False
    with pytest.raises(pybreaker.CircuitBreakerError), breaker.calling():
        ran = True
    assert not ran


async def test_the_decorator_never_trips_on_coroutines_which_is_why_calling_is_used() -> None:
    breaker = pybreaker.CircuitBreaker(fail_max=1, reset_timeout=60)

    @breaker
    async def guarded() -> None:
        await _failing(RuntimeError("boom"))

    for _ in range(3):
        with pytest.raises(RuntimeError):
            await guarded()
    assert breaker.current_state == pybreaker.STATE_CLOSED


async def test_request_errors_and_cancellation_do_not_count() -> None:
    breaker = new_breaker("unit-excluded", fail_max=1, reset_timeout_s=60)
    bad_request = ProviderFailure("p", "HTTP 400", retryable=False, http_status=400)
    with pytest.raises(ProviderFailure):
        await _call(breaker, bad_request)
    with pytest.raises(asyncio.CancelledError):
        await _call(breaker, asyncio.CancelledError())
    assert breaker_state_value(breaker) == CLOSED
    # 401 means a broken configuration: it does count.
    unauthorized = ProviderFailure("p", "HTTP 401", retryable=False, http_status=401)
    with pytest.raises(ProviderFailure):
        await _call(breaker, unauthorized)
    assert breaker_state_value(breaker) == OPEN


async def test_after_reset_timeout_a_successful_trial_call_closes_it() -> None:
    breaker = new_breaker("unit-reset", fail_max=1, reset_timeout_s=0.2)
    with pytest.raises(ProviderFailure):
        await _call(breaker, _unavailable())
    assert breaker_state_value(breaker) == OPEN
    await asyncio.sleep(0.25)
    assert breaker_state_value(breaker) == HALF_OPEN  # reported before pybreaker itself notices
    await _call(breaker, None)
    assert breaker_state_value(breaker) == CLOSED


async def test_a_failed_trial_call_opens_it_again() -> None:
    breaker = new_breaker("unit-trial", fail_max=1, reset_timeout_s=0.2)
    with pytest.raises(ProviderFailure):
        await _call(breaker, _unavailable())
    await asyncio.sleep(0.25)
    with pytest.raises(ProviderFailure):
        await _call(breaker, _unavailable())
    assert breaker_state_value(breaker) == OPEN


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _unreachable_redis_storage(clock: _Clock) -> FailoverStorage:
    # A loopback port nothing listens on: every Redis call is refused at once.
    [port] = free_ports(1)
    client = redis_client(f"redis://127.0.0.1:{port}/0", timeout_s=0.5)
    return FailoverStorage("p", client, "unit", retry_s=5.0, clock=clock)


async def test_with_redis_unreachable_the_breaker_still_trips_in_local_memory() -> None:
    # pybreaker's own Redis storage would swallow the error and report "closed, no failures"
    # forever; the failover keeps counting in this process instead.
    clock = _Clock()
    storage = _unreachable_redis_storage(clock)
    breaker = new_breaker("unit-failover", fail_max=2, reset_timeout_s=60, storage=storage)
    for _ in range(2):
        with pytest.raises(ProviderFailure):
            await _call(breaker, _unavailable())
    assert breaker_status(breaker) == BreakerStatus(OPEN, 2, "local")


def test_an_unreachable_redis_is_tried_again_only_after_retry_s() -> None:
    clock = _Clock()
    storage = _unreachable_redis_storage(clock)
    attempts: list[str] = []
    real_execute = storage._client.execute_command

    def counting_execute(*args: object, **options: object) -> object:
        attempts.append(str(args[0]))
        return real_execute(*args, **options)

    storage._client.execute_command = counting_execute  # type: ignore[method-assign]
    assert storage.state == pybreaker.STATE_CLOSED
    assert storage.in_use == "local"
    tried = len(attempts)
    assert tried >= 1
    storage.increment_counter()
    clock.now = 4.9
    assert storage.counter == 1  # from local memory, Redis left alone
    assert len(attempts) == tried
    clock.now = 5.0
    assert storage.counter == 1
    assert len(attempts) > tried  # tried again, still down, still local
    assert storage.in_use == "local"


def test_a_breaker_without_redis_reports_local_storage() -> None:
    breaker = new_breaker("unit-memory", fail_max=3, reset_timeout_s=60)
    assert breaker_status(breaker) == BreakerStatus(CLOSED, 0, "local")
