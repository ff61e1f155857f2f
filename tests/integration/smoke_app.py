"""A minimal Faust app for the smoke test: one agent counts the events of one topic and a web
view reports what it saw. Configured by environment (the test starts it as a worker process):
SMOKE_APP_ID, SMOKE_TOPIC, SMOKE_BROKER (``kafka://127.0.0.1:PORT``), SMOKE_DATADIR."""

from __future__ import annotations

import os
from typing import Any

import faust

app = faust.App(
    os.environ["SMOKE_APP_ID"],
    broker=os.environ["SMOKE_BROKER"],
    store="memory://",
    datadir=os.environ["SMOKE_DATADIR"],
    topic_partitions=1,
    topic_replication_factor=1,
    consumer_auto_offset_reset="earliest",
)
events = app.topic(os.environ["SMOKE_TOPIC"], value_serializer="json")
seen: dict[str, Any] = {"count": 0, "entity_ids": []}


@app.agent(events)
async def count_events(stream: Any) -> None:
    async for event in stream:
        seen["count"] += 1
        seen["entity_ids"].append(event.get("entity_id"))


@app.page("/smoke/")
async def smoke_view(web: Any, request: Any) -> Any:
    return web.json(seen)
