"""Helpers shared by the bench scripts (not a benchmark itself).

Every script prints its figures and the ratio to a ceiling measured in the same run, on the same
events; nothing asserts on time. Simulated inputs are cached under ``/tmp/stagewatch-bench``.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import msgspec  # noqa: E402

CACHE = Path("/tmp/stagewatch-bench")


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = next(
            int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
    except (OSError, StopIteration, ValueError):
        mem_kb = 0
    return (f"{os.cpu_count()} cores ({cpu}), {mem_kb / 2**20:.1f} GiB RAM, Python {platform.python_version()}, "
            f"{datetime.now().astimezone().isoformat(timespec='seconds')}")


def header(title: str) -> None:
    from monitor.cli import tune_gc

    tune_gc()  # as the `stagewatch` command does (the ceilings measured here get it too)
    from detectors.drift import load_change_test

    # River's change test imports scipy (~0.6 s): once, when the first stage's detector arms. Imported
    # here, before any timing, as the worker does when it starts: the figures are the steady rate
    load_change_test()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # progress shows when piped
    print(f"# {title}")
    print(f"# machine: {machine()}")
    import monitor.engine
    from detectors._build import compiled

    print(f"# engine: {'compiled by mypyc' if compiled(monitor.engine) else 'plain Python (not compiled)'}")


def sim_lines(scenario: str, items: int, seed: int = 1) -> Path:
    """A simulated JSONL events file (cached): ``items`` items of ``scenario``, ~5 events each."""
    from monitor.simulate import simulate, write_jsonl

    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"{scenario}-{items}-{seed}.jsonl"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        write_jsonl(simulate(scenario, items=items, seed=seed).events, tmp)
        tmp.rename(path)
    return path


class _CeilingEvent(msgspec.Struct):
    workflow: str
    entity_id: str
    stage: str
    timestamp: datetime | float


def ceiling_rate(lines: list[bytes], repeat: int = 3) -> float:
    """The ceiling: msgspec decode + one dict lookup + one ``river.stats.Quantile`` update per event
    (the least any per-event online model must do), best of ``repeat``, events/s."""
    from river.stats import Quantile

    decoder = msgspec.json.Decoder(_CeilingEvent)
    best = 0.0
    for _ in range(repeat):
        models: dict[tuple[str, str], Quantile] = {}
        last: dict[str, float] = {}
        t0 = time.perf_counter()
        for line in lines:
            ev = decoder.decode(line)
            ts = ev.timestamp
            t = ts.timestamp() if isinstance(ts, datetime) else ts
            q = models.get((ev.workflow, ev.stage))
            if q is None:
                q = models[(ev.workflow, ev.stage)] = Quantile(0.95)
            q.update(t - last.get(ev.entity_id, t))
            last[ev.entity_id] = t
        best = max(best, len(lines) / (time.perf_counter() - t0))
    return best


def best_of(fn: Callable[[], float], repeat: int) -> float:
    return max(fn() for _ in range(repeat))


def rss_bytes() -> int:
    """Resident set size of this process (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def ratio_line(name: str, value: float, ceiling: float, goal: float) -> str:
    r = value / ceiling if ceiling else 0.0
    verdict = "meets" if r >= goal else "below"
    return f"{name}: {value:,.0f} events/s = {r:.3f} of ceiling {ceiling:,.0f}/s (goal >= {goal}; {verdict} goal)"


@contextmanager
def local_broker(prefix: str) -> Iterator[tuple[Path, str]]:
    """A Kafka broker (``monitor.stack.KafkaProcess``) in a fresh temp dir for one bench run:
    yields (the temp dir, the bootstrap address); stops the broker and removes the dir after."""
    from monitor.stack import KafkaProcess

    with tempfile.TemporaryDirectory(prefix=prefix) as tmp_s:
        tmp = Path(tmp_s)
        kafka = KafkaProcess(tmp / "stack")
        kafka.start(timeout=180)
        try:
            yield tmp, kafka.bootstrap
        finally:
            kafka.stop()


if __name__ == "__main__":
    print("bench/_common.py holds helpers for the bench scripts; nothing to measure here.")
