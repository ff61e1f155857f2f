"""Where alerts go: JSONL file, stdout, Alertmanager (the Kafka topic sink lives with the worker).

Every sink has ``submit(alerts)``, which never blocks on the network.

:class:`AlertmanagerSink` speaks the Alertmanager v2 API the way Prometheus does: it POSTs
``/api/v2/alerts`` to every configured Alertmanager (HA pairs deduplicate), re-sends every firing alert
each ``resend_interval`` with ``endsAt = now + 4 x resend_interval`` (so a dead worker's alerts expire on
their own), sends a resolution with ``endsAt`` = the resolution instant and keeps re-sending it for
``resolved_resend`` seconds, and retries failed posts with a capped exponential backoff. Its memory is
bounded by ``buffer_size``: when full, the oldest alert is dropped and counted.
"""

from __future__ import annotations

import asyncio
import logging
import math
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

import httpx

from monitor.events import Alert, encode_alert, format_ts, human_duration, parse_timestamp

if TYPE_CHECKING:
    from monitor.config import AlertmanagerConfig
    from monitor.metrics import WorkerMetrics

log = logging.getLogger(__name__)

ALERTNAMES: dict[str, str] = {
    "stalled": "StagewatchItemStalled",
    "slow_stage": "StagewatchSlowStage",
    "bottleneck_shift": "StagewatchBottleneckShift",
    "backlog_growth": "StagewatchBacklogGrowth",
    "source_silent": "StagewatchSourceSilent",
}
# Kinds about one item: only these carry entity_id as an Alertmanager label.
ITEM_KINDS = frozenset({"stalled", "slow_stage"})
ENDS_AT_RESENDS = 4  # firing alerts expire after this many missed re-sends


class AlertSink(Protocol):
    def submit(self, alerts: Iterable[Alert]) -> None: ...


def alertname(kind: str) -> str:
    """The Alertmanager ``alertname`` for an alert kind (unknown kinds: ``Stagewatch`` + CamelCase)."""
    return ALERTNAMES.get(kind) or "Stagewatch" + "".join(p.capitalize() for p in kind.split("_") if p)


def _num(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.6g}" if abs(value) < 1 else f"{value:.3f}".rstrip("0").rstrip(".")


def _description(alert: Alert) -> str:
    where = f"stage {alert.stage}" if alert.stage else f"workflow {alert.workflow}"
    who = f"{alert.entity_id} in {where}" if alert.entity_id else where
    seg = f" for segment {alert.segment}" if alert.segment and alert.segment != "*" else ""
    text = (
        f"{who}: observed {human_duration(alert.observed_seconds)}; "
        f"expected (typical{seg}) {human_duration(alert.expected_seconds)}; "
        f"threshold {human_duration(alert.threshold_seconds)}; score {_num(alert.score)}."
    )
    if alert.waiting_on:
        text += f" Waiting on {alert.waiting_on}."
    return text


def item_url(alert: Alert, template: str | None) -> str | None:
    """The per-item link (``{entity_id}``, ``{workflow}``, ``{stage}``, ``{alert_id}`` are URL-quoted)."""
    if not template or not alert.entity_id:
        return None
    values = {
        "entity_id": alert.entity_id,
        "workflow": alert.workflow,
        "stage": alert.stage or "",
        "alert_id": alert.alert_id,
    }
    try:
        return template.format_map({k: quote(v, safe="") for k, v in values.items()})
    except (KeyError, IndexError, ValueError):
        log.warning("item_url_template %r does not format; item_url left out", template)
        return None


