"""The Alertmanager sink against a real ``prometheus-alertmanager`` process on 127.0.0.1."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry

from monitor.events import Alert, alert_id, format_ts
from monitor.metrics import create
from monitor.sinks import AlertmanagerSink

pytestmark = pytest.mark.integration

BINARY = "prometheus-alertmanager"
MINIMAL_CONFIG = """\
route:
  receiver: blackhole
  group_by: [alertname]
receivers:
  - name: blackhole
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalAlertmanager:
    """One Alertmanager process on a loopback port, gossip off, state in a temp directory."""

    def __init__(self, workdir: Path, port: int | None = None, config: str = MINIMAL_CONFIG) -> None:
        self.config = config
        self.port = port or _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, ready_timeout: float = 20.0) -> None:
        binary = shutil.which(BINARY)
        if binary is None:
            pytest.fail(f"{BINARY} is not installed (the Makefile installs it: apt-get install prometheus-alertmanager)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        cfg = self.workdir / "alertmanager.yml"
        cfg.write_text(self.config)
        self.log = (self.workdir / "alertmanager.log").open("ab")
        self.proc = subprocess.Popen(
            [binary, f"--config.file={cfg}", f"--storage.path={self.workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address="],
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"alertmanager exited with {self.proc.returncode}: {self._log_tail()}")
            try:
                if httpx.get(self.url + "/-/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        pytest.fail(f"alertmanager not ready after {ready_timeout}s: {self._log_tail()}")

    def _log_tail(self) -> str:
        return (self.workdir / "alertmanager.log").read_text(errors="replace")[-2000:]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None


@pytest.fixture
def am_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The shared ``alertmanager`` fixture (tests/conftest.py) when present, else our own process."""
    try:
        shared = request.getfixturevalue("alertmanager")
    except pytest.FixtureLookupError:
        shared = None
    if shared is not None:
        yield str(getattr(shared, "url", shared)).rstrip("/")
        return
    am = LocalAlertmanager(tmp_path / "am")
    am.start()
    try:
        yield am.url
    finally:
        am.stop()


def make_alert(entity: str, status: str = "firing", at: float | None = None) -> Alert:
    return Alert(
        alert_id=alert_id("stalled", "sales", "contract", entity), kind="stalled", status=status,
        workflow="sales", stage="contract", entity_id=entity, segment="enterprise",
        at=format_ts(at if at is not None else time.time()), observed_seconds=912000.0,
        expected_seconds=302000.0, threshold_seconds=700000.0, score=0.998, severity="page",
        summary=f"{entity} has been in contract 10.6 days; typical for enterprise is 3.5 days (p95 8.1)",
        waiting_on="legal",
    )


def active_alerts(url: str, entity: str) -> list[dict]:
    resp = httpx.get(url + "/api/v2/alerts", params={"filter": f'entity_id="{entity}"'}, timeout=5)
    resp.raise_for_status()
    return resp.json()


def wait_for(predicate, timeout: float = 15.0, step: float = 0.2):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


def test_firing_alert_is_visible_with_labels_and_annotations_then_resolves(am_url: str) -> None:
    entity = f"deal-{time.time_ns()}"
    registry = CollectorRegistry()
    metrics = create(registry, lambda: None, time.time)

    async def scenario() -> list[list[dict]]:
        sink = AlertmanagerSink([am_url], resend_interval=2.0, resolved_resend=5.0, timeout=3.0, metrics=metrics,
                                item_url_template="http://127.0.0.1:6066/items/{entity_id}")
        task = asyncio.create_task(sink.run())
        seen: list[list[dict]] = []
        try:
            fired_at = time.time() - 60
            sink.submit([make_alert(entity, at=fired_at)])
            assert await sink.flush(10.0)
            seen.append(await asyncio.to_thread(active_alerts, am_url, entity))
            sink.submit([make_alert(entity, status="resolved")])
            assert await sink.flush(10.0)
            seen.append(await asyncio.to_thread(wait_for, lambda: not active_alerts(am_url, entity) or None, 10.0))
        finally:
            sink.stop()
            await asyncio.wait_for(task, 10)
        return seen

    firing, _ = asyncio.run(scenario())
    assert len(firing) == 1
    got = firing[0]
    assert got["labels"]["alertname"] == "StagewatchItemStalled"
    assert got["labels"]["workflow"] == "sales" and got["labels"]["stage"] == "contract"
    assert got["labels"]["entity_id"] == entity and got["labels"]["severity"] == "page"
    assert got["labels"]["alert_id"] == alert_id("stalled", "sales", "contract", entity)
    assert got["annotations"]["observed_seconds"] == "912000"
    assert got["annotations"]["item_url"] == f"http://127.0.0.1:6066/items/{entity}"
    assert "Waiting on legal" in got["annotations"]["description"]
    assert got["status"]["state"] == "active"
    assert active_alerts(am_url, entity) == []  # resolved: no longer active
    assert registry.get_sample_value("stagewatch_sink_sent_total", {"sink": "alertmanager", "outcome": "success"}) >= 2
    assert registry.get_sample_value("stagewatch_sink_buffered_alerts", {"sink": "alertmanager"}) == 0


def test_firing_alert_is_resent_so_it_does_not_expire(am_url: str) -> None:
    entity = f"deal-{time.time_ns()}"

    async def scenario() -> tuple[str, str]:
        sink = AlertmanagerSink([am_url], resend_interval=1.0, timeout=3.0)
        task = asyncio.create_task(sink.run())
        try:
            sink.submit([make_alert(entity)])
            assert await sink.flush(10.0)
            first = (await asyncio.to_thread(active_alerts, am_url, entity))[0]["endsAt"]
            await asyncio.sleep(2.5)  # > 2 resend intervals
            later = (await asyncio.to_thread(active_alerts, am_url, entity))[0]["endsAt"]
        finally:
            sink.stop()
            await asyncio.wait_for(task, 10)
        return first, later

    first, later = asyncio.run(scenario())
    assert later > first  # RFC 3339 in UTC: text order is time order


def test_alerts_are_buffered_while_alertmanager_is_down_and_delivered_when_it_starts(tmp_path: Path) -> None:
    am = LocalAlertmanager(tmp_path / "late-am")
    other = LocalAlertmanager(tmp_path / "other-am")  # HA: every URL gets every alert
    entity = f"deal-{time.time_ns()}"
    registry = CollectorRegistry()
    metrics = create(registry, lambda: None, time.time)

    async def scenario() -> tuple[bool, float, float]:
        sink = AlertmanagerSink([am.url, other.url], resend_interval=30.0, timeout=1.0, metrics=metrics,
                                backoff_initial=0.2, backoff_max=1.0)
        task = asyncio.create_task(sink.run())
        try:
            sink.submit([make_alert(entity)])
            delivered_while_down = await sink.flush(1.5)
            buffered = registry.get_sample_value("stagewatch_sink_buffered_alerts", {"sink": "alertmanager"})
            errors = registry.get_sample_value("stagewatch_sink_sent_total", {"sink": "alertmanager", "outcome": "error"})
            await asyncio.to_thread(am.start)
            await asyncio.to_thread(other.start)
            assert await sink.flush(15.0), "not delivered after Alertmanager came up"
        finally:
            sink.stop()
            await asyncio.wait_for(task, 10)
        return delivered_while_down, buffered or 0, errors or 0

    try:
        delivered_while_down, buffered, errors = asyncio.run(scenario())
        assert not delivered_while_down
        assert buffered == 1
        assert errors >= 2  # at least one failed attempt per Alertmanager, retried
        for url in (am.url, other.url):
            got = active_alerts(url, entity)
            assert len(got) == 1 and got[0]["labels"]["entity_id"] == entity
    finally:
        am.stop()
        other.stop()


def test_deploy_config_inhibits_stalled_items_of_a_silent_workflow(tmp_path: Path) -> None:
    config = (Path(__file__).resolve().parents[2] / "deploy/alertmanager/alertmanager.yml").read_text()
    am = LocalAlertmanager(tmp_path / "deploy-am", config=config)
    am.start()
    try:
        stalled = make_alert("deal-7")
        silent_sales = Alert(
            alert_id=alert_id("source_silent", "sales", None, None), kind="source_silent", status="firing",
            workflow="sales", stage=None, entity_id=None, segment=None, at=format_ts(time.time()),
            observed_seconds=7200.0, expected_seconds=300.0, threshold_seconds=1800.0, score=0.99,
            severity="page", summary="sales sent no event for 2.0 h; typical gap 5 min",
        )
        other = Alert(**{**{f: getattr(stalled, f) for f in stalled.__struct_fields__},
                         "workflow": "claims", "alert_id": alert_id("stalled", "claims", "contract", "deal-7")})

        async def scenario() -> bool:
            sink = AlertmanagerSink([am.url], resend_interval=30.0, timeout=3.0)
            sink.submit([stalled, silent_sales, other])
            return await sink.flush(10.0)

        assert asyncio.run(scenario())

        def states() -> dict[tuple[str, str], str] | None:
            got = httpx.get(am.url + "/api/v2/alerts", timeout=5).json()
            out = {(a["labels"]["alertname"], a["labels"]["workflow"]): a["status"]["state"] for a in got}
            return out if len(out) == 3 and "unprocessed" not in out.values() else None

        result = wait_for(states, 15.0)
        assert result == {
            ("StagewatchItemStalled", "sales"): "suppressed",  # inhibited by the silent source
            ("StagewatchSourceSilent", "sales"): "active",
            ("StagewatchItemStalled", "claims"): "active",  # another workflow: not inhibited
        }
    finally:
        am.stop()
