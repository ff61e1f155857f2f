"""Faust's consumer without four asyncio tasks per message.

Faust hands every fetched message to its conductor with ``await self.wait_first(callback(message),
self.suspend_flow.wait())`` (``Consumer._drain_messages``): four tasks (the callback, the flow
suspension, the service's stopped and crashed events) and an ``asyncio.wait``, so that a rebalance
can abandon a delivery that waits on a full stream buffer. Almost every delivery never waits: the
conductor decodes the message and puts it in the stream's queue without suspending. That machinery
was ~30 % of a worker's main thread on one event per record.

``FastPathConsumer.wait_first`` first runs the first coroutine inline, up to its first suspension.
When it finishes there (the common case) the result is what Faust's ``wait_first`` would have
returned, with no task created. When it suspends, the started coroutine goes on as a task under
Faust's own ``wait_first`` with the same other waitables, so a suspension of flow still abandons it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from typing import Any

import faust
from mode.services import WaitResults


class _Resumed:
    """An awaitable that continues a coroutine already run to its first suspension, ``blocked_on``
    being what it yielded there (what a task would have waited on)."""

    __slots__ = ("blocked_on", "coro")

    def __init__(self, coro: Any, blocked_on: Any) -> None:
        self.coro = coro
        self.blocked_on = blocked_on

    def __await__(self) -> Generator[Any, None, Any]:
        coro, blocked_on = self.coro, self.blocked_on
        while True:
            try:
                yield blocked_on
            except BaseException as exc:  # cancellation included: the coroutine sees it where it waits
                try:
                    blocked_on = coro.throw(exc)
                except StopIteration as done:
                    return done.value
            else:
                try:
                    blocked_on = coro.send(None)
                except StopIteration as done:
                    return done.value


class FastPathConsumer:
    """Mixin for a Faust transport's ``Consumer`` (``consumer_class``)."""

    async def wait_first(self, *coros: Any, timeout: Any = None) -> Any:
        first = coros[0] if coros else None
        if timeout is not None or not asyncio.iscoroutine(first):
            return await super().wait_first(*coros, timeout=timeout)  # type: ignore[misc]
        try:
            blocked_on = first.send(None)
        except StopIteration as done:
            _close(coros[1:])
            if self._stopped.is_set() or self._crashed.is_set():  # type: ignore[attr-defined]
                return WaitResults([], [], True)  # what Faust's wait_first says when the service stops
            return WaitResults([first], [done.value], False)
        except BaseException:
            _close(coros[1:])
            raise
        resumed = _Resumed(first, blocked_on)
        res = await super().wait_first(resumed, *coros[1:])  # type: ignore[misc]
        return res._replace(done=[first if c is resumed else c for c in res.done])


def _close(coros: tuple[Any, ...]) -> None:
    """Close coroutines that will never run (no "never awaited" warning)."""
    for c in coros:
        if asyncio.iscoroutine(c):
            c.close()


class FastPathApp(faust.App):
    """A Faust app whose consumer delivers messages through the inline fast path."""

    def _new_transport(self) -> Any:
        transport = super()._new_transport()
        base = transport.Consumer
        transport.Consumer = type(f"FastPath{base.__name__}", (FastPathConsumer, base), {})  # type: ignore[misc]
        return transport
