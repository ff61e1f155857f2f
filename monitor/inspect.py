"""Ask a running worker about an item, a stage or the firing alerts: ``stagewatch inspect``.

The worker's web views (``streams/app.py``) answer ``/items/{id}``, ``/baselines``, ``/stages`` and
``/alerts`` with JSON. :func:`fetch` is the only I/O here; everything else turns those JSON documents
into rich tables and is pure, so it is tested with recorded documents.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

DEFAULT_WORKER = "http://127.0.0.1:6066"
TIMEOUT_SECONDS = 5.0


class WorkerUnreachable(RuntimeError):
    """The worker did not answer (not running, wrong URL, timed out)."""


class NotFound(LookupError):
    """The worker answered 404 (e.g. no open item with that id on it)."""


def fetch(worker: str, path: str) -> Any:
    """GET ``worker + path`` and decode the JSON body."""
    import httpx

    url = worker.rstrip("/") + path
    try:
        r = httpx.get(url, timeout=TIMEOUT_SECONDS)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise WorkerUnreachable(
            f"cannot reach the worker at {worker} ({type(exc).__name__}: {exc}); "
            "is `stagewatch worker` running? Give its address with --worker http://127.0.0.1:PORT"
        ) from None
    if r.status_code == 404:
        try:
            doc = r.json()
        except ValueError:
            doc = None
        message = doc.get("error") if isinstance(doc, dict) else None
        raise NotFound(str(message) if message else f"{path}: not found on {worker}")
    if r.status_code >= 400:
        raise WorkerUnreachable(f"{url} answered HTTP {r.status_code}: {r.text[:200]}")
    try:
        return r.json()
    except ValueError:
        raise WorkerUnreachable(f"{url} answered something that is not JSON ({r.headers.get('content-type', '?')}): "
                                "is it a Stagewatch worker's address?") from None


def item_path(entity_id: str) -> str:
    """The worker's path of one item (``/items/{entity_id}``), the id quoted whole: its ``/``, ``#``, ``?``
    and ``%`` are part of it, and so are its dots (an id ``..`` is not a step up the path)."""
    from urllib.parse import quote

    return "/items/" + quote(entity_id, safe="").replace(".", "%2E")


# --------------------------------------------------------------------------- formatting (pure)


def human(seconds: float | None, business: bool = False) -> str:
    if seconds is None:
        return "-"
    from monitor.events import human_duration

    return human_duration(float(seconds), business)


def when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(float(ts), tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _basis(view: dict[str, Any]) -> str:
    """``wall`` or ``business``, with the zone of the local hours when it is not UTC."""
    basis, zone = view.get("time_basis", "wall"), view.get("time_zone", "UTC")
    return basis if zone == "UTC" else f"{basis} ({zone})"


def item_table(item: dict[str, Any]) -> Any:
    """One open item (``/items/{id}``) as a two-column table, the verdict first."""
    from rich.table import Table

    t = Table(title=f"item {item['entity_id']}", show_header=False)
    t.add_column("field", style="bold")
    t.add_column("value", overflow="fold")
    verdict = "[red]STALLED[/red]" if item.get("stalled") else "[green]not stalled[/green]"
    t.add_row("verdict", verdict)
    t.add_row("why", str(item.get("why", "")))
    t.add_row("workflow", str(item["workflow"]))
    t.add_row("stage", str(item["stage"]))
    t.add_row("segment", str(item.get("segment", "-")))
    if item.get("waiting_on"):
        t.add_row("waiting on", str(item["waiting_on"]))
    t.add_row("entered at", when(item.get("entered_at")))
    biz = item.get("time_basis") == "business"  # a worker from before the field: wall time
    t.add_row("age in stage", human(item.get("age_seconds"), biz))
    t.add_row("typical", human(item.get("expected_seconds"), biz))
    t.add_row("threshold", human(item.get("threshold_seconds"), biz))
    t.add_row("time basis", _basis(item))
    t.add_row("pages at", when(item.get("deadline")))
    return t


def select_stage(
    workflow: str, stage: str, baselines: list[dict[str, Any]], stages: list[dict[str, Any]]
) -> dict[str, list[dict[str, Any]]]:
    """The stage views and baselines of ``stage`` and its waiting states (``contract (waiting on legal)``)."""

    def match(d: dict[str, Any]) -> bool:
        return d["workflow"] == workflow and (d["stage"] == stage or d["stage"].startswith(f"{stage} (waiting on "))

    return {"stages": [s for s in stages if match(s)], "baselines": [b for b in baselines if match(b)]}


def select_alerts(alerts: list[dict[str, Any]], workflow: str | None = None, kind: str | None = None) -> list[dict[str, Any]]:
    return [a for a in alerts if workflow in (None, a["workflow"]) and kind in (None, a["kind"])]


def stage_tables(workflow: str, stage: str, baselines: list[dict[str, Any]], stages: list[dict[str, Any]]) -> list[Any]:
    """A stage's state (``/stages``) and its baseline per segment (``/baselines``).

    ``stage`` matches the stage and its waiting states (``contract (waiting on legal)``).
    Raises :class:`NotFound` when the worker knows no such stage.
    """
    from rich.table import Table

    doc = select_stage(workflow, stage, baselines, stages)
    views, bases = doc["stages"], doc["baselines"]
    if not views and not bases:
        known = sorted({s["stage"] for s in stages if s["workflow"] == workflow})
        hint = f"; stages of {workflow}: {', '.join(known)}" if known else f"; no workflow {workflow!r} on this worker"
        raise NotFound(f"no stage {stage!r} in {workflow!r}{hint}")
    out: list[Any] = []
    if views:
        t = Table(title=f"{workflow} · {stage}: now",
                  caption="arrived, left: items counted by this worker since it took their partitions")
        for col in ("stage", "WIP", "stalled", "oldest", "due next hour", "arrived", "left", "bottleneck", "terminal"):
            t.add_column(col, justify="left" if col == "stage" else "right")
        for v in views:
            t.add_row(v["stage"], str(v["wip"]), str(v["stalled"]), human(v.get("oldest_age_seconds")),
                      str(v.get("due_next_hour", 0)), str(v.get("arrivals_total", 0)), str(v.get("departures_total", 0)),
                      f"{float(v.get('bottleneck_score', 0.0)):.2f}", "yes" if v.get("terminal") else "no")
        out.append(t)
    b = Table(title=f"{workflow} · {stage}: baselines per segment")
    for col in ("stage", "segment", "n", "typical", "p95", "threshold", "source", "time basis"):
        b.add_column(col, justify="right" if col == "n" else "left")
    for d in sorted(bases, key=lambda d: (d["stage"], d["segment"] != "*", d["segment"])):
        biz = d.get("time_basis") == "business"
        source = d.get("source", "-")
        b.add_row(d["stage"], "* (stage)" if d["segment"] == "*" else d["segment"], str(d.get("n", 0)),
                  human(d.get("typical_seconds"), biz), human(d.get("p95_seconds"), biz),
                  human(d.get("threshold_seconds"), biz),
                  f"[yellow]{source}[/yellow]" if source == "warming" else source, _basis(d))
    if not bases:
        b.caption = "terminal stage: no baseline (items end here)"
    out.append(b)
    return out


def alerts_table(alerts: list[dict[str, Any]], workflow: str | None = None, kind: str | None = None) -> Any:
    """The firing alerts (``/alerts``), most severe and oldest first."""
    from rich.table import Table

    rows = select_alerts(alerts, workflow, kind)
    order = {"page": 0, "ticket": 1, "info": 2}
    rows.sort(key=lambda a: (order.get(a.get("severity", ""), 3), a.get("at", ""), a.get("alert_id", "")))
    t = Table(title=f"firing alerts: {len(rows)}")
    for col in ("severity", "kind", "workflow", "stage", "item", "segment", "since", "observed", "threshold", "summary"):
        t.add_column(col, overflow="fold")
    for a in rows:
        sev = a.get("severity", "-")
        business = (a.get("details") or {}).get("time_basis") == "business"
        t.add_row(
            f"[red]{sev}[/red]" if sev == "page" else sev,
            a["kind"],
            a["workflow"],
            a.get("stage") or "-",
            a.get("entity_id") or "-",
            a.get("segment") or "-",
            a.get("at", "-"),
            human(a.get("observed_seconds") or None, business),
            human(a.get("threshold_seconds") or None, business),
            a.get("summary", ""),
        )
    if not rows:
        t.caption = "nothing is firing"
    return t


# --------------------------------------------------------------------------- commands


def run(what: str, worker: str, as_json: bool, **args: Any) -> int:
    """Fetch, then print a table (or the JSON); returns the exit code (2: worker unreachable, 1: not found)."""
    import json

    from rich.console import Console

    if what not in ("item", "stage", "alerts"):
        raise ValueError(f"unknown inspect target {what!r}")  # a caller's mistake, not the worker's answer
    console = Console()
    err = Console(stderr=True)
    try:
        if what == "item":
            doc: Any = fetch(worker, item_path(args["entity_id"]))
            renderables = [item_table(doc)]
        elif what == "stage":
            baselines, stages = fetch(worker, "/baselines"), fetch(worker, "/stages")
            renderables = stage_tables(args["workflow"], args["stage"], baselines, stages)
            doc = select_stage(args["workflow"], args["stage"], baselines, stages)
        else:
            alerts = fetch(worker, "/alerts")
            renderables = [alerts_table(alerts, args.get("workflow"), args.get("kind"))]
            doc = select_alerts(alerts, args.get("workflow"), args.get("kind"))
    except WorkerUnreachable as exc:
        err.print(f"[red]{exc}[/red]")
        return 2
    except (KeyError, TypeError, AttributeError, ValueError, OverflowError) as exc:  # JSON of another shape
        err.print(f"[red]{worker} answered JSON that is not a Stagewatch worker's ({type(exc).__name__}: {exc})[/red]")
        return 2
    except NotFound as exc:
        err.print(f"[yellow]{exc}[/yellow]")
        return 1
    if as_json:
        print(json.dumps(doc, indent=1))
    else:
        for r in renderables:
            console.print(r)
    return 0