def to_alertmanager(
    alert: Alert,
    now: float,
    resend_interval: float,
    *,
    starts_at: float | None = None,
    item_url_template: str | None = None,
) -> dict[str, Any]:
    """One alert in the Alertmanager v2 ``postableAlert`` form.

    Firing: ``endsAt = now + 4 x resend_interval``. Resolved: ``endsAt`` = the resolution instant
    (``alert.at``, never later than ``now``). ``startsAt`` defaults to ``alert.at`` (never later than now);
    the sink passes the instant the alert first fired so a resolution keeps its start.
    """
    at = min(parse_timestamp(alert.at), now)
    start = min(starts_at, now) if starts_at is not None else at
    if alert.status == "resolved":
        end = max(at, start)
    else:
        end = now + ENDS_AT_RESENDS * resend_interval
    labels = {"alertname": alertname(alert.kind), "workflow": alert.workflow}
    if alert.stage:
        labels["stage"] = alert.stage
    if alert.entity_id and alert.kind in ITEM_KINDS:
        labels["entity_id"] = alert.entity_id
    if alert.segment:
        labels["segment"] = alert.segment
    labels["severity"] = alert.severity
    labels["alert_id"] = alert.alert_id
    annotations = {
        "summary": alert.summary,
        "description": _description(alert),
        "observed_seconds": _num(alert.observed_seconds),
        "expected_seconds": _num(alert.expected_seconds),
        "threshold_seconds": _num(alert.threshold_seconds),
        "score": _num(alert.score),
    }
    if alert.waiting_on:
        annotations["waiting_on"] = alert.waiting_on
    url = item_url(alert, item_url_template)
    if url:
        annotations["item_url"] = url
    return {
        "labels": labels,
        "annotations": annotations,
        "startsAt": format_ts(start),
        "endsAt": format_ts(end),
    }


class JsonlSink:
    """Appends one JSON alert per line and flushes after every submit."""

    name = "jsonl"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: IO[bytes] | None = self.path.open("ab")

    def submit(self, alerts: Iterable[Alert]) -> None:
        if self._fh is None:
            raise ValueError(f"JsonlSink({self.path}) is closed")
        data = b"".join(encode_alert(a) + b"\n" for a in alerts)
        if data:
            self._fh.write(data)
            self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> JsonlSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StdoutSink:
    """Writes one JSON alert per line to stdout (or the given text stream)."""

    name = "stdout"

    def __init__(self, stream: IO[str] | None = None) -> None:
        self._stream = stream

    def submit(self, alerts: Iterable[Alert]) -> None:
        stream = self._stream or sys.stdout
        text = "".join(encode_alert(a).decode() + "\n" for a in alerts)
        if text:
            stream.write(text)
            stream.flush()


@dataclass
class _Tracked:
    alert: Alert
    starts_at: float
    pending: set[str]  # URLs that have not yet accepted the current state
    next_resend: float
    resolved_at_wall: float | None = None  # wall instant the resolution reached the sink


@dataclass
class _Target:
    base: str
    endpoint: str
    failures: int = 0
    retry_at: float = 0.0


@dataclass
class _Stats:
    dropped: int = 0
    sent: dict[str, int] = field(default_factory=dict)


