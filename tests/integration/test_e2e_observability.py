"""End to end with the real stack: simulated stream -> Kafka -> worker -> Alertmanager / Prometheus.

- a stalled item pages in Alertmanager (labels and annotations of the contract) with no further event,
  and its next event resolves the page there;
- every dashboard panel query and recording rule returns data from the real Prometheus scraping the worker;
- 100k distinct items leave no entity id in /metrics and a series count bounded by the settings' caps.
"""

from __future__ import annotations

import math
import threading
import time
from datetime import UTC, datetime

import httpx
from kafka import KafkaProducer
from prometheus_client import CollectorRegistry, generate_latest

from grafana.dashboards import all_panel_queries
from monitor import metrics as metrics_mod
from monitor.config import load_settings
from monitor.events import Event, alert_id
from monitor.produce import produce
from monitor.sinks import ALERTNAMES
from streams.process import WorkerProcess
from tests.integration.test_worker import base_settings, create_topics, stream, wait_assigned

STUCK = "deal-stuck"
# Panel queries whose right value in these tests is 0 (they must still return a series):
ZERO_IS_RIGHT = frozenset(q for q in all_panel_queries() if any(m in q for m in (
    "stagewatch_source_silent",  # silence detection is off in the test settings: no source is silent
    "stagewatch_sink_buffered_alerts",  # every alert reached Alertmanager: nothing waits
    "stagewatch_sink_dropped_alerts_total",  # and nothing was dropped
    "stagewatch_consumer_lag_records",  # the worker keeps up with a small stream (test (c) sees it > 0)
)))


