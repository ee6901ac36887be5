"""Exponential backoff with full jitter, bounded by Retry-After and the caller's deadline."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Backoff:
    base_delay_s: float
    max_delay_s: float
    uniform: Callable[[float, float], float] = field(default=random.uniform)

    def delay(self, retry: int, retry_after_s: float | None = None) -> float:
        """Wait before retry number ``retry`` (0 for the first retry).

        Full jitter (uniform between 0 and the exponential cap) spreads retries of many callers
        apart; a server's Retry-After is a floor, since retrying earlier only earns another 429.
        """
        cap = min(self.max_delay_s, self.base_delay_s * (2**retry))
        jittered = self.uniform(0.0, cap)
        return max(jittered, retry_after_s) if retry_after_s is not None else jittered


class Deadline:
    """The caller's remaining time, measured on the monotonic clock; None means unbounded."""

    def __init__(
        self, remaining_s: float | None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._clock = clock
        self._at = None if remaining_s is None else clock() + remaining_s

    def remaining(self) -> float | None:
        return None if self._at is None else self._at - self._clock()

    def allows(self, seconds: float) -> bool:
        remaining = self.remaining()
        return remaining is None or remaining >= seconds
