"""``stagewatch demo``: the whole product on the embedded default, in about two minutes.

Starts Kafka, Prometheus and Alertmanager, one worker, then streams a simulated sales and support
pipeline in accelerated time (a day lasts a few seconds) with injected stalls and a permanent
slowdown of one stage. Baselines are learned live, stalls are paged in Alertmanager, the stage
durations are in Prometheus; a terminal view shows it all while it happens.
"""

from __future__ import annotations

import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from monitor.events import human_duration

DEMO_PERIOD_DAYS = 20.0


@dataclass
class DemoResult:
    events_sent: int = 0
    stalled_in_alertmanager: int = 0
    alerts_by_kind: dict[str, int] = field(default_factory=dict)  # active in Alertmanager at the end
    fired_by_kind: dict[str, int] = field(default_factory=dict)  # every firing on the alerts topic
    duration_series_in_prometheus: int = 0
    urls: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.stalled_in_alertmanager > 0 and self.duration_series_in_prometheus > 0


def worker_settings(bootstrap: str, alertmanager_url: str, web_port: int) -> dict[str, Any]:
    return {
        "kafka": {"bootstrap_servers": bootstrap},
        "topics": {"partitions": 1},
        "engine": {"warmup": 15, "allowed_lateness_seconds": 0.0},
        "workflows": {
            "sales": {"terminal_stages": ["follow_up", "lost"], "calendar": {"mode": "wall"}},
            "support": {"terminal_stages": ["resolved"], "calendar": {"mode": "wall"}},
        },
        "worker": {"tick_interval_seconds": 1.0, "web_port": web_port, "app_id": "stagewatch-demo"},
        "alertmanager": {
            "urls": [alertmanager_url],
            "resend_interval_seconds": 15.0,
            "item_url_template": f"http://127.0.0.1:{web_port}/items/{{entity_id}}",
        },
    }


def _get(url: str) -> Any:
    try:
        r = httpx.get(url, timeout=2.0)
        return r.json() if r.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None


def render(worker_url: str, am_url: str, sent: int, elapsed: float, duration: float) -> Group:
    stages = _get(f"{worker_url}/stages") or []
    baselines = {(b["workflow"], b["stage"]): b for b in (_get(f"{worker_url}/baselines") or []) if b["segment"] == "*"}
    alerts = _get(f"{worker_url}/alerts") or []
    t = Table(title="stages (live)", expand=True)
    for col in ("workflow", "stage", "WIP", "stalled", "typical", "p95", "pages after", "learned from"):
        t.add_column(col, justify="left" if col in ("workflow", "stage") else "right")
    for s in stages:
        if s["terminal"]:
            continue
        b = baselines.get((s["workflow"], s["stage"]), {})

        def fmt(v: float | None) -> str:
            return human_duration(v) if v else "learning"

        t.add_row(
            s["workflow"], s["stage"], str(s["wip"]), str(s["stalled"]) if s["stalled"] else "",
            fmt(b.get("typical_seconds")), fmt(b.get("p95_seconds")), fmt(b.get("threshold_seconds")),
            f"{b.get('n', 0)} items",
        )
    a = Table(title="latest alerts", expand=True)
    a.add_column("kind")
    a.add_column("what", ratio=1)
    for al in sorted(alerts, key=lambda x: x["at"], reverse=True)[:8]:
        a.add_row(al["kind"], al["summary"])
    head = Panel(
        f"events sent {sent:,}   elapsed {elapsed:.0f}/{duration:.0f} s   (a simulated day lasts "
        f"{duration / DEMO_PERIOD_DAYS:.0f} s)\nAlertmanager {am_url}/#/alerts   worker {worker_url}/alerts",
        title="Stagewatch demo",
    )
    return Group(head, t, a)


