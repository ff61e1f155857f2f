from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from grafana import build
from grafana.dashboards import DASHBOARDS, all_panel_queries, dashboard_queries, iter_panels

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "grafana"


def committed() -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted((GRAFANA / "dashboards").glob("*.json"))}


def test_grafana_package_is_ours_not_an_installed_one() -> None:
    import grafana

    assert Path(grafana.__file__).resolve().parent == GRAFANA


def test_regenerating_gives_the_committed_files_byte_for_byte(tmp_path: Path) -> None:
    assert build.stale() == [], "run: python -m grafana.build"
    build.write(tmp_path)
    for path in tmp_path.iterdir():
        assert path.read_bytes() == (GRAFANA / "dashboards" / path.name).read_bytes()
    assert build.render_all() == build.render_all()  # deterministic within a run too
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(committed())


def test_check_mode_reports_a_hand_edited_file(tmp_path: Path) -> None:
    build.write(tmp_path)
    target = tmp_path / "stagewatch-data-health.json"
    target.write_text(target.read_text().replace("Event lag", "Event lagg"))
    assert build.main(["--check", "--out", str(tmp_path)]) == 1
    assert build.main(["--out", str(tmp_path)]) == 0
    assert build.main(["--check", "--out", str(tmp_path)]) == 0


def test_both_dashboards_exist_with_stable_uids_and_titles() -> None:
    titles = {d["title"]: d["uid"] for d in committed().values()}
    assert titles == {
        "Stagewatch pipeline overview": "stagewatch-pipeline",
        "Stagewatch data health": "stagewatch-data-health",
    }


def test_every_panel_and_target_uses_the_datasource_variable() -> None:
    for name, model in committed().items():
        panels = iter_panels(model)
        assert panels, name
        for panel in panels:
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, (name, panel["title"])
            assert panel["targets"], (name, panel["title"])
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == "${datasource}"
                assert target["expr"].strip()


def test_template_variables_datasource_workflow_and_stage() -> None:
    for name, model in committed().items():
        variables = {v["name"]: v for v in model["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["query"] == "prometheus"
        for var in ("workflow", "stage"):
            v = variables[var]
            assert v["type"] == "query", name
            assert re.fullmatch(rf"label_values\(stagewatch_\w+(\{{[^}}]*\}})?, {var}\)", v["query"]), v["query"]
            assert v["datasource"]["uid"] == "${datasource}"
            assert v["includeAll"] and v["multi"]
        assert "$workflow" in variables["stage"]["query"]  # stage list follows the chosen workflow


def test_panel_ids_are_unique_and_panels_do_not_overlap() -> None:
    for name, model in committed().items():
        panels = iter_panels(model)
        assert len({p["id"] for p in panels}) == len(panels), name
        cells: set[tuple[int, int]] = set()
        for p in panels:
            g = p["gridPos"]
            assert g["x"] + g["w"] <= 24, (name, p["title"])
            for x in range(g["x"], g["x"] + g["w"]):
                for y in range(g["y"], g["y"] + g["h"]):
                    assert (x, y) not in cells, (name, p["title"])
                    cells.add((x, y))


def test_overview_shows_what_the_product_promises() -> None:
    exprs = " ".join(
        t["expr"] for p in iter_panels(committed()["stagewatch-pipeline-overview.json"]) for t in p["targets"]
    )
    for metric in (
        "stagewatch_work_in_progress", "stagewatch_stage_arrivals_total", "stagewatch_stage_departures_total",
        "stagewatch_stage_duration_seconds:p50_6h", "stagewatch_stage_duration_seconds:p95_6h",
        "stagewatch_stage_expected_duration_seconds", "stagewatch_stalled_items", "stagewatch_oldest_item_age_seconds",
        "stagewatch_bottleneck_score", "stagewatch_anomalies_total",
    ):
        assert metric in exprs, metric
    health = " ".join(
        t["expr"] for p in iter_panels(committed()["stagewatch-data-health.json"]) for t in p["targets"]
    )
    for metric in (
        "stagewatch_events_total", "stagewatch_dlq_records_total", "stagewatch_event_lag_seconds_bucket",
        "time() - max by (workflow) (stagewatch_source_last_event_timestamp_seconds", "stagewatch_consumer_lag_records",
        "stagewatch_sink_buffered_alerts", "stagewatch_sink_dropped_alerts_total",
    ):
        assert metric in health, metric


def test_all_panel_queries_covers_every_panel_and_recording_rule_with_variables_expanded() -> None:
    queries = all_panel_queries()
    n_targets = sum(len(p["targets"]) for m in committed().values() for p in iter_panels(m))
    rules = yaml.safe_load((ROOT / "deploy/prometheus/rules/stagewatch-recording.yml").read_text())
    n_records = sum(1 for g in rules["groups"] for r in g["rules"] if "record" in r)
    assert len(queries) == n_targets + n_records
    assert len(dashboard_queries(raw=True)) == n_targets
    for q in queries:
        assert "$" not in q, q  # runnable by Prometheus as is
    assert any("$__rate_interval" in q for q in dashboard_queries(raw=True))
    assert set(DASHBOARDS) == {p.removesuffix(".json") for p in committed()}


def test_provisioning_files_point_at_prometheus_and_the_dashboards() -> None:
    ds = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    (source,) = ds["datasources"]
    assert source["type"] == "prometheus" and source["url"].startswith("http://127.0.0.1:")
    prov = yaml.safe_load((GRAFANA / "provisioning/dashboards/stagewatch.yml").read_text())
    (provider,) = prov["providers"]
    assert provider["type"] == "file" and provider["options"]["path"]
