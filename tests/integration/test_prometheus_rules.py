"""Prometheus rules and the Alertmanager configuration, checked by the real promtool / amtool."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "rules"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "tests"
RUNBOOKS = ROOT / "deploy" / "runbooks"
AM_CONFIG = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"

PLATFORM_ALERTS = {
    "StagewatchWorkerDown",
    "StagewatchConsumerLagGrowing",
    "StagewatchDLQRateHigh",
    "StagewatchSourceSilent",
    "StagewatchCardinalityOverflow",
    "StagewatchItemsNotTracked",
    "StagewatchAlertSinkDropping",
}


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed; `make` installs it (Debian packages prometheus / prometheus-alertmanager)")
    return path


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=ROOT)


def rule_files() -> list[Path]:
    files = sorted(RULES.glob("*.yml"))
    assert files, f"no rule files in {RULES}"
    return files


def alert_rules() -> list[dict]:
    return [
        rule
        for f in rule_files()
        for group in yaml.safe_load(f.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


def test_promtool_check_rules_accepts_every_rule_file() -> None:
    proc = run(tool("promtool"), "check", "rules", *map(str, rule_files()))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("SUCCESS") == len(rule_files())


def test_promtool_unit_tests_pass() -> None:
    tests = sorted(RULE_TESTS.glob("*.yml"))
    assert tests
    proc = run(tool("promtool"), "test", "rules", *map(str, tests))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("SUCCESS") == len(tests) and "FAILED" not in proc.stdout


def test_every_rule_file_is_covered_by_a_unit_test_file() -> None:
    covered = {
        (RULE_TESTS / rf).resolve()
        for t in RULE_TESTS.glob("*.yml")
        for rf in yaml.safe_load(t.read_text())["rule_files"]
    }
    assert set(f.resolve() for f in rule_files()) <= covered


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    fires: set[str] = set()
    quiet: set[str] = set()
    for t in RULE_TESTS.glob("*.yml"):
        for case in yaml.safe_load(t.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fires if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {r["alert"] for r in alert_rules()}
    assert names == PLATFORM_ALERTS
    assert names - fires == set(), "alerts never shown firing"
    assert names - quiet == set(), "alerts never shown quiet"


def test_every_alert_has_severity_summary_description_and_an_existing_runbook() -> None:
    for rule in alert_rules():
        name = rule["alert"]
        assert rule["labels"]["severity"] in {"page", "ticket", "info"}, name
        ann = rule["annotations"]
        assert ann["summary"] and ann["description"], name
        assert ann["runbook_url"] == f"deploy/runbooks/{name}.md"
        text = (ROOT / ann["runbook_url"]).read_text()
        for heading in ("## What it means", "## How to check", "## How to fix"):
            assert heading in text, f"{name} runbook lacks {heading!r}"


def test_amtool_accepts_the_alertmanager_config() -> None:
    proc = run(tool("amtool"), "check-config", str(AM_CONFIG))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 inhibit rules" in proc.stdout


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["alertname=StagewatchItemStalled", "workflow=sales", "stage=contract", "severity=page"], "example-webhook"),
        (["alertname=StagewatchSlowStage", "workflow=sales", "severity=ticket"], "default"),
    ],
)
def test_alertmanager_routes_pages_to_the_paging_receiver(labels: list[str], receiver: str) -> None:
    proc = run(tool("amtool"), "config", "routes", "test", f"--config.file={AM_CONFIG}", *labels)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == receiver


def test_alertmanager_groups_by_kind_workflow_stage_and_inhibits_stalls_of_silent_sources() -> None:
    cfg = yaml.safe_load(AM_CONFIG.read_text())
    assert cfg["route"]["group_by"] == ["alertname", "workflow", "stage"]
    (inhibit,) = cfg["inhibit_rules"]
    assert inhibit["source_matchers"] == ['alertname="StagewatchSourceSilent"']
    assert inhibit["target_matchers"] == ['alertname="StagewatchItemStalled"']
    assert inhibit["equal"] == ["workflow"]


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    from grafana.dashboards import all_panel_queries

    queries = all_panel_queries()
    doc = {"groups": [{"name": "dashboard-queries", "rules": [
        {"record": f"dashboard:query_{i}:check", "expr": q} for i, q in enumerate(queries)]}]}
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump(doc))
    proc = run(tool("promtool"), "check", "rules", str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(queries)} rules found" in proc.stdout
