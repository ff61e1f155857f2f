"""Ops feedback through Kafka: `false` on a page raises that stage's limit in the worker that owns the
item, and the raised limit survives a crash even when no event follows the feedback."""

from __future__ import annotations

import time

import httpx

from monitor.config import load_settings
from monitor.events import Event, decode_alert
from monitor.feedback import export_feedback, find_alert, from_alert, send_feedback, verdicts
from monitor.produce import produce
from streams.app import partition_for
from streams.process import WorkerProcess
from tests.integration.test_reliability import kill9
from tests.integration.test_worker import DAY, base_settings, create_topics, read_topic, stream, wait_assigned


def test_false_alert_feedback_raises_the_limit_and_is_exported(kafka, tmp_path):
    cfg = base_settings(kafka, partitions=2, clock="event")
    create_topics(kafka, [*cfg["topics"]["events"], cfg["topics"]["alerts"]], 2)
    settings = load_settings(None, **cfg)
    with WorkerProcess(tmp_path, cfg) as w:
        wait_assigned([w], 2)
        events = stream(160, seed=11, start=1_767_225_600.0, unit=DAY)
        produce(settings, events, batch=20)
        records = read_topic(kafka, cfg["topics"]["alerts"],
                             lambda r: any(decode_alert(x.value).kind == "stalled" for x in r), timeout=90, idle=2)
        paged = next(a for a in map(lambda r: decode_alert(r.value), records) if a.kind == "stalled")
        found = find_alert(settings, paged.alert_id)
        assert found is not None and found.entity_id == paged.entity_id

        part = str(partition_for(paged.entity_id.encode(), 2))
        assert httpx.get(f"{w.url}/feedback").json()[part] == []
        send_feedback(settings, from_alert(found, False, note="customer on holiday", by="test"))
        want = [{"workflow": "sales", "stage": paged.stage, "segment": paged.segment, "factor": 1.2}]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and httpx.get(f"{w.url}/feedback").json()[part] != want:
            time.sleep(0.5)
        assert httpx.get(f"{w.url}/feedback").json()[part] == want
        # no further event: the next checkpoint must still save it (learned state changed by feedback)
        time.sleep(settings.worker.learned_checkpoint_seconds + 3 * settings.worker.checkpoint_interval_seconds)
        kill9(w)
    with WorkerProcess(tmp_path, cfg) as w:
        wait_assigned([w], 2)
        # a partition's engine is rebuilt from the changelog at its first event: one probe, a new item
        probe = next(f"probe-{k}" for k in range(100) if str(partition_for(f"probe-{k}".encode(), 2)) == part)
        produce(settings, [Event(f"{probe}-lead", "sales", probe, "lead", events[-1].timestamp, {"segment": "smb"})])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and part not in httpx.get(f"{w.url}/feedback").json():
            time.sleep(0.5)
        assert httpx.get(f"{w.url}/feedback").json().get(part) == want
    out = tmp_path / "feedback.jsonl"
    assert export_feedback(settings, out) == 1
    assert verdicts(out) == {paged.alert_id: False}
