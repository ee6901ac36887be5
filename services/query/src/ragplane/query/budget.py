"""The time a request may still spend, from the caller's deadline."""

from __future__ import annotations

import time

from ragplane.runtime.errors import DeadlineExceeded


class Budget:
    def __init__(self, seconds: float) -> None:
        self._deadline = time.monotonic() + seconds

    def remaining(self, stage: str) -> float:
        """Seconds left for ``stage``; raises DEADLINE_EXCEEDED when none are."""
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded(f"the request's deadline passed before {stage}")
        return left