class AlertmanagerSink:
    """Delivers alerts to one or more Alertmanagers. Start ``run()`` as a task; ``submit`` from anywhere
    on the same event loop; ``flush(timeout)`` then ``stop()`` at shutdown."""

    name = "alertmanager"

    def __init__(
        self,
        urls: Iterable[str],
        resend_interval: float = 60.0,
        resolved_resend: float = 900.0,
        buffer_size: int = 10_000,
        timeout: float = 5.0,
        item_url_template: str | None = None,
        metrics: WorkerMetrics | None = None,
        *,
        clock: Callable[[], float] = time.time,
        max_batch: int = 500,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        min_cycle_interval: float = 0.1,
    ) -> None:
        bases = [u.rstrip("/") for u in urls]
        if not bases:
            raise ValueError("AlertmanagerSink needs at least one URL")
        if resend_interval <= 0 or timeout <= 0 or buffer_size < 1 or resolved_resend < 0:
            raise ValueError("resend_interval, timeout > 0; buffer_size >= 1; resolved_resend >= 0")
        self._targets = [_Target(b, b + "/api/v2/alerts") for b in dict.fromkeys(bases)]
        self.resend_interval = float(resend_interval)
        self.resolved_resend = float(resolved_resend)
        self.buffer_size = int(buffer_size)
        self.timeout = float(timeout)
        self.item_url_template = item_url_template
        self._metrics = metrics
        self._clock = clock
        self._max_batch = max_batch
        self._backoff_initial = backoff_initial
        self._backoff_max = min(backoff_max, self.resend_interval)
        self._min_cycle_interval = min_cycle_interval
        self._inbox: deque[Alert] = deque()
        self._active: dict[str, _Tracked] = {}
        self._resolved: dict[str, None] = {}  # ordered set of resolved ids: evicted first when full
        self._wake = asyncio.Event()
        self._stopping = False
        self._running = False
        self.stats = _Stats()
        if metrics is not None:
            metrics.sink_buffered.labels(sink=self.name).set(0)
            metrics.sink_dropped.labels(sink=self.name)

    @classmethod
    def from_config(cls, cfg: AlertmanagerConfig, metrics: WorkerMetrics | None = None) -> AlertmanagerSink:
        return cls(
            cfg.urls,
            resend_interval=cfg.resend_interval_seconds,
            resolved_resend=cfg.resolved_resend_seconds,
            buffer_size=cfg.buffer_size,
            timeout=cfg.timeout_seconds,
            item_url_template=cfg.item_url_template,
            metrics=metrics,
        )

    # -- producer side -------------------------------------------------------------------------

    def submit(self, alerts: Iterable[Alert]) -> None:
        """Queue alerts for delivery. Never blocks; when the buffer is full the oldest is dropped."""
        added = False
        for alert in alerts:
            if len(self._inbox) >= self.buffer_size:
                self._inbox.popleft()
                self._count_dropped(1)
            self._inbox.append(alert)
            added = True
        if added:
            self._update_gauge()
            self._wake.set()

    def forget(self, alert_ids: Iterable[str]) -> None:
        """Stop speaking for these firing alerts: their partition moved to another worker, which restores
        them and re-sends them from then on. Re-sent from here too, each would fire again at Alertmanager
        after the new owner resolved it, and stay firing while this process runs. A resolution on its way
        is still delivered."""
        ids = set(alert_ids)
        for alert_id in ids:
            t = self._active.get(alert_id)
            if t is not None and t.resolved_at_wall is None:
                del self._active[alert_id]
        if any(a.alert_id in ids and a.status == "firing" for a in self._inbox):
            self._inbox = deque(a for a in self._inbox if not (a.alert_id in ids and a.status == "firing"))
        self._update_gauge()

    @property
    def buffered(self) -> int:
        """Alerts not yet accepted by every Alertmanager (queued or pending)."""
        return len(self._inbox) + sum(1 for t in self._active.values() if t.pending)

    def active_alert_ids(self) -> list[str]:
        return list(self._active)

    # -- delivery loop -------------------------------------------------------------------------

    async def run(self) -> None:
        """Deliver until :meth:`stop`. Every wait is bounded by the resend interval."""
        if self._running:
            raise RuntimeError("AlertmanagerSink.run() is already running")
        self._running = True
        self._stopping = False
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                while not self._stopping:
                    self._wake.clear()
                    started = time.monotonic()
                    await self._cycle(client)
                    if self._stopping:
                        break
                    delay = self._next_wakeup(self._clock())
                    try:
                        await asyncio.wait_for(self._wake.wait(), timeout=delay)
                    except TimeoutError:
                        pass
                    # a burst of submits is delivered in one batch, not one cycle per submit
                    pause = self._min_cycle_interval - (time.monotonic() - started)
                    if pause > 0 and not self._stopping:
                        await asyncio.sleep(pause)
        finally:
            self._running = False

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    def idle(self) -> bool:
        return not self._inbox and not any(t.pending for t in self._active.values())

    async def flush(self, timeout: float) -> bool:
        """Wait until every queued alert reached every Alertmanager, at most ``timeout`` seconds.

        Works whether or not ``run()`` is running (if not, a loop runs for the duration of the flush).
        Returns True when everything was delivered.
        """
        own: asyncio.Task[None] | None = None
        await asyncio.sleep(0)  # lets a run() task created just before us start first
        if not self._running:
            own = asyncio.create_task(self.run())
        deadline = time.monotonic() + timeout
        try:
            while True:
                self._drain(self._clock())
                if self.idle():
                    return True
                if time.monotonic() >= deadline:
                    return False
                self._wake.set()
                await asyncio.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
        finally:
            if own is not None:
                self.stop()
                try:
                    await asyncio.wait_for(own, timeout=self.timeout + 1)
                except TimeoutError:
                    own.cancel()

    async def _cycle(self, client: httpx.AsyncClient) -> None:
        now = self._clock()
        self._drain(now)
        self._schedule_resends(now)
        await asyncio.gather(*(self._deliver(client, t, now) for t in self._targets))
        self._expire(self._clock())
        self._update_gauge()

    def _drain(self, now: float) -> None:
        while self._inbox:
            self._track(self._inbox.popleft(), now)

    def _track(self, alert: Alert, now: float) -> None:
        at = min(parse_timestamp(alert.at), now)
        prev = self._active.get(alert.alert_id)
        all_urls = {t.base for t in self._targets}
        if alert.status == "resolved":
            starts_at = prev.starts_at if prev is not None else at
            tracked = _Tracked(alert, starts_at, all_urls, now + self.resend_interval, resolved_at_wall=now)
            self._resolved[alert.alert_id] = None
        else:
            keep_start = prev is not None and prev.resolved_at_wall is None
            starts_at = prev.starts_at if keep_start and prev is not None else at
            tracked = _Tracked(alert, starts_at, all_urls, now + self.resend_interval)
            self._resolved.pop(alert.alert_id, None)
        if prev is None and len(self._active) >= self.buffer_size:
            self._evict_one()
        self._active[alert.alert_id] = tracked

    def _evict_one(self) -> None:
        victim = next(iter(self._resolved), None) or next(iter(self._active))
        self._active.pop(victim, None)
        self._resolved.pop(victim, None)
        self._count_dropped(1)

    def _schedule_resends(self, now: float) -> None:
        all_urls = {t.base for t in self._targets}
        for t in self._active.values():
            if t.next_resend <= now:
                t.pending = set(all_urls)
                t.next_resend = now + self.resend_interval

    def _expire(self, now: float) -> None:
        for alert_id in list(self._resolved):
            t = self._active.get(alert_id)
            if t is None:
                self._resolved.pop(alert_id, None)
                continue
            assert t.resolved_at_wall is not None
            if not t.pending and now >= t.resolved_at_wall + self.resolved_resend:
                del self._active[alert_id]
                del self._resolved[alert_id]

    async def _deliver(self, client: httpx.AsyncClient, target: _Target, now: float) -> None:
        if target.retry_at > now:
            return
        due = [t for t in self._active.values() if target.base in t.pending]
        for i in range(0, len(due), self._max_batch):
            chunk = due[i : i + self._max_batch]
            payload = [
                to_alertmanager(
                    t.alert,
                    now,
                    self.resend_interval,
                    starts_at=t.starts_at,
                    item_url_template=self.item_url_template,
                )
                for t in chunk
            ]
            outcome = await self._post(client, target, payload)
            self._count_sent(outcome, len(chunk))
            if outcome == "error":
                target.failures += 1
                backoff = min(self._backoff_max, self._backoff_initial * 2 ** min(target.failures - 1, 16))
                target.retry_at = self._clock() + backoff
                return
            # success, or rejected as invalid (400): sending the same payload again cannot help
            for t in chunk:
                t.pending.discard(target.base)
            target.failures = 0
            target.retry_at = 0.0

    async def _post(self, client: httpx.AsyncClient, target: _Target, payload: list[dict[str, Any]]) -> str:
        try:
            resp = await client.post(target.endpoint, json=payload)
        except httpx.HTTPError as exc:
            log.warning("alertmanager %s: %s", target.base, exc.__class__.__name__ + (f": {exc}" if str(exc) else ""))
            return "error"
        if resp.is_success:
            return "success"
        if resp.status_code == 400:
            log.error("alertmanager %s rejected alerts: %s", target.base, resp.text[:500])
            return "rejected"
        log.warning("alertmanager %s answered %d", target.base, resp.status_code)
        return "error"

    def _next_wakeup(self, now: float) -> float:
        candidates = [now + self.resend_interval]
        for t in self._active.values():
            candidates.append(t.next_resend)
            if t.resolved_at_wall is not None:
                candidates.append(t.resolved_at_wall + self.resolved_resend)
        for target in self._targets:
            if target.retry_at > now and any(target.base in t.pending for t in self._active.values()):
                candidates.append(target.retry_at)
        return min(self.resend_interval, max(0.01, min(candidates) - now))

    # -- metrics -------------------------------------------------------------------------------

    def _count_dropped(self, n: int) -> None:
        self.stats.dropped += n
        if self._metrics is not None:
            self._metrics.sink_dropped.labels(sink=self.name).inc(n)

    def _count_sent(self, outcome: str, n: int) -> None:
        self.stats.sent[outcome] = self.stats.sent.get(outcome, 0) + n
        if self._metrics is not None:
            self._metrics.sink_sent.labels(sink=self.name, outcome=outcome).inc(n)

    def _update_gauge(self) -> None:
        if self._metrics is not None:
            self._metrics.sink_buffered.labels(sink=self.name).set(self.buffered)
