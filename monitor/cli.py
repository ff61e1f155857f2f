"""The ``stagewatch`` command line. Heavy imports stay inside the commands so ``--help`` is instant."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

app = typer.Typer(
    name="stagewatch",
    help="Stagewatch: learns how long each workflow stage normally takes and pages stalled items, "
    "bottleneck shifts, backlog growth and silent sources.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ConfigOpt = typer.Option(None, "--config", "-c", help="YAML settings file (env STAGEWATCH_* overrides it).")
FormatOpt = typer.Option("auto", "--format", help="auto (from the file name) | jsonl | csv | xes")


def _tick_step(value: float) -> float:
    """--tick: a positive, finite number of seconds (inf and nan passed typer's bounds)."""
    from monitor.engine import check_step

    try:
        return check_step(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


TickOpt = typer.Option(60.0, "--tick", min=0.001, callback=_tick_step,
                       help="Event-time seconds between engine ticks (the live timer).")
FamilyOpt = typer.Option(None, "--family", help="Every stage's normal durations from this family instead of the "
                         "scenario's: lognormal | gamma2 | gamma3 | exponential | weibull1.2 | weibull1.5 | "
                         "loglogistic2.5 | loglogistic3.5 | bimodal.")
StallShareOpt = typer.Option(None, "--stall-share", help="Share of item-stages that stall (default 0.03).")
StallFactorOpt = typer.Option(None, "--stall-factor", help="A stall lasts LOW,HIGH times the median (default 4,20).")
# how a CSV or XES log is read (backtest, report, produce)
EntityColOpt = typer.Option(None, "--entity-col", help="CSV: column with the item id (default: the first of "
                            "case_id, entity_id, case:concept:name, case, ...).")
StageColOpt = typer.Option(None, "--stage-col", help="CSV: column with the stage entered (default: the first of "
                           "activity, stage, concept:name, event, ...).")
TimeColOpt = typer.Option(None, "--time-col", help="CSV: column with the timestamp (default: the first of "
                          "timestamp, time:timestamp, time, ...).")
DelimiterOpt = typer.Option(None, "--delimiter", help="CSV: field delimiter, one character or 'tab' (default: the "
                            "one of , ; tab | found most in the header line).")
EncodingOpt = typer.Option(None, "--encoding", help="CSV: text encoding (default: UTF-8, with or without a "
                           "byte-order mark; e.g. cp1252 for a Windows export).")
WorkflowOpt = typer.Option(None, "--workflow", help="CSV/XES: workflow name (column or constant).")
SegmentColOpt = typer.Option(None, "--segment-col", help="CSV: column with the segment.")
TzOpt = typer.Option(None, "--tz", help="Time zone of timestamps without an offset (CSV/XES), e.g. Europe/Berlin "
                     "(default UTC); also the local time of the workflows the settings do not list.")
TransitionsOpt = typer.Option(None, "--transitions", help="CSV/XES: the lifecycle:transition values replayed as "
                               "stage entries, e.g. start,complete, or all (default: complete; values outside the "
                               "XES lifecycle model are always replayed).")
TimeFormatOpt = typer.Option(None, "--time-format", help="CSV: strptime format of the time column, e.g. "
                             "'%d.%m.%Y %H:%M' (default: ISO-8601, YYYY/MM/DD, YYYYMMDD or epoch).")


READING_OPTIONS = ("entity_col", "stage_col", "time_col", "workflow", "segment_col", "tz", "time_format",
                   "delimiter", "encoding", "transitions")


def _exit_on_sigterm() -> None:
    """SIGTERM (``timeout``, ``kill``) ends a long command as Ctrl-C does: through its cleanups, so the
    files it was writing are removed and the previous run's stay (``monitor.outputs``)."""
    import signal
    import sys

    signal.signal(signal.SIGTERM, lambda _sig, _frame: sys.exit(128 + signal.SIGTERM))


def _flag(option: str) -> str:
    return "--" + option.replace("_", "-")


def _mapping(options: dict[str, Any]) -> dict[str, Any]:
    """The reading options given (a command's parameters: ``READING_OPTIONS`` of them, ``events`` and
    ``fmt``), checked before anything is read or written: a clear error, exit 2."""
    import codecs
    import dataclasses
    import zoneinfo

    from monitor.readers import XES_STANDARD_TRANSITIONS, MappingError, XesMapping, detect_format

    mapping = {k: options[k] for k in READING_OPTIONS if options[k] is not None}
    problems = []
    try:
        xes = detect_format(Path(options["events"]), options["fmt"]) == "xes"
    except MappingError:
        xes = False  # said when the file is read
    if xes:
        takes = {f.name for f in dataclasses.fields(XesMapping)}
        csv_only = [_flag(k) for k in mapping if k not in takes]
        if csv_only:
            problems.append(f"{', '.join(csv_only)}: for CSV files only; an XES file takes "
                            f"{', '.join(_flag(k) for k in READING_OPTIONS if k in takes)}")
    if "transitions" in mapping:
        given = [t.strip().lower() for t in mapping["transitions"].split(",") if t.strip()]
        if given in (["all"], ["*"]):
            mapping["transitions"] = ("*",)
        elif given and set(given) <= XES_STANDARD_TRANSITIONS:
            mapping["transitions"] = tuple(given)
        else:
            problems.append(f"--transitions {options['transitions']!r}: give all, or XES lifecycle transitions "
                            f"separated by commas ({', '.join(sorted(XES_STANDARD_TRANSITIONS))}; any other value "
                            f"is replayed anyway)")
    delimiter = mapping.get("delimiter")
    if delimiter is not None:
        delimiter = mapping["delimiter"] = {"tab": "\t", "\\t": "\t"}.get(delimiter.lower(), delimiter)
        if len(delimiter) != 1:
            problems.append(f"--delimiter {options['delimiter']!r}: give one character, or 'tab'")
    if "encoding" in mapping:
        try:
            text = getattr(codecs.lookup(mapping["encoding"]), "_is_text_encoding", True)
        except LookupError:
            text = False
        if not text:
            problems.append(f"--encoding {mapping['encoding']!r}: not a text encoding Python knows (e.g. utf-8, "
                            f"cp1252, latin-1)")
    try:
        zoneinfo.ZoneInfo(mapping.get("tz", "UTC"))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        problems.append(f"--tz {mapping['tz']!r}: not a time zone name (e.g. UTC, Europe/Berlin, America/New_York)")
    for problem in problems:
        typer.secho(problem, fg="red", err=True)
    if problems:
        raise typer.Exit(2)
    return mapping


def _variation(family: str | None, stall_share: float | None, stall_factor: str | None) -> Any:
    """The simulator's :class:`~monitor.simulate.Variation` of these options; a clear error, exit 2."""
    from monitor.simulate import STALL_FACTOR, STALL_PROBABILITY, Variation

    try:
        factor = STALL_FACTOR if stall_factor is None else tuple(float(x) for x in stall_factor.split(","))
    except ValueError:
        factor = ()
    try:
        if len(factor) != 2:
            raise ValueError(f"--stall-factor takes LOW,HIGH, e.g. 4,20 (got {stall_factor!r})")
        return Variation(family, STALL_PROBABILITY if stall_share is None else stall_share, factor)  # type: ignore[arg-type]
    except ValueError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from None


BootstrapOpt = typer.Option(None, "--bootstrap", help="Kafka bootstrap servers (host:port,...; `stagewatch up` "
                            "prints the local one).")


def _settings(config: Path | None, bootstrap: str | None = None, tz: str | None = None, **overrides: Any):
    """The settings of ``--config`` with the command line's overrides (``tz``: the local time of the
    workflows the settings do not list); a clear error, exit 2, when invalid."""
    from monitor.config import ConfigError, load_settings

    if bootstrap:
        overrides["kafka"] = {"bootstrap_servers": bootstrap}
    try:
        settings = load_settings(config, **overrides)
        return settings if tz is None else settings.in_zone(tz)
    except ConfigError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from None


@app.command()
def up(
    detach: bool = typer.Option(False, "--detach", help="Start in the background, write stack.json, return."),
    run_dir: Path = typer.Option(Path("run"), "--run-dir", help="Data, logs and stack.json go here."),
    no_prometheus: bool = typer.Option(False, "--no-prometheus", help="Do not start Prometheus."),
    no_alertmanager: bool = typer.Option(False, "--no-alertmanager", help="Do not start Alertmanager."),
) -> None:
    """Start the local stack (Kafka, Prometheus, Alertmanager) on free loopback ports; Ctrl-C stops it."""
    import signal
    import time

    from monitor.stack import Stack, StackError

    def _terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    started = time.monotonic()
    stack = Stack(run_dir, prometheus=not no_prometheus, alertmanager=not no_alertmanager, detach=detach)
    try:
        stack.start()
    except StackError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"ready in {time.monotonic() - started:.1f} s (run dir {stack.run_dir})")
    typer.echo(f"  Kafka bootstrap  {stack.kafka_bootstrap}")
    if stack.prometheus_url:
        typer.echo(f"  Prometheus       {stack.prometheus_url}")
    if stack.alertmanager_url:
        typer.echo(f"  Alertmanager     {stack.alertmanager_url}")
    if detach:
        typer.echo(f"detached; stop with: stagewatch down --run-dir {run_dir}")
        return
    typer.echo("Ctrl-C stops the stack.")
    exited = None
    try:
        exited = stack.wait()
    except KeyboardInterrupt:
        typer.echo("stopping…")
    finally:
        stack.stop()
    if exited is not None:
        typer.secho(f"{exited.name} exited; log {exited.log_path}:\n{exited.log_tail()}", fg="red", err=True)
        raise typer.Exit(1)


@app.command()
def down(
    run_dir: Path = typer.Option(Path("run"), "--run-dir", help="The run directory given to `stagewatch up`."),
) -> None:
    """Stop the local stack listed in RUN_DIR/stack.json."""
    from monitor.stack import down as stack_down

    stopped = stack_down(run_dir)
    typer.echo(f"stopped: {', '.join(stopped)}" if stopped else f"nothing running from {run_dir}")


@app.command()
def backtest(
    events: Path = typer.Argument(..., help="Events file: JSONL (event contract), CSV or XES; gzipped when named "
                                  "*.gz; - reads standard input (with --format)."),
    alerts_out: Path | None = typer.Option(None, "--alerts-out", "-o", help="Write every alert change here (JSONL)."),
    config: Path | None = ConfigOpt,
    fmt: str = FormatOpt,
    tick: float = TickOpt,
    dlq_out: Path | None = typer.Option(None, "--dlq-out", help="Bad records with their reasons (default: "
                                        "ALERTS.dlq.jsonl, or EVENTS.dlq.jsonl in the working directory without -o)."),
    entity_col: str | None = EntityColOpt,
    stage_col: str | None = StageColOpt,
    time_col: str | None = TimeColOpt,
    delimiter: str | None = DelimiterOpt,
    encoding: str | None = EncodingOpt,
    workflow: str | None = WorkflowOpt,
    segment_col: str | None = SegmentColOpt,
    tz: str | None = TzOpt,
    time_format: str | None = TimeFormatOpt,
    transitions: str | None = TransitionsOpt,
    json_summary: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
    partitions: int = typer.Option(1, "--partitions", min=1, help="Replay as N Kafka partitions (one engine each), "
                                   "like the live worker."),
    order: str = typer.Option("auto", "--order", help="auto: sort XES and CSV logs (grouped by case) by time, "
                              "keep JSONL in file order | time: sort any file | file: as written."),
    compare: tuple[Path, Path] | None = typer.Option(None, "--compare", help="Compare two configs: --compare A.yaml "
                                                     "B.yaml EVENTS (alerts per stage, identities only in A/B)."),
    truth: Path | None = typer.Option(None, "--truth", help="With --compare: truth.json, adds precision/recall/F1."),
    feedback: Path | None = typer.Option(None, "--feedback", help="With --compare: feedback JSONL "
                                         "(stagewatch feedback --export), adds what ops marked right/false."),
) -> None:
    """Replay an events file through the engine in event time and write what would have fired."""
    import json as _json

    from monitor.backtest import print_summary, run_backtest
    from monitor.inputs import input_problem, nothing_replayed, read_problem
    from monitor.progress import count_progress
    from monitor.readers import READ_ERRORS, STDIN

    mapping = _mapping(locals())
    stdin = str(events) == STDIN
    if compare is not None and stdin:
        typer.secho("--compare replays the events twice: give a file, not standard input", fg="red", err=True)
        raise typer.Exit(2)
    if compare is not None:
        from monitor.compare import compare_command

        unused = [flag for flag, given in (("-o", alerts_out), ("--dlq-out", dlq_out), ("-c", config)) if given]
        if unused:
            typer.secho(f"--compare writes no files and reads its settings from A.yaml and B.yaml: drop "
                        f"{', '.join(unused)} (backtest each config with -c and -o for its alerts)", fg="red", err=True)
            raise typer.Exit(2)
        settings_ab = (_settings(compare[0], tz=tz), _settings(compare[1], tz=tz))
        raise typer.Exit(compare_command(compare, settings_ab, events, truth, as_json=json_summary, fmt=fmt,
                                         step=tick, mapping=mapping, feedback=feedback, partitions=partitions,
                                         order=order))
    settings = _settings(config, tz=tz)  # the log's local time: its working hours are in that zone too
    problem = None if stdin else input_problem(events)
    if problem:
        typer.secho(problem, fg="red", err=True)
        raise typer.Exit(2)
    if dlq_out is None and alerts_out is None:
        dlq_out = Path(("stdin" if stdin else events.name) + ".dlq.jsonl")  # bad input is kept, with or without -o
    _exit_on_sigterm()
    try:
        for target in (alerts_out, dlq_out):
            if target is not None:
                target.parent.mkdir(parents=True, exist_ok=True)
        summary = run_backtest(events, alerts_out, settings, fmt=fmt, mapping=mapping, step=tick,
                               dlq_out=dlq_out, progress=None if json_summary else count_progress,
                               partitions=partitions, order=order)
    except (ValueError, *READ_ERRORS) as exc:  # no time column, a file that cannot be opened or written, ...
        typer.secho(read_problem(exc, events), fg="red", err=True)
        raise typer.Exit(2) from None
    if json_summary:
        typer.echo(_json.dumps(summary.as_dict()))
    else:
        print_summary(summary)
    problem = nothing_replayed(events, summary)
    if problem:  # records, but not one event replayed: a script must not take it for a replay
        typer.secho(problem, fg="red", err=True)
        raise typer.Exit(1)


@app.command()
def simulate(
    scenario: str = typer.Option(..., "--scenario", help="steady | segmented | business_hours | slowdown | "
                                 "silence | out_of_order | shapes | all (one subdirectory each)."),
    out: Path = typer.Option(..., "--out", help="Directory for events.<format> and truth.json."),
    items: int = typer.Option(6000, "--items", min=1, help="Items (deals + tickets) to simulate."),
    seed: int = typer.Option(1, "--seed", help="Random seed: same seed, same output."),
    fmt: str = typer.Option("jsonl", "--format", help="jsonl | csv | xes"),
    speed: float = typer.Option(1.0, "--speed", help="Divide every duration by this (live demo: 1000)."),
    start: str = typer.Option("2026-01-05T00:00:00Z", "--start", help="Start of the stream (ISO-8601, or 'now')."),
    family: str | None = FamilyOpt,
    stall_share: float | None = StallShareOpt,
    stall_factor: str | None = StallFactorOpt,
) -> None:
    """Simulate workflows with injected anomalies; writes the events and the ground truth."""
    import time as _time

    from monitor import simulate as sim

    variation = _variation(family, stall_share, stall_factor)
    try:
        written = sim.run(scenario, out, items=items, seed=seed, fmt=fmt, speed=speed,  # type: ignore[arg-type]
                          start=_time.time() if start == "now" else start, variation=variation)
    except ValueError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from None
    except OSError as exc:
        typer.secho(f"cannot write to {out}: {exc.strerror or exc} (--out is a directory, made when missing)",
                    fg="red", err=True)
        raise typer.Exit(2) from None
    for name, path in written.items():
        typer.echo(f"{name}: {path} (truth: {path.parent / 'truth.json'})")


@app.command()
def evaluate(
    truth: Path | None = typer.Option(None, "--truth", help="truth.json written by `stagewatch simulate`."),
    alerts: Path | None = typer.Option(None, "--alerts", help="Alert JSONL from `stagewatch backtest --alerts-out`."),
    events: Path | None = typer.Option(None, "--events", help="events.jsonl: adds the oracle / SLA / river p99 rows."),
    scenario: str | None = typer.Option(None, "--scenario", help="Quality run: simulate+backtest+evaluate "
                                           "this scenario (or all) instead of reading files."),
    items: int = typer.Option(6000, "--items", min=1, help="Quality run: items per scenario."),
    seeds: str = typer.Option("1", "--seeds", help="Quality run: comma-separated seeds."),
    engine_cmd: str | None = typer.Option(None, "--engine-cmd", help="Quality run: command producing the alerts, "
                                             "with {events} and {alerts} placeholders (default: the Python API)."),
    config: Path | None = ConfigOpt,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
    family: str | None = FamilyOpt,
    stall_share: float | None = StallShareOpt,
    stall_factor: str | None = StallFactorOpt,
) -> None:
    """Score alerts against simulated ground truth (precision, recall, delays, baselines)."""
    import json as _json

    if scenario is not None:
        variation = _variation(family, stall_share, stall_factor)
        from monitor.quality import print_quality, run_quality

        try:
            seed_list = [int(s) for s in seeds.split(",") if s.strip()]
        except ValueError:
            typer.secho(f"--seeds takes whole numbers separated by commas, e.g. 1,2,3 (got {seeds!r})", fg="red",
                        err=True)
            raise typer.Exit(2) from None
        try:
            rows = run_quality([scenario], items=items, seeds=seed_list, settings=_settings(config),
                               engine_cmd=engine_cmd, variation=variation)
        except ValueError as exc:
            typer.secho(str(exc), fg="red", err=True)
            raise typer.Exit(2) from None
        if as_json:
            typer.echo(_json.dumps(rows, indent=1))
        else:
            print_quality(rows)
        return
    if truth is None or (alerts is None and events is None):
        typer.secho("give --truth with --alerts and/or --events, or --scenario for a quality run", fg="red", err=True)
        raise typer.Exit(2)
    if (family, stall_share, stall_factor) != (None, None, None):
        typer.secho("--family, --stall-share and --stall-factor change a simulated scenario: give them with "
                    "--scenario (or to `stagewatch simulate`)", fg="red", err=True)
        raise typer.Exit(2)
    from monitor.evaluate import evaluate as run_evaluate
    from monitor.evaluate import print_evaluation
    from monitor.inputs import input_problem, read_problem

    problem = input_problem(truth, alerts, events)
    if problem:
        typer.secho(problem, fg="red", err=True)
        raise typer.Exit(2)
    try:
        result = run_evaluate(truth, alerts, events)
    except OSError as exc:  # e.g. a file it may not open: the error names it
        typer.secho(read_problem(exc, "the input files"), fg="red", err=True)
        raise typer.Exit(2) from None
    except (ValueError, KeyError) as exc:
        typer.secho(f"cannot evaluate: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(_json.dumps(result.as_dict(), indent=1))
    else:
        print_evaluation(result)


@app.command()
def worker(
    config: Path | None = ConfigOpt,
    clock: str | None = typer.Option(None, "--clock", help="wall (default) or event: tick on event time, for replays."),
    web_port: int | None = typer.Option(None, "--web-port", help="Port of /health, /metrics, /items, /events."),
    bootstrap: str | None = BootstrapOpt,
    loglevel: str = typer.Option("info", "--loglevel", "-l"),
) -> None:
    """Run the streaming worker: consume events from Kafka, page stalled items, serve metrics."""
    from streams.app import run_worker

    worker_overrides: dict[str, Any] = {}
    if clock:
        worker_overrides["clock"] = clock
    if web_port is not None:
        worker_overrides["web_port"] = web_port
    overrides: dict[str, Any] = {"worker": worker_overrides} if worker_overrides else {}
    settings = _settings(config, bootstrap, **overrides)
    run_worker(settings, loglevel=loglevel, config_path=config)


@app.command()
def produce(
    events: Path = typer.Argument(..., help="Events file (JSONL, CSV or XES; gzipped when named *.gz)."),
    config: Path | None = ConfigOpt,
    topic: str | None = typer.Option(None, "--topic", help="Default: the first events topic of the settings."),
    bootstrap: str | None = BootstrapOpt,
    rate: float | None = typer.Option(None, "--rate", help="At most this many events per second."),
    batch: int = typer.Option(1, "--batch", help="Events per Kafka record (same partition), e.g. 100."),
    live: bool = typer.Option(False, "--live", help="Rewrite timestamps to now keeping the gaps, and pace them."),
    speed: float = typer.Option(1.0, "--speed", help="With --live: divide the gaps by this factor."),
    fmt: str = FormatOpt,
    entity_col: str | None = EntityColOpt,
    stage_col: str | None = StageColOpt,
    time_col: str | None = TimeColOpt,
    delimiter: str | None = DelimiterOpt,
    encoding: str | None = EncodingOpt,
    workflow: str | None = WorkflowOpt,
    segment_col: str | None = SegmentColOpt,
    tz: str | None = TzOpt,
    time_format: str | None = TimeFormatOpt,
    transitions: str | None = TransitionsOpt,
) -> None:
    """Send an events file to Kafka, batched per partition, with a progress counter."""
    import itertools

    from rich.console import Console

    from monitor.inputs import input_problem, nothing_read, read_problem
    from monitor.produce import KafkaUnavailable, live_timestamps, read_valid
    from monitor.produce import produce as do_produce
    from monitor.readers import READ_ERRORS

    mapping = _mapping(locals())
    problem = ("--speed: give a factor above 0, e.g. 1000" if speed <= 0
               else "--rate: give events per second above 0" if rate is not None and rate <= 0
               else input_problem(events))
    if problem:
        typer.secho(problem, fg="red", err=True)
        raise typer.Exit(2)
    settings = _settings(config, bootstrap)
    console = Console(stderr=True, soft_wrap=True)  # a message is one line, however long
    bad: list = []
    stream = read_valid(events, fmt=fmt, mapping=mapping, on_bad=bad.append, keep=settings.segment_keys())
    n = 0
    try:
        first = next(stream, None)  # a file that cannot be read says so before Kafka is asked
        if first is not None:
            stream = itertools.chain([first], stream)
            if live:
                stream = live_timestamps(stream, speed=speed)
            with console.status("producing...") as status:
                n = do_produce(settings, stream, topic=topic, batch=batch, rate=rate, paced=live,
                               on_progress=lambda k: status.update(f"produced {k:,} events"))
    except KafkaUnavailable as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from None
    except (ValueError, *READ_ERRORS) as exc:
        typer.secho(read_problem(exc, events), fg="red", err=True)
        raise typer.Exit(2) from None
    problem = nothing_read(events, n, len(bad), bad[0].reason if bad else None)
    if problem:
        typer.secho(problem, fg="red", err=True)
        raise typer.Exit(1)
    console.print(f"produced {n:,} events to {topic or settings.topics.events[0]}" if n else
                  f"{events} holds no events (empty, or only blank lines): nothing sent")
    if bad:
        console.print(f"[yellow]{len(bad)} bad records not sent; first: {bad[0].reason}[/yellow]")


@app.command()
def demo(
    duration: float = typer.Option(120.0, "--duration", help="Seconds of accelerated stream (a simulated day ~6 s)."),
    no_ui: bool = typer.Option(False, "--no-ui", help="No live terminal view: progress lines and a summary (for scripts)."),
    run_dir: Path = typer.Option(Path("run/demo"), "--run-dir", help="Where the services keep data and logs."),
    items: int = typer.Option(1500, "--items", help="Simulated items."),
) -> None:
    """Run the whole product locally: Kafka, worker, Prometheus, Alertmanager, a live simulated pipeline."""
    from monitor.demo import run_demo
    from monitor.stack import StackError

    try:
        result = run_demo(duration=duration, ui=not no_ui, run_dir=run_dir, items=items)
    except StackError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from None
    if not result.ok:
        raise typer.Exit(1)


@app.command()
def report(
    events: Path = typer.Argument(..., help="Events file: JSONL (event contract), CSV or XES; gzipped when named *.gz."),
    out: Path = typer.Option(Path("report.html"), "--out", "-o", help="The HTML report to write."),
    config: Path | None = ConfigOpt,
    truth: Path | None = typer.Option(None, "--truth", help="truth.json from `stagewatch simulate`: adds scores."),
    fmt: str = FormatOpt,
    tick: float = TickOpt,
    sample_hours: float = typer.Option(12.0, "--sample-hours", min=0.01, help="Event-time hours between samples "
                                       "of the baselines (threshold over time, WIP)."),
    entity_col: str | None = EntityColOpt,
    stage_col: str | None = StageColOpt,
    time_col: str | None = TimeColOpt,
    delimiter: str | None = DelimiterOpt,
    encoding: str | None = EncodingOpt,
    workflow: str | None = WorkflowOpt,
    segment_col: str | None = SegmentColOpt,
    tz: str | None = TzOpt,
    time_format: str | None = TimeFormatOpt,
    transitions: str | None = TransitionsOpt,
) -> None:
    """Replay EVENTS and write a self-contained HTML tuning report (distributions, thresholds, alerts, flow)."""
    from monitor.report import report_command

    mapping = _mapping(locals())
    _exit_on_sigterm()
    settings = _settings(config, tz=tz)
    raise typer.Exit(report_command(events, out, settings, truth=truth, fmt=fmt, step=tick,
                                    sample_hours=sample_hours, mapping=mapping))


inspect_app = typer.Typer(help="Ask a running worker about an item, a stage or the firing alerts.",
                          no_args_is_help=True)
app.add_typer(inspect_app, name="inspect")
WorkerOpt = typer.Option("http://127.0.0.1:6066", "--worker", help="Base URL of the worker's web server.")
InspectJson = typer.Option(False, "--json", help="Print the worker's JSON instead of tables.")


@inspect_app.command("item")
def inspect_item(entity_id: str = typer.Argument(..., help="The item's entity_id."),
                 worker: str = WorkerOpt, as_json: bool = InspectJson) -> None:
    """An open item: stage, age, typical, threshold, when it pages and why."""
    from monitor.inspect import run

    raise typer.Exit(run("item", worker, as_json, entity_id=entity_id))


@inspect_app.command("stage")
def inspect_stage(workflow_name: str = typer.Argument(..., metavar="WORKFLOW"), stage: str = typer.Argument(...),
                  worker: str = WorkerOpt, as_json: bool = InspectJson) -> None:
    """A stage now (WIP, stalled, oldest) and its baseline per segment (n, typical, p95, threshold, source)."""
    from monitor.inspect import run

    raise typer.Exit(run("stage", worker, as_json, workflow=workflow_name, stage=stage))


@inspect_app.command("alerts")
def inspect_alerts(worker: str = WorkerOpt, as_json: bool = InspectJson,
                   workflow_name: str | None = typer.Option(None, "--workflow", help="Only this workflow."),
                   kind: str | None = typer.Option(None, "--kind", help="Only this kind (stalled, slow_stage, ...).")
                   ) -> None:
    """The alerts firing now, most severe and oldest first."""
    from monitor.inspect import run

    raise typer.Exit(run("alerts", worker, as_json, workflow=workflow_name, kind=kind))


@app.command()
def feedback(
    alert_id: str | None = typer.Argument(None, help="The alert_id of an item alert (stalled or slow_stage)."),
    verdict: str | None = typer.Argument(None, help="false (a false alert) or true (it was right)."),
    note: str = typer.Option("", "--note", help="Why, in a few words."),
    by: str = typer.Option("", "--by", help="Who judged it."),
    export: Path | None = typer.Option(None, "--export", help="Instead: copy all feedback to this JSONL file."),
    config: Path | None = ConfigOpt,
    bootstrap: str | None = BootstrapOpt,
) -> None:
    """Mark an alert as false or right: stored in Kafka, used by the worker, report and backtest --compare."""
    from monitor.feedback import export_feedback, find_alert, from_alert, parse_verdict, send_feedback

    settings = _settings(config, bootstrap)
    if export is None and (not alert_id or verdict is None):
        typer.secho("give ALERT_ID and VERDICT (false|true), or --export FILE", fg="red", err=True)
        raise typer.Exit(2)
    try:
        if export is not None:
            n = export_feedback(settings, export)
            typer.echo(f"exported {n} feedback records to {export}")
            return
        assert alert_id is not None and verdict is not None
        v = parse_verdict(verdict)
        alert = find_alert(settings, alert_id)
        if alert is None:
            typer.secho(f"no alert {alert_id} on topic {settings.topics.alerts}", fg="red", err=True)
            raise typer.Exit(1)
        fb = from_alert(alert, v, note, by)
        send_feedback(settings, fb)
    except (ValueError, ConnectionError) as exc:  # KafkaUnavailable says what to check
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"recorded: {alert_id} was {'right' if v else 'a false alert'} ({alert.summary})")


def tune_gc() -> None:
    """Collect cycles after 50,000 net allocations instead of 700: the engine allocates many small
    objects that never form cycles (heap entries, alerts), and CPython's default made the collector a
    tenth of a replay's time (perf: 10 %; events/s +20 % with this). Cycles still get collected."""
    import gc

    gc.set_threshold(50_000, 20, 20)


def main() -> None:
    tune_gc()
    app()


if __name__ == "__main__":
    main()