def wait_for(check, timeout: float, interval: float = 0.5, what: str = "condition"):
    """Poll ``check()`` until it returns something truthy; that value, or AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


def am_alerts(url: str, active_only: bool = False, **labels: str) -> list[dict]:
    params = [("filter", f'{k}="{v}"') for k, v in labels.items()]
    if active_only:
        params += [("active", "true"), ("silenced", "false"), ("inhibited", "false"), ("unprocessed", "false")]
    resp = httpx.get(f"{url}/api/v2/alerts", params=params, timeout=5)
    resp.raise_for_status()
    return resp.json()


def prom_query(url: str, expr: str) -> list[dict]:
    resp = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=10)
    resp.raise_for_status()
    body = resp.json()
    assert body["status"] == "success", body
    return body["data"]["result"]


def history(now: float) -> list[Event]:
    """Sixty deals through lead -> qualification -> contract -> won, "days" of two seconds, all in the past."""
    return [e for e in stream(60, seed=5, start=now - 400, unit=2.0, stalls=0) if e.timestamp < now - 5]


def observability_settings(kafka: str, alertmanager: str, partitions: int = 1) -> dict:
    cfg = base_settings(kafka, partitions=partitions, clock="wall", tick_interval_seconds=0.5)
    cfg["alertmanager"] = {"urls": [alertmanager], "resend_interval_seconds": 2.0}
    return cfg


def _ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).timestamp()


# ----------------------------------------------------------------------------------------- (a) paging


def test_a_stalled_item_pages_in_alertmanager_and_its_next_event_resolves_it(kafka, alertmanager, tmp_path):
    cfg = observability_settings(kafka, alertmanager)
    create_topics(kafka, list(cfg["topics"]["events"]), 1)
    settings = load_settings(None, **cfg)
    aid = alert_id("stalled", "sales", "contract", STUCK)
    with WorkerProcess(tmp_path, cfg).start(timeout=90) as w:
        wait_assigned([w], 1)
        produce(settings, history(time.time()), batch=10)
        entered = time.time()
        produce(settings, [Event("stuck-contract", "sales", STUCK, "contract", entered, {"segment": "smb"}, None)])

        found = wait_for(lambda: am_alerts(alertmanager, alert_id=aid), 90, what="the stall in Alertmanager")
        paged = time.time()
        (alert,) = found
        labels, ann = alert["labels"], alert["annotations"]
        assert labels == {
            "alertname": "StagewatchItemStalled", "workflow": "sales", "stage": "contract",
            "entity_id": STUCK, "segment": "smb", "severity": "page", "alert_id": aid,
        }
        assert STUCK in ann["summary"] and "typical" in ann["summary"], ann["summary"]
        threshold = float(ann["threshold_seconds"])
        assert float(ann["observed_seconds"]) >= threshold > 0
        assert alert["status"]["state"] == "active"
        assert _ts(alert["endsAt"]) > time.time()  # firing: expires only if the worker stops re-sending
        # not early: the page came after the item crossed its limit (its age at paging >= the threshold)
        assert paged >= entered + threshold

        moved = time.time()
        produce(settings, [Event("stuck-won", "sales", STUCK, "won", moved, {"segment": "smb"}, None)])

        def resolved() -> bool:
            active = am_alerts(alertmanager, active_only=True, alert_id=aid)
            every = am_alerts(alertmanager, alert_id=aid)
            return not active and all(_ts(a["endsAt"]) <= time.time() for a in every)

        wait_for(resolved, 30, what="the stall to be resolved in Alertmanager")
        done = time.time()
    print(f"\ntime to page: {paged - entered:.1f} s after entering (limit {threshold:.1f} s, "
          f"{paged - entered - threshold:.1f} s past it); time to resolve in Alertmanager: {done - moved:.1f} s")


# ------------------------------------------------------------------------------------ (b) dashboards


def test_every_dashboard_query_and_recording_rule_has_data_in_prometheus(
    kafka, alertmanager, prometheus, prometheus_process, tmp_path
):
    cfg = observability_settings(kafka, alertmanager)
    topic = cfg["topics"]["events"][0]
    create_topics(kafka, [topic], 1)
    settings = load_settings(None, **cfg)
    queries = all_panel_queries()
    assert len(queries) > 20
    with WorkerProcess(tmp_path, cfg).start(timeout=90) as w:
        wait_assigned([w], 1)
        instance = f"127.0.0.1:{w.port}"
        prometheus_process.add_scrape_target(instance)
        wait_for(lambda: prom_query(prometheus, f'up{{instance="{instance}"}} == 1'), 30, what="the first scrape")
        events = history(time.time())
        half = len(events) // 2
        # two halves, a scrape apart: every counter and histogram bucket then grows between two scrapes
        # of an existing series, so rate()/histogram_quantile() give numbers, not 0 or NaN
        produce(settings, events[:half], batch=10)
        wait_for(lambda: prom_query(prometheus, "stagewatch_stage_duration_seconds_count"), 30,
                 what="a scrape of the first half")
        produce(settings, events[half:], batch=10)
        # two stuck items, 15 s apart: the second stall fires after the first created the anomaly series,
        # so increase(anomalies) and rate(alerts_published) see a counter grow between scrapes
        for n in (1, 2):
            if n == 2:
                time.sleep(15)
            produce(settings, [Event(f"stuck-{n}", "sales", f"{STUCK}-{n}", "contract", time.time(),
                                     {"segment": "smb"}, None)])
        # one poison record: the DLQ counter moves (its series exist from the start, at 0)
        producer = KafkaProducer(bootstrap_servers=kafka)
        producer.send(topic, key=b"poison", value=b"{not json")
        producer.flush()
        producer.close()

        results: dict[str, list[dict]] = {}

        def satisfied(q: str) -> bool:
            values = [float(r["value"][1]) for r in results.get(q, [])]
            if not values or not all(math.isfinite(v) for v in values):
                return False
            return q in ZERO_IS_RIGHT or any(values)

        def all_have_data() -> bool:
            for q in queries:
                if not satisfied(q):
                    results[q] = prom_query(prometheus, q)
            return all(satisfied(q) for q in queries)

        try:
            wait_for(all_have_data, 150, interval=2.0, what="every panel query to return data")
        except AssertionError:
            bad = {q: results.get(q) for q in queries if not satisfied(q)}
            raise AssertionError(f"{len(bad)} of {len(queries)} queries empty, NaN or 0: {bad}") from None
        assert prom_query(prometheus, f'up{{instance="{instance}"}} == 1')
    zero = [q for q in queries if not any(float(r["value"][1]) for r in results[q])]
    print(f"\n{len(queries)} queries, all with finite data; 0 (as they should be): {zero}")


# ----------------------------------------------------------------------------------- (c) cardinality

PARTITIONS = 2
N_ITEMS = 100_000
N_WORKFLOWS = 200
N_SEGMENTS = 500
STAGES = [f"step-{i}" for i in range(8)]
CAPS = {"max_workflows": 20, "max_stages_per_workflow": 5, "max_segments_per_stage": 10}
OUTCOMES = ("accepted", "duplicate", "late", "dropped_capacity")  # the engine's event outcomes
OVERFLOW_DIMENSIONS = ("workflow", "stage", "segment", "item")
ENTITY_PREFIX = "e2e-entity-"


def series(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def series_cap(partitions: int, max_workflows: int, max_stages_per_workflow: int, max_segments_per_stage: int) -> int:
    """The most series /metrics can hold, whatever the data, given the engine's caps.

    The caps hold per engine, and a worker runs one engine per partition (at most ``partitions``), each
    admitting its own first values, so merged: W = P*max_workflows + 1, S = P*max_stages_per_workflow + 1,
    G = P*max_segments_per_stage + 1 ("other" is one more value in each dimension). Engine-backed series:
        events W*|outcomes| + anomalies W*|kinds| + overflow |dimensions|
      + stage_duration histogram W*S*G*(|buckets| + 1 (+Inf) + 2 (_sum, _count))
      + expected (2 quantiles) + threshold + observations: 4*W*S*(G+1)   (G+1: the "*" stage-level row)
      + 7 per-stage series 7*W*S + 2 per-workflow source series 2*W,
    each family also clipped by the collector at DEFAULT_MAX_SERIES_PER_METRIC label sets;
    plus the worker's own metrics: a fresh registry's series, alerts_published (kinds x 2 statuses),
    sink_sent (one sink x 3 outcomes) and series_dropped (one per engine family), each x2 (_total, _created).
    """
    p = partitions
    w, s, g = p * max_workflows + 1, p * max_stages_per_workflow + 1, p * max_segments_per_stage + 1
    clip = metrics_mod.DEFAULT_MAX_SERIES_PER_METRIC
    kinds = len(ALERTNAMES)
    hist = min(w * s * g, clip) * (len(metrics_mod.DURATION_BUCKETS) + 3)
    per_seg = 2 * min(2 * w * s * (g + 1), clip) + 2 * min(w * s * (g + 1), clip)
    engine = (min(w * len(OUTCOMES), clip) + min(w * kinds, clip) + len(OVERFLOW_DIMENSIONS)
              + hist + per_seg + 7 * min(w * s, clip) + 2 * min(w, clip))
    fresh = len(series(generate_latest(metrics_mod.create(CollectorRegistry(), lambda: None, time.time).registry)
                       .decode()))
    families = len(metrics_mod._families())
    worker = fresh + 2 * (kinds * 2 + 3 + families)
    return engine + worker


def many_items(now: float) -> list[Event]:
    start = now - 2 * 3600
    return [
        Event(f"ev-{i}", f"wf-{i % N_WORKFLOWS}", f"{ENTITY_PREFIX}{i:06d}", STAGES[i % len(STAGES)],
              start + i * 0.05, {"segment": f"seg-{i % N_SEGMENTS}"}, None)
        for i in range(N_ITEMS)
    ]


def accepted(text: str) -> int:
    return int(sum(float(line.rsplit(" ", 1)[1]) for line in series(text)
                   if line.startswith("stagewatch_events_total{") and 'outcome="accepted"' in line))


def test_metrics_stay_bounded_with_100k_distinct_items(kafka, tmp_path):
    cfg = base_settings(kafka, partitions=PARTITIONS, clock="wall", tick_interval_seconds=0.5)
    cfg["engine"] = {**cfg["engine"], **CAPS}
    cfg["workflows"] = {}
    create_topics(kafka, list(cfg["topics"]["events"]), PARTITIONS)
    settings = load_settings(None, **cfg)
    cap = series_cap(PARTITIONS, **CAPS)
    w = WorkerProcess(tmp_path, cfg)
    counts: list[tuple[int, int]] = []  # (accepted events, series) per poll
    lags: list[float] = []
    # a backlog the worker finds when it starts (all 200 batched records): its lag must show while it
    # lasts, sampled as often as a scrape allows from before the worker answers (a fast worker drains
    # the backlog within a second or two)
    stop = threading.Event()

    def sample_lag() -> None:
        while not stop.wait(0.05):
            try:
                text = httpx.get(f"{w.url}/metrics", timeout=10).text
            except httpx.HTTPError:
                continue  # not up yet, or a scrape that failed: retried at the next tick
            lags.extend(float(line.rsplit(" ", 1)[1]) for line in series(text)
                        if line.startswith("stagewatch_consumer_lag_records "))

    started = time.monotonic()
    produce(settings, many_items(time.time()), batch=500)
    produced = time.monotonic()
    sampler = threading.Thread(target=sample_lag, daemon=True)
    sampler.start()

    def processed() -> str | None:
        text = httpx.get(f"{w.url}/metrics", timeout=10).text
        counts.append((accepted(text), len(series(text))))
        return text if accepted(text) >= N_ITEMS else None

    try:
        with w.start(timeout=90):
            wait_assigned([w], PARTITIONS)
            text = wait_for(processed, 110, interval=1.0, what=f"{N_ITEMS} accepted events")
            done = time.monotonic()
            health = httpx.get(f"{w.url}/health", timeout=10).json()
    finally:
        stop.set()
        sampler.join(timeout=15)
    assert accepted(text) == N_ITEMS
    assert ENTITY_PREFIX not in text
    n = len(series(text))
    largest = max(c for _, c in counts)
    assert largest < cap, (largest, cap)
    # the caps are reached early: from half the items on, more items add no series
    half = [c for a, c in counts if N_ITEMS // 2 <= a]
    assert half and max(half) == n, counts
    # the backlog was visible while it lasted (batched records: lag counts records, not events)
    assert max(lags, default=0) > 0
    overflow = {line.split('"')[1]: float(line.rsplit(" ", 1)[1]) for line in series(text)
                if line.startswith("stagewatch_cardinality_overflow_total{")}
    assert overflow.get("workflow", 0) > 0 and overflow.get("segment", 0) > 0 and overflow.get("stage", 0) > 0
    workflows = {line.split('workflow="')[1].split('"')[0] for line in series(text) if 'workflow="' in line}
    # per partition engine: at most max_workflows of its own + "other" (see series_cap)
    assert len(workflows) <= PARTITIONS * CAPS["max_workflows"] + 1 and "other" in workflows
    print(f"\n{N_ITEMS} items ({health['open_items']} open): {n} series (cap {cap}, largest seen {largest}, {half[0]} at {N_ITEMS // 2}+), "
          f"overflow {overflow}; produced in {produced - started:.1f} s, processed {done - started:.1f} s after "
          f"the first send; consumer lag seen: max {max(lags, default=0):.0f}")
