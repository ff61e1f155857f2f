from __future__ import annotations

import io
import json
from datetime import datetime

import pytest
from prometheus_client import CollectorRegistry

from monitor.events import Alert, alert_id, decode_alert
from monitor.metrics import create
from monitor.sinks import (
    ALERTNAMES,
    AlertmanagerSink,
    JsonlSink,
    StdoutSink,
    alertname,
    human_duration,
    to_alertmanager,
)

NOW = 1_773_050_400.0  # 2026-03-09T10:00:00Z


def ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def make_alert(kind: str = "stalled", status: str = "firing", entity: str | None = "deal-42",
               at: str = "2026-03-09T10:00:00Z", **kw: object) -> Alert:
    fields: dict = dict(
        alert_id=alert_id(kind, "sales", "contract", entity), kind=kind, status=status, workflow="sales",
        stage="contract", entity_id=entity, segment="enterprise", at=at, observed_seconds=912000.0,
        expected_seconds=302000.0, threshold_seconds=700000.0, score=0.998, severity="page",
        summary="deal-42 has been in contract 10.6 days; typical for enterprise is 3.5 days (p95 8.1)",
    )
    fields.update(kw)
    return Alert(**fields)


def test_firing_alert_maps_to_labels_annotations_and_a_future_end() -> None:
    a = make_alert(waiting_on="legal")
    out = to_alertmanager(a, NOW, 60.0, item_url_template="http://127.0.0.1:6066/items/{entity_id}")
    assert out["labels"] == {
        "alertname": "StagewatchItemStalled", "workflow": "sales", "stage": "contract",
        "entity_id": "deal-42", "segment": "enterprise", "severity": "page", "alert_id": a.alert_id,
    }
    ann = out["annotations"]
    assert ann["summary"] == a.summary
    assert ann["observed_seconds"] == "912000"
    assert ann["expected_seconds"] == "302000"
    assert ann["threshold_seconds"] == "700000"
    assert ann["score"] == "0.998"
    assert ann["item_url"] == "http://127.0.0.1:6066/items/deal-42"
    assert "10.6 days" in ann["description"] and "3.5 days" in ann["description"]
    assert "8.1 days" in ann["description"] and "Waiting on legal" in ann["description"]
    assert out["startsAt"] == "2026-03-09T10:00:00Z"
    assert ts(out["endsAt"]) == NOW + 4 * 60


def test_resolved_alert_ends_at_its_resolution_instant_and_keeps_its_start() -> None:
    a = make_alert(status="resolved", at="2026-03-09T09:30:00Z")
    out = to_alertmanager(a, NOW, 60.0, starts_at=NOW - 7200)
    assert ts(out["endsAt"]) == NOW - 1800
    assert ts(out["startsAt"]) == NOW - 7200


def test_times_are_never_in_the_future_and_end_never_precedes_start() -> None:
    future = make_alert(status="resolved", at="2026-03-09T12:00:00Z")
    out = to_alertmanager(future, NOW, 60.0)
    assert ts(out["endsAt"]) == NOW and ts(out["startsAt"]) == NOW
    early = make_alert(status="resolved", at="2026-03-09T08:00:00Z")
    out = to_alertmanager(early, NOW, 60.0, starts_at=NOW - 600)  # resolution before the start we saw
    assert ts(out["endsAt"]) >= ts(out["startsAt"])


def test_entity_id_is_a_label_only_for_item_kinds() -> None:
    for kind in ("bottleneck_shift", "backlog_growth", "source_silent"):
        out = to_alertmanager(make_alert(kind=kind), NOW, 60.0, item_url_template="http://127.0.0.1/{entity_id}")
        assert "entity_id" not in out["labels"]
        assert out["labels"]["alertname"] == ALERTNAMES[kind]
    slow = to_alertmanager(make_alert(kind="slow_stage"), NOW, 60.0)
    assert slow["labels"]["entity_id"] == "deal-42"
    silent = to_alertmanager(make_alert(kind="source_silent", entity=None, stage=None, segment=None), NOW, 60.0)
    assert set(silent["labels"]) == {"alertname", "workflow", "severity", "alert_id"}
    assert "item_url" not in silent["annotations"]


def test_alertnames_cover_every_kind_and_unknown_kinds_get_a_readable_name() -> None:
    assert set(ALERTNAMES) == {"stalled", "slow_stage", "bottleneck_shift", "backlog_growth", "source_silent"}
    assert alertname("queue_jump") == "StagewatchQueueJump"


