"""streams.consumer: the inline delivery says what Faust's ``wait_first`` says, without its tasks."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest
from mode import Service

from streams.consumer import FastPathConsumer


class Stock(Service):
    pass


class Fast(FastPathConsumer, Stock):
    pass


def run(body: Any) -> Any:
    return asyncio.run(body())


def tasks_created_during(fn: Any) -> Any:
    """(result of ``await fn()``, number of tasks created meanwhile)."""
    async def go() -> tuple[Any, int]:
        loop = asyncio.get_running_loop()
        created = 0
        factory = loop.get_task_factory()

        def counting(loop: Any, coro: Any, **kw: Any) -> Any:
            nonlocal created
            created += 1
            return asyncio.Task(coro, loop=loop, **kw) if factory is None else factory(loop, coro, **kw)

        loop.set_task_factory(counting)
        try:
            return await fn(), created
        finally:
            loop.set_task_factory(factory)

    return asyncio.run(go())


async def deliver(into: list[str], value: str) -> str:
    into.append(value)
    return value.upper()


@pytest.mark.parametrize("cls", [Stock, Fast])
def test_a_delivery_that_never_waits_is_the_winner(cls: type) -> None:
    seen: list[str] = []

    other = asyncio.Event().wait()

    async def go() -> Any:
        return await cls().wait_first(deliver(seen, "m1"), other)

    res, tasks = tasks_created_during(go)
    assert seen == ["m1"]
    assert not res.stopped and res.results == ["M1"] and len(res.done) == 1
    assert inspect.getcoroutinestate(other) == "CORO_CLOSED"  # not left to warn "never awaited"
    if cls is Fast:
        assert tasks == 0  # the point: no task for a delivery that never waits


def test_a_delivery_that_waits_goes_on_and_its_coroutine_is_the_winner() -> None:
    async def go() -> Any:
        svc = Fast()
        gate, suspend = asyncio.Event(), asyncio.Event()
        steps: list[str] = []

        async def slow() -> str:
            steps.append("start")
            await gate.wait()
            steps.append("after gate")
            await asyncio.sleep(0)
            steps.append("end")
            return "done"

        coro = slow()
        asyncio.get_running_loop().call_later(0.01, gate.set)
        res = await svc.wait_first(coro, suspend.wait())
        return coro, res, steps

    coro, res, steps = run(go)
    assert steps == ["start", "after gate", "end"]
    assert res.done == [coro] and res.results == ["done"] and not res.stopped


def test_a_waiting_delivery_is_abandoned_when_flow_is_suspended() -> None:
    async def go() -> Any:
        svc = Fast()
        never, suspend = asyncio.Event(), asyncio.Event()
        cleanup: list[str] = []

        async def blocked() -> None:
            try:
                await never.wait()
            finally:
                cleanup.append("cancelled")

        asyncio.get_running_loop().call_later(0.01, suspend.set)
        res = await svc.wait_first(blocked(), suspend.wait())
        await asyncio.sleep(0)  # let the cancellation reach the coroutine
        return res, cleanup

    res, cleanup = run(go)
    assert cleanup == ["cancelled"]
    assert res.results == [True] and not res.stopped  # suspend.wait() won


def test_an_error_in_the_delivery_propagates() -> None:
    async def boom() -> None:
        raise ValueError("bad")

    other = asyncio.Event().wait()

    async def go() -> Any:
        return await Fast().wait_first(boom(), other)

    with pytest.raises(ValueError, match="bad"):
        run(go)
    assert inspect.getcoroutinestate(other) == "CORO_CLOSED"


@pytest.mark.parametrize("cls", [Stock, Fast])
def test_a_stopped_service_reports_stopped_after_delivering(cls: type) -> None:
    seen: list[str] = []

    async def go() -> Any:
        svc = cls()
        svc._stopped.set()
        return await svc.wait_first(deliver(seen, "m"), asyncio.Event().wait())

    res = run(go)
    assert seen == ["m"] and res.stopped and res.done == []


def test_other_waits_keep_fausts_path() -> None:
    async def go() -> Any:
        ev = asyncio.Event()
        asyncio.get_running_loop().call_later(0.01, ev.set)
        return await Fast().wait_first(ev, timeout=5)

    res = run(go)
    assert res.results == [True] and not res.stopped


def test_the_consumer_lets_the_broker_hold_an_empty_fetch_briefly() -> None:
    """Faust creates aiokafka's consumer with a 1.5 s fetch wait; the worker's asks for FETCH_MAX_WAIT_MS
    (a renamed aiokafka attribute would silently keep 1.5 s: this test says so)."""
    from streams.consumer import FETCH_MAX_WAIT_MS, FastPathApp

    async def go() -> tuple[int, int]:
        app = FastPathApp(f"t-{id(go)}", broker="kafka://127.0.0.1:9", store="memory://")
        thread = app.consumer._thread
        ours = thread._create_worker_consumer(app.transport)
        stock = type(thread)._create_worker_consumer(thread, app.transport)
        return ours._fetch_max_wait_ms, stock._fetch_max_wait_ms

    ours, stock = run(go)
    assert ours == FETCH_MAX_WAIT_MS < stock
