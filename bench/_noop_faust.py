"""The ceiling for the worker bench: a Faust agent that does nothing but count its records
(same broker, same topic, one event per record). Run by bench/worker.py as
``python bench/_noop_faust.py worker`` with NOOP_* environment variables; GET /count reports."""

from __future__ import annotations

import os
import sys
from typing import Any

if "NOOP_BROKER" not in os.environ:
    print("bench/_noop_faust.py is started by bench/worker.py (needs NOOP_* settings); nothing to do alone.")
    sys.exit(0)

import faust  # noqa: E402

from streams.consumer import FastPathApp  # noqa: E402

# NOOP_FAST_PATH: on the consumer the worker runs on (streams.consumer), else stock Faust (the ceiling)
app = (FastPathApp if os.environ.get("NOOP_FAST_PATH") else faust.App)(
    os.environ["NOOP_APP_ID"],
    broker=os.environ["NOOP_BROKER"],
    store="memory://",
    datadir=os.environ["NOOP_DATADIR"],
    web_host="127.0.0.1",
    web_bind="127.0.0.1",
    web_port=int(os.environ["NOOP_PORT"]),
    topic_partitions=int(os.environ.get("NOOP_PARTITIONS", "1")),
    topic_replication_factor=1,
    topic_disable_leader=True,
    consumer_auto_offset_reset="earliest",
    key_serializer="raw",
    value_serializer="raw",
    consumer_max_fetch_size=int(os.environ.get("NOOP_FETCH_BYTES", str(1024 * 1024))),  # as the worker's
)
topic = app.topic(os.environ["NOOP_TOPIC"], key_type=bytes, value_type=bytes)
seen = {"count": 0}


@app.agent(topic)
async def count(stream: Any) -> None:
    async for _value in stream:
        seen["count"] += 1


@app.task
async def quiet_logging() -> None:
    # as the worker does (streams.app.restore_log_level): the ceiling must not pay a cost the worker avoids
    from streams.app import restore_log_level

    restore_log_level("warn")


@app.page("/count")
async def count_view(web: Any, request: Any) -> Any:
    return web.json(seen)


if __name__ == "__main__":
    app.main()