def test_item_url_quotes_the_entity_id() -> None:
    out = to_alertmanager(make_alert(entity="deal 42/x"), NOW, 60.0, item_url_template="http://127.0.0.1/i/{entity_id}")
    assert out["annotations"]["item_url"] == "http://127.0.0.1/i/deal%2042%2Fx"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(45, "45 s"), (600, "10 min"), (3 * 3600, "3.0 hours"), (0.4, "0.4 s"), (912000, "10.6 days"), (float("nan"), "unknown")],
)
def test_human_duration(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def test_jsonl_sink_appends_decodable_lines(tmp_path) -> None:
    path = tmp_path / "out" / "alerts.jsonl"
    with JsonlSink(path) as sink:
        sink.submit([make_alert()])
        assert len(path.read_text().splitlines()) == 1  # flushed at once
    with JsonlSink(path) as sink:
        sink.submit([make_alert(status="resolved"), make_alert(kind="slow_stage")])
    lines = path.read_bytes().splitlines()
    assert [decode_alert(ln).status for ln in lines] == ["firing", "resolved", "firing"]
    with pytest.raises(ValueError):
        sink.submit([make_alert()])


def test_stdout_sink_writes_json_lines() -> None:
    buf = io.StringIO()
    StdoutSink(buf).submit([make_alert(), make_alert(status="resolved")])
    rows = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert [r["status"] for r in rows] == ["firing", "resolved"]
    assert rows[0]["entity_id"] == "deal-42"


def test_submit_never_blocks_and_drops_the_oldest_when_full() -> None:
    registry = CollectorRegistry()
    metrics = create(registry, lambda: None, lambda: NOW)
    sink = AlertmanagerSink(["http://127.0.0.1:9"], buffer_size=3, metrics=metrics)
    alerts = [make_alert(entity=f"deal-{i}") for i in range(5)]
    sink.submit(alerts)  # no event loop, no network: returns at once
    assert sink.stats.dropped == 2
    assert registry.get_sample_value("stagewatch_sink_dropped_alerts_total", {"sink": "alertmanager"}) == 2
    assert registry.get_sample_value("stagewatch_sink_buffered_alerts", {"sink": "alertmanager"}) == 3
    assert [a.entity_id for a in sink._inbox] == ["deal-2", "deal-3", "deal-4"]


def test_sink_rejects_nonsense_settings() -> None:
    with pytest.raises(ValueError):
        AlertmanagerSink([])
    with pytest.raises(ValueError):
        AlertmanagerSink(["http://127.0.0.1:9093"], resend_interval=0)


def test_from_config_takes_every_setting() -> None:
    from monitor.config import AlertmanagerConfig

    cfg = AlertmanagerConfig(urls=("http://127.0.0.1:9093/", "http://127.0.0.1:9094"), resend_interval_seconds=30,
                             resolved_resend_seconds=120, buffer_size=7, timeout_seconds=2,
                             item_url_template="http://127.0.0.1:6066/items/{entity_id}")
    sink = AlertmanagerSink.from_config(cfg)
    assert [t.endpoint for t in sink._targets] == [
        "http://127.0.0.1:9093/api/v2/alerts", "http://127.0.0.1:9094/api/v2/alerts"]
    assert (sink.resend_interval, sink.resolved_resend, sink.buffer_size, sink.timeout) == (30, 120, 7, 2)
    assert sink.item_url_template == cfg.item_url_template


def test_active_alerts_are_bounded_and_resolved_ones_go_first() -> None:
    sink = AlertmanagerSink(["http://127.0.0.1:9"], buffer_size=3)
    sink.submit([make_alert(entity="a"), make_alert(entity="b", status="resolved"), make_alert(entity="c")])
    sink._drain(NOW)
    sink.submit([make_alert(entity="d")])
    sink._drain(NOW)
    kept = {sink._active[i].alert.entity_id for i in sink.active_alert_ids()}
    assert kept == {"a", "c", "d"}
    assert sink.stats.dropped == 1


def test_a_resolution_keeps_the_start_of_its_firing() -> None:
    sink = AlertmanagerSink(["http://127.0.0.1:9"])
    sink.submit([make_alert(at="2026-03-09T08:00:00Z")])
    sink._drain(NOW)
    sink.submit([make_alert(at="2026-03-09T09:00:00Z")])  # re-fired update: start unchanged
    sink.submit([make_alert(status="resolved", at="2026-03-09T09:45:00Z")])
    sink._drain(NOW)
    (tracked,) = sink._active.values()
    assert tracked.starts_at == ts("2026-03-09T08:00:00Z")
    assert tracked.alert.status == "resolved"
