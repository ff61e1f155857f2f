"""Hot reload: a changed settings file applies without a restart and keeps what was learned;
an invalid one is rejected with the reason and the running settings stay."""

from __future__ import annotations

import time

import httpx
import yaml

from monitor.config import load_settings
from monitor.produce import produce
from streams.process import WorkerProcess
from tests.integration.test_worker import DAY, base_settings, create_topics, stream, wait_assigned


def _poll(url: str, ok, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            body = httpx.get(url, timeout=2).json()
            if ok(body):
                return body
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} never satisfied the condition; last: {body!r}")


def _contract(baselines: list[dict]) -> dict[str, dict]:
    return {b["segment"]: b for b in baselines if b["stage"] == "contract"}


def test_reload_applies_new_threshold_and_keeps_learned_baselines(kafka, tmp_path):
    cfg = base_settings(kafka, partitions=1, clock="event")
    create_topics(kafka, list(cfg["topics"]["events"]), 1)
    events = stream(120, seed=3, start=1_767_225_600.0, unit=DAY, stalls=0)
    with WorkerProcess(tmp_path, cfg) as w:
        wait_assigned([w], 1)
        produce(load_settings(None, **cfg), events, batch=20)
        def settled(b: list) -> bool:  # every event processed: two reads 2 s apart agree
            time.sleep(2.0)
            return b == httpx.get(f"{w.url}/baselines").json() and _contract(b).get("smb", {}).get("n", 0) >= 30

        before = _contract(_poll(f"{w.url}/baselines", settled, timeout=90))
        assert before["smb"]["threshold_seconds"] > 2 * DAY

        # a tighter cap for contract: the threshold must follow, the learned numbers must not move
        new = dict(cfg)
        new["workflows"] = {"sales": {**cfg["workflows"]["sales"],
                                      "stages": {"contract": {"max_threshold_seconds": 2 * DAY}}}}
        w.config_path.write_text(yaml.safe_dump(new, sort_keys=False))
        _poll(f"{w.url}/config", lambda c: c["applied"] >= 1)
        after = _contract(httpx.get(f"{w.url}/baselines").json())
        for seg, b in before.items():
            assert (after[seg]["n"], after[seg]["typical_seconds"]) == (b["n"], b["typical_seconds"])
        assert after["smb"]["threshold_seconds"] == 2 * DAY

        # an invalid file is rejected and the running settings stay in force
        w.config_path.write_text("engine:\n  warmup: -1\n")
        status = _poll(f"{w.url}/config", lambda c: c["rejected"] >= 1)
        assert "warmup" in status["last_error"]
        assert _contract(httpx.get(f"{w.url}/baselines").json())["smb"]["threshold_seconds"] == 2 * DAY
        assert 'stagewatch_config_reloads_total{outcome="rejected"} 1.0' in httpx.get(f"{w.url}/metrics").text
