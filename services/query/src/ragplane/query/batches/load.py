"""Interactive queries in flight on this service: the batch worker gives way to them."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, aclosing, contextmanager, nullcontext
from typing import Protocol, TypeVar

from ragplane.runtime.context import RpcContext


class InteractiveLoad:
    """Counts interactive queries; ``room()`` waits while ``threshold`` or more are in flight."""

    def __init__(self, threshold: int) -> None:
        self._threshold = threshold
        self._in_flight = 0
        self._room = asyncio.Event()
        self._room.set()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @contextmanager
    def track(self) -> Iterator[None]:
        self._in_flight += 1
        self._update()
        try:
            yield
        finally:
            self._in_flight -= 1
            self._update()

    def _update(self) -> None:
        if self._in_flight >= self._threshold:
            self._room.clear()
        else:
            self._room.set()

    async def room(self) -> None:
        await self._room.wait()


class HasInteractiveLoad(Protocol):
    @property
    def interactive_load(self) -> InteractiveLoad | None: ...


_S = TypeVar("_S", bound=HasInteractiveLoad)
_Q = TypeVar("_Q")
_R = TypeVar("_R")


def _tracked(owner: HasInteractiveLoad) -> AbstractContextManager[None]:
    load = owner.interactive_load
    return load.track() if load is not None else nullcontext()


def interactive(
    method: Callable[[_S, _Q, RpcContext], Awaitable[_R]],
) -> Callable[[_S, _Q, RpcContext], Awaitable[_R]]:
    """Count a unary RPC as interactive load while it runs."""

    @functools.wraps(method)
    async def counted(self: _S, request: _Q, context: RpcContext) -> _R:
        with _tracked(self):
            return await method(self, request, context)

    return counted


def interactive_stream(
    method: Callable[[_S, _Q, RpcContext], AsyncGenerator[_R, None]],
) -> Callable[[_S, _Q, RpcContext], AsyncGenerator[_R, None]]:
    """Count a streaming RPC as interactive load until its stream ends."""

    @functools.wraps(method)
    async def counted(self: _S, request: _Q, context: RpcContext) -> AsyncGenerator[_R, None]:
        # aclosing: a caller that goes away closes the whole stream at once, down to the
        # generation call, as every other level of the query stream does.
        with _tracked(self):
            async with aclosing(method(self, request, context)) as messages:
                async for message in messages:
                    yield message

    return counted