def run_demo(duration: float = 120.0, ui: bool = True, run_dir: Path = Path("run/demo"), items: int = 1500) -> DemoResult:
    from monitor.config import load_settings
    from monitor.produce import live_timestamps, produce
    from monitor.simulate import simulate
    from monitor.stack import Stack, free_port
    from streams.process import WorkerProcess

    console = Console(stderr=True)
    ui = ui and console.is_terminal  # a log file gets progress lines, not a live view's frames
    result = DemoResult()
    speed = DEMO_PERIOD_DAYS * 86400 / duration
    sim = simulate("slowdown", items=items, seed=7, speed=speed, period_days=DEMO_PERIOD_DAYS)
    console.print(f"[bold]starting Kafka, Prometheus and Alertmanager[/bold] in {run_dir} (emptied first) ...")
    with Stack(run_dir, fresh=True) as stack:  # an earlier run's topics and metrics would add to this one's
        # a default Stack runs all three processes, so their addresses are set
        assert stack.kafka_bootstrap is not None and stack.alertmanager_url is not None
        port = free_port()
        cfg = worker_settings(stack.kafka_bootstrap, stack.alertmanager_url, port)
        with WorkerProcess(stack.run_dir, cfg) as worker:
            stack.add_scrape_target(f"127.0.0.1:{port}")
            result.urls = {
                "kafka": stack.kafka_bootstrap,
                "prometheus": f"{stack.prometheus_url}/graph?g0.expr="
                + urllib.parse.quote("histogram_quantile(0.5, sum by (le, workflow, stage) (rate(stagewatch_stage_duration_seconds_bucket[1m])))"),
                "alertmanager": f"{stack.alertmanager_url}/#/alerts",
                "worker": f"{worker.url}/alerts",
                "item view": f"{worker.url}/items/<entity_id>",
            }
            for k, v in result.urls.items():
                console.print(f"  {k:13} {v}", soft_wrap=True)  # a link broken over lines does not open
            settings = load_settings(None, **cfg)
            sent = [0]
            stop = threading.Event()

            def producer() -> None:
                events = (e.to_event() for e in sim.events)
                live = live_timestamps(events, speed=1.0)
                sent[0] = produce(settings, _until(live, stop), paced=True,
                                  on_progress=lambda k: sent.__setitem__(0, k))

            thread = threading.Thread(target=producer, daemon=True)
            thread.start()
            started = time.monotonic()
            try:
                if ui:
                    with Live(console=console, refresh_per_second=2) as live_view:
                        while time.monotonic() - started < duration:
                            live_view.update(render(worker.url, stack.alertmanager_url, sent[0],
                                                    time.monotonic() - started, duration))
                            time.sleep(1.0)
                else:
                    while time.monotonic() - started < duration:
                        time.sleep(5.0)
                        console.print(f"  {time.monotonic() - started:4.0f} s  events sent {sent[0]:,}")
            except KeyboardInterrupt:
                console.print("stopping ...")
            stop.set()
            thread.join(timeout=10)
            console.print("collecting what fired (Alertmanager, Prometheus, the alerts topic) ...")
            time.sleep(3.0)  # one more scrape and one more Alertmanager push
            result.events_sent = sent[0]
            _collect(result, stack, worker.url)
            result.fired_by_kind = _fired_on_topic(settings)
            console.print("stopping the worker, Kafka, Prometheus and Alertmanager ...")
    _print_summary(console, result)
    console.print(f"Everything is stopped (the links above no longer answer); logs and data stay in {run_dir} "
                  "until the next demo.", soft_wrap=True)
    return result


def _until(events: Any, stop: threading.Event) -> Any:
    for e in events:
        if stop.is_set():
            return
        yield e


def _collect(result: DemoResult, stack: Any, worker_url: str) -> None:
    am = _get(f"{stack.alertmanager_url}/api/v2/alerts") or []
    result.stalled_in_alertmanager = sum(1 for a in am if a["labels"].get("alertname") == "StagewatchItemStalled")
    for a in am:
        name = a["labels"].get("alertname", "?")
        result.alerts_by_kind[name] = result.alerts_by_kind.get(name, 0) + 1
    q = _get(f"{stack.prometheus_url}/api/v1/query?query=" + urllib.parse.quote("stagewatch_stage_duration_seconds_count"))
    result.duration_series_in_prometheus = len(q["data"]["result"]) if q else 0


def _fired_on_topic(settings: Any, timeout: float = 10.0) -> dict[str, int]:
    """Every alert fired during the demo, by kind, read back from the alerts topic (Alertmanager only
    keeps the ones still active: a bottleneck shift resolves once the stage has settled)."""
    from kafka import KafkaConsumer

    from monitor.events import decode_alert
    from streams.app import kafka_client_kwargs

    consumer = KafkaConsumer(settings.topics.alerts, auto_offset_reset="earliest", enable_auto_commit=False,
                             consumer_timeout_ms=2000, **kafka_client_kwargs(settings))
    fired: dict[str, int] = {}
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            got = False
            for rec in consumer:
                got = True
                a = decode_alert(rec.value)
                if a.status == "firing":
                    fired[a.kind] = fired.get(a.kind, 0) + 1
            if not got:
                break
    finally:
        consumer.close()
    return fired


def _print_summary(console: Console, result: DemoResult) -> None:
    t = Table(title="demo summary", show_header=False)
    t.add_row("events sent", f"{result.events_sent:,}")
    t.add_row("alerts fired (alerts topic)", ", ".join(f"{k} {v}" for k, v in sorted(result.fired_by_kind.items())) or "none")
    t.add_row("active in Alertmanager", ", ".join(f"{k} {v}" for k, v in sorted(result.alerts_by_kind.items())) or "none")
    t.add_row("stage-duration series in Prometheus", str(result.duration_series_in_prometheus))
    t.add_row("verdict", "[green]stalls paged, metrics scraped[/green]" if result.ok else "[red]no stall paged[/red]")
    console.print(t)
