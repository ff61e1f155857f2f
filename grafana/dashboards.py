"""Stagewatch dashboards as code (grafanalib). ``python -m grafana.build`` writes grafana/dashboards/*.json.

Every panel and query uses the ``${datasource}`` variable; ``workflow`` and ``stage`` are template variables
filled from ``label_values`` queries, so one dashboard serves every workflow.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from grafanalib.core import Dashboard, GridPos, Target, Template, Templating, Time, TimeSeries

DATASOURCE: dict[str, str] = {"type": "prometheus", "uid": "${datasource}"}
SEL = 'workflow=~"$workflow", stage=~"$stage"'
WF = 'workflow=~"$workflow"'
ROOT = Path(__file__).resolve().parent.parent
RECORDING_RULES = ROOT / "deploy" / "prometheus" / "rules" / "stagewatch-recording.yml"

# How Grafana's variables are expanded when a query is run outside Grafana (``all_panel_queries``).
EXPANSIONS: dict[str, str] = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
    "$workflow": ".*",
    "$stage": ".*",
}


def _templating() -> Templating:
    return Templating(
        list=[
            Template(name="datasource", label="Data source", type="datasource", query="prometheus"),
            Template(
                name="workflow",
                label="Workflow",
                query="label_values(stagewatch_work_in_progress, workflow)",
                dataSource=DATASOURCE,
                includeAll=True,
                multi=True,
                allValue=".*",
            ),
            Template(
                name="stage",
                label="Stage",
                query='label_values(stagewatch_work_in_progress{workflow=~"$workflow"}, stage)',
                dataSource=DATASOURCE,
                includeAll=True,
                multi=True,
                allValue=".*",
            ),
        ]
    )


def _panel(
    title: str,
    queries: list[tuple[str, str]],
    pos: tuple[int, int, int, int],
    unit: str = "short",
    description: str = "",
    **extra: Any,
) -> TimeSeries:
    x, y, w, h = pos
    return TimeSeries(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=[
            Target(expr=expr, legendFormat=legend, refId=chr(ord("A") + i), datasource=DATASOURCE)
            for i, (expr, legend) in enumerate(queries)
        ],
        gridPos=GridPos(x=x, y=y, w=w, h=h),
        unit=unit,
        **extra,
    )


def _dashboard(title: str, uid: str, description: str, panels: list[TimeSeries]) -> Dashboard:
    return Dashboard(
        title=title,
        uid=uid,
        description=description,
        tags=["stagewatch"],
        timezone="browser",
        time=Time("now-7d", "now"),
        refresh="1m",
        templating=_templating(),
        panels=panels,
    ).auto_panel_ids()


def pipeline_overview() -> Dashboard:
    return _dashboard(
        "Stagewatch pipeline overview",
        "stagewatch-pipeline",
        "Where work sits, how it flows, which stage is the bottleneck and what is stalled.",
        [
            _panel(
                "Work in progress per stage",
                [(f"sum by (workflow, stage) (stagewatch_work_in_progress{{{SEL}}})", "{{workflow}} / {{stage}}")],
                (0, 0, 12, 8),
                stacking={"mode": "normal", "group": "A"},
                fillOpacity=30,
            ),
            _panel(
                "Flow in / out per stage (items per hour)",
                [
                    (
                        f"3600 * sum by (workflow, stage) (rate(stagewatch_stage_arrivals_total{{{SEL}}}[$__rate_interval]))",
                        "in {{workflow}} / {{stage}}",
                    ),
                    (
                        f"3600 * sum by (workflow, stage) (rate(stagewatch_stage_departures_total{{{SEL}}}[$__rate_interval]))",
                        "out {{workflow}} / {{stage}}",
                    ),
                ],
                (12, 0, 12, 8),
                description="Arrivals above departures for long means work piles up in that stage.",
            ),
            _panel(
                "Stage duration p50 / p95 vs learned expected",
                [
                    (f"workflow_stage:stagewatch_stage_duration_seconds:p50_6h{{{SEL}}}", "p50 {{workflow}} / {{stage}}"),
                    (f"workflow_stage:stagewatch_stage_duration_seconds:p95_6h{{{SEL}}}", "p95 {{workflow}} / {{stage}}"),
                    (
                        f'stagewatch_stage_expected_duration_seconds{{{SEL}, segment="*", quantile="0.5"}}',
                        "expected typical {{workflow}} / {{stage}}",
                    ),
                    (
                        f'stagewatch_stage_expected_duration_seconds{{{SEL}, segment="*", quantile="0.95"}}',
                        "expected p95 {{workflow}} / {{stage}}",
                    ),
                ],
                (0, 8, 12, 8),
                unit="s",
                description="Completed durations (6 h window, all segments) against what the engine learned.",
            ),
            _panel(
                "Stalled items",
                [
                    (f"sum by (workflow, stage) (stagewatch_stalled_items{{{SEL}}})", "stalled {{workflow}} / {{stage}}"),
                    (
                        f"sum by (workflow, stage) (stagewatch_items_due_next_hour{{{SEL}}})",
                        "due within 1 h {{workflow}} / {{stage}}",
                    ),
                ],
                (12, 8, 12, 8),
            ),
            _panel(
                "Oldest open item age",
                [(f"max by (workflow, stage) (stagewatch_oldest_item_age_seconds{{{SEL}}})", "{{workflow}} / {{stage}}")],
                (0, 16, 8, 8),
                unit="s",
            ),
            _panel(
                "Bottleneck score",
                [(f"max by (workflow, stage) (stagewatch_bottleneck_score{{{SEL}}})", "{{workflow}} / {{stage}}")],
                (8, 16, 8, 8),
                unit="percentunit",
                description="Share of the workflow's time in process spent in the stage (0..1), shift-aware.",
            ),
            _panel(
                "Anomalies by kind (per hour)",
                # a rate over the panel's own interval: increase over a fixed hour left out what fell between
                # the points once Grafana stepped by more than an hour (half of a 7-day range's anomalies)
                [(f"3600 * sum by (workflow, kind) (rate(stagewatch_anomalies_total{{{WF}}}[$__rate_interval]))",
                  "{{workflow}} {{kind}}")],
                (16, 16, 8, 8),
                drawStyle="bars",
                fillOpacity=60,
            ),
        ],
    )


def data_health() -> Dashboard:
    return _dashboard(
        "Stagewatch data health",
        "stagewatch-data-health",
        "Is Stagewatch seeing all the data, on time, and delivering its alerts?",
        [
            _panel(
                "Events per second by outcome",
                [(f"sum by (outcome) (rate(stagewatch_events_total{{{WF}}}[$__rate_interval]))", "{{outcome}}")],
                (0, 0, 12, 8),
                unit="ops",
            ),
            _panel(
                "Dead-letter records per second by reason",
                [("sum by (reason_class) (rate(stagewatch_dlq_records_total[$__rate_interval]))", "{{reason_class}}")],
                (12, 0, 12, 8),
                unit="ops",
            ),
            _panel(
                "Event lag (wall clock - event time)",
                [
                    (
                        "histogram_quantile(0.5, sum by (le) (rate(stagewatch_event_lag_seconds_bucket[$__rate_interval])))",
                        "p50",
                    ),
                    (
                        "histogram_quantile(0.99, sum by (le) (rate(stagewatch_event_lag_seconds_bucket[$__rate_interval])))",
                        "p99",
                    ),
                ],
                (0, 8, 12, 8),
                unit="s",
            ),
            _panel(
                "Source freshness (time since last event)",
                [
                    (
                        f"time() - max by (workflow) (stagewatch_source_last_event_timestamp_seconds{{{WF}}})",
                        "{{workflow}}",
                    ),
                ],
                (12, 8, 12, 8),
                unit="s",
            ),
            _panel(
                "Silent sources",
                [(f"max by (workflow) (stagewatch_source_silent{{{WF}}})", "{{workflow}}")],
                (0, 16, 8, 8),
                description="1 while the workflow sends no events compared with its learned rate.",
            ),
            _panel(
                "Consumer lag (records)",
                [("sum by (instance) (stagewatch_consumer_lag_records)", "{{instance}}")],
                (8, 16, 8, 8),
            ),
            _panel(
                "Tick duration p99",
                [
                    (
                        "histogram_quantile(0.99, sum by (le) (rate(stagewatch_tick_duration_seconds_bucket[$__rate_interval])))",
                        "p99",
                    ),
                ],
                (16, 16, 8, 8),
                unit="s",
            ),
            _panel(
                "Alert sinks: buffered and dropped",
                [
                    ("sum by (sink) (stagewatch_sink_buffered_alerts)", "buffered {{sink}}"),
                    ("sum by (sink) (increase(stagewatch_sink_dropped_alerts_total[$__rate_interval]))", "dropped {{sink}}"),
                ],
                (0, 24, 12, 8),
            ),
            _panel(
                "Alert sinks: deliveries per second by outcome",
                [
                    ("sum by (sink, outcome) (rate(stagewatch_sink_sent_total[$__rate_interval]))", "{{sink}} {{outcome}}"),
                    ("sum by (kind, status) (rate(stagewatch_alerts_published_total[$__rate_interval]))", "published {{kind}} {{status}}"),
                ],
                (12, 24, 12, 8),
                unit="ops",
            ),
        ],
    )


DASHBOARDS = {
    "stagewatch-pipeline-overview": pipeline_overview,
    "stagewatch-data-health": data_health,
}


def dashboard_json(dashboard: Dashboard) -> dict[str, Any]:
    """The Grafana JSON model of a dashboard, as plain data."""
    import json

    from grafanalib._gen import DashboardEncoder

    return json.loads(json.dumps(dashboard.to_json_data(), cls=DashboardEncoder))


def iter_panels(model: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for panel in model.get("panels", []):
        out.append(panel)
        out.extend(panel.get("panels", []))  # collapsed rows
    return out


def expand(expr: str) -> str:
    """Replace Grafana variables with values Prometheus accepts (longest names first)."""
    for name in sorted(EXPANSIONS, key=len, reverse=True):
        expr = expr.replace(name, EXPANSIONS[name])
    return expr


def dashboard_queries(raw: bool = False) -> list[str]:
    exprs = [
        target["expr"]
        for build in DASHBOARDS.values()
        for panel in iter_panels(dashboard_json(build()))
        for target in panel.get("targets", [])
    ]
    return exprs if raw else [expand(e) for e in exprs]


def recording_rule_queries() -> list[str]:
    doc = yaml.safe_load(RECORDING_RULES.read_text())
    return [re.sub(r"\s+", " ", r["expr"]).strip() for g in doc["groups"] for r in g["rules"] if "record" in r]


def all_panel_queries() -> list[str]:
    """Every PromQL expression of every dashboard panel (Grafana variables expanded to match-all values and
    fixed intervals) and every recording rule: what the end-to-end test runs against a real Prometheus."""
    return dashboard_queries() + recording_rule_queries()
