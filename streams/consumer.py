"""Faust's consumer without four asyncio tasks per message, and without 1.5 s fetch stalls.

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

Its aiokafka consumer lets the broker hold an empty fetch ``FETCH_MAX_WAIT_MS`` instead of 1.5 s.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Generator
from typing import Any

import faust
from mode.services import WaitResults

# How long the broker may hold a fetch that finds no record. Faust asks aiokafka for 1500 ms, and
# aiokafka has one fetch in flight per broker: while an idle partition's fetch (the feedback topic's,
# always assigned) waits out those 1.5 s, the busy partition, its last records consumed, cannot be
# fetched again. A worker at 3.9k events/s sat idle ~1 s in every 2 and paged events 1-4 s late; at
# 100 ms an idle partition costs the broker ten empty fetches a second.
FETCH_MAX_WAIT_MS = 100

log = logging.getLogger("stagewatch.worker")


def short_fetch_wait(consumer: Any) -> Any:
    """``consumer`` (an ``aiokafka.AIOKafkaConsumer`` not started yet) with ``FETCH_MAX_WAIT_MS``: its
    ``start()`` builds the fetcher from this attribute (Faust passes a fixed value to the constructor)."""
    if hasattr(consumer, "_fetch_max_wait_ms"):
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
    else:
        log.warning("aiokafka has no _fetch_max_wait_ms any more: fetches keep Faust's 1.5 s wait")
    return consumer


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
    """Mixin for a Faust transport's ``Consumer`` (``FastPathApp``)."""

    def _new_consumer_thread(self) -> Any:
        thread = super()._new_consumer_thread()  # type: ignore[misc]
        create = thread._create_worker_consumer

        def create_worker_consumer(transport: Any) -> Any:
            return short_fetch_wait(create(transport))

        thread._create_worker_consumer = create_worker_consumer
        return thread

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
    """A Faust app whose consumer delivers messages through the inline fast path, its aiokafka
    consumer with ``FETCH_MAX_WAIT_MS``."""

    def _new_transport(self) -> Any:
        transport = super()._new_transport()
        base = transport.Consumer
        transport.Consumer = type(f"FastPath{base.__name__}", (FastPathConsumer, base), {})  # type: ignore[misc]
        return transport
