"""The time a request may still spend, from the caller's deadline, and how stages share it."""

from __future__ import annotations

import time

from ragplane.runtime.errors import DeadlineExceeded


class Budget:
    def __init__(self, seconds: float) -> None:
        self.total_s = seconds
        self._deadline = time.monotonic() + seconds

    def left_s(self) -> float:
        return max(0.0, self._deadline - time.monotonic())

    def remaining(self, stage: str) -> float:
        """Seconds left for ``stage``; raises DEADLINE_EXCEEDED when none are."""
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded(f"the request's deadline passed before {stage}")
        return left

    def for_stage(self, cap_s: float, reserve_s: float, essential_reserve_s: float) -> float:
        """Time a stage may take: its cap, less what the stages after it are promised.

        ``reserve_s`` is kept free when that leaves the stage any time at all; otherwise only
        ``essential_reserve_s`` is (a degraded later stage beats skipping this one).
        """
        left = self.left_s()
        wanted = min(cap_s, left - reserve_s)
        if wanted > 0:
            return wanted
        return max(0.0, min(cap_s, left - essential_reserve_s))
