"""A value that exists only once a service has warmed up."""

from __future__ import annotations

from typing import Generic, TypeVar

from ragplane.runtime.errors import Unavailable

T = TypeVar("T")


class WarmedUp(Generic[T]):
    """Holds what warm-up produced; calls that arrive earlier get UNAVAILABLE, not a crash."""

    def __init__(self, what: str) -> None:
        self._what = what
        self._value: T | None = None

    def set(self, value: T) -> None:
        self._value = value

    def peek(self) -> T | None:
        return self._value

    def get(self) -> T:
        if self._value is None:
            raise Unavailable(f"{self._what} is still starting; retry shortly")
        return self._value
