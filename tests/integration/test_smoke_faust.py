"""A real Faust worker on the real broker: an event produced with kafka-python reaches the agent,
and the worker's web view shows it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
from kafka import KafkaProducer

from monitor.stack import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]


def _poll_view(url: str, worker: subprocess.Popen[bytes], log: Path, want: int, deadline: float) -> dict:
    last: dict = {}
    while time.monotonic() < deadline:
        assert worker.poll() is None, f"worker exited with {worker.returncode}:\n{log.read_text()[-3000:]}"
        try:
            response = httpx.get(url, timeout=2.0)
            if response.status_code == 200:
                last = response.json()
                if last["count"] >= want:
                    return last
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(
        f"view {url} did not show {want} event(s) in time; last {last}:\n{log.read_text()[-3000:]}"
    )


def test_event_produced_to_kafka_is_seen_by_faust_agent_via_web_view(
    kafka: str, topic_name: str, tmp_path: Path
) -> None:
    started = time.monotonic()
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "SMOKE_APP_ID": f"smoke-{uuid.uuid4().hex[:12]}",
        "SMOKE_TOPIC": topic_name,
        "SMOKE_BROKER": f"kafka://{kafka}",
        "SMOKE_DATADIR": str(tmp_path / "data"),
    }
    log = tmp_path / "worker.log"
    cmd = [
        sys.executable, "-m", "faust", "-A", "tests.integration.smoke_app", "worker",
        "--web-port", str(port), "--web-host", "127.0.0.1", "-l", "warn",
    ]  # fmt: skip
    with open(log, "wb") as out:
        worker = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/smoke/"
        assert _poll_view(url, worker, log, want=0, deadline=time.monotonic() + 60) == {
            "count": 0,
            "entity_ids": [],
        }

        producer = KafkaProducer(bootstrap_servers=kafka)
        event = {"event_id": "ev-1", "workflow": "sales", "entity_id": "deal-42", "stage": "contract",
                 "timestamp": "2026-03-02T14:05:00Z"}  # fmt: skip
        producer.send(topic_name, key=b"deal-42", value=json.dumps(event).encode()).get(timeout=30)
        producer.close()

        seen = _poll_view(url, worker, log, want=1, deadline=time.monotonic() + 60)
        assert seen == {"count": 1, "entity_ids": ["deal-42"]}
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            code = worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=10)
            raise AssertionError(f"worker ignored SIGTERM for 30 s:\n{log.read_text()[-3000:]}") from None
    assert code == 0, f"worker exit code {code}:\n{log.read_text()[-3000:]}"
    print(f"smoke round trip incl. worker start/stop: {time.monotonic() - started:.1f} s")
