"""One engine per Kafka partition, seen as one.

Items are keyed by ``entity_id``, so each partition's items live in one engine; each partition's
engine learns its own baselines from its own items. That makes an item's alerts depend on its
partition only — never on which worker owns that partition — and a replay with
``stagewatch backtest --partitions N`` reproduces the live alerts exactly (with several workers, up
to the two seconds it takes a worker to hear of the others' partitions, which a source's silence is
judged over).

``EngineGroup`` presents the partition engines with the engine's read-only view interface
(``monitor.views``), merged, for the metrics collector and the web views.

A worker of a group of several also reads what the other workers say of their partitions (``board``,
``streams.peers``): a source's silence and the tickets about whole stages are judged over those too.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from detectors.silence import combined_gap, silent_after_combined
from monitor.engine import Engine
from monitor.events import Alert, parse_timestamp
from monitor.views import BaselineView, Counters, HistogramView, ItemView, SourceView, StageView
from streams.peers import CLOCK_SLACK, TAKEOVER, PeerBoard


def _add_counters(dst: Counters, src: Counters, sign: int = 1) -> None:
    # the four dicts differ only in key type; the sum is the same for each
    pairs: tuple[tuple[dict[Any, int], dict[Any, int]], ...] = (
        (src.events, dst.events), (src.anomalies, dst.anomalies), (src.overflow, dst.overflow),
        (src.expired, dst.expired),
    )
    for a, b in pairs:
        for k, n in a.items():
            b[k] = b.get(k, 0) + sign * n


def _add_histogram(a: HistogramView | None, b: HistogramView, sign: int = 1) -> HistogramView:
    if a is None:
        a = HistogramView(b.workflow, b.stage, b.segment, [0] * len(b.bucket_counts), 0.0, 0)
    return HistogramView(b.workflow, b.stage, b.segment,
                         [x + sign * y for x, y in zip(a.bucket_counts, b.bucket_counts, strict=True)],
                         a.sum_seconds + sign * b.sum_seconds, a.count + sign * b.count)


@dataclass
class Tally:
    """What engines counted (the totals the metrics export as counters): events by outcome, anomalies,
    overflow, expired items, stage durations by bucket, stage arrivals and departures."""

    counters: Counters = field(default_factory=Counters)
    durations: dict[tuple[str, str, str], HistogramView] = field(default_factory=dict)
    flows: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)

    @classmethod
    def of(cls, engine: Engine) -> Tally:
        t = cls()
        t.add(engine)
        return t

    def add(self, engine: Engine | Tally, sign: int = 1) -> None:
        """Add (``sign`` -1: take away) an engine's totals, or another tally."""
        if isinstance(engine, Tally):
            counters, durations, flows = engine.counters, list(engine.durations.values()), engine.flows
        else:
            counters, durations = engine.counters, list(engine.histogram_views())
            flows = {(wf.name, st.name): (st.flow.arrivals, st.flow.departures)
                     for wf in engine.workflows.values() for st in wf.states.values()}
        _add_counters(self.counters, counters, sign)
        for v in durations:
            at = (v.workflow, v.stage, v.segment)
            self.durations[at] = _add_histogram(self.durations.get(at), v, sign)
        for key, (a, d) in flows.items():
            was = self.flows.get(key, (0, 0))
            self.flows[key] = (was[0] + sign * a, was[1] + sign * d)


class EngineGroup:
    def __init__(self) -> None:
        self.engines: dict[int, Engine] = {}
        # What the metrics count, kept monotonic as partitions come and go: each engine's totals are its
        # whole history (restored with it), so their sum over the partitions a worker holds fell at every
        # revoke (Prometheus reads a counter reset, and ``rate`` a burst of the rest) and jumped at every
        # assignment. Exported instead: what each engine counted since this process took its partition
        # (``_taken``: its totals then), plus what the partitions it gave up counted here (``_given_up``).
        self._taken: dict[int, Tally] = {}
        self._given_up = Tally()
        self._limits: dict[tuple[Any, ...], tuple[float, float] | None] = {}
        # (kind, workflow, stage) -> the engine holding that firing alert about a whole stage or source:
        # one ticket for a stage's shift or backlog, one page for a source's silence, from the partition
        # that found it first (each partition judges its own share of the stage). Every event asks for
        # its source's silence (one another partition holds ends when this one hears the source), so no
        # scan of the partitions
        self._holders: dict[tuple[str, str, str | None], Engine] = {}
        self.board: PeerBoard | None = None  # the other workers' partitions (a worker of a group sets it)
        self._deferred: dict[str, tuple[Any, float]] = {}  # workflow -> (its silence, when found) left to another worker

    def join(self, partition: int, engine: Engine) -> None:
        """Add a partition's engine (a new one, or one recovered with stage or source alerts it holds)."""
        self.leave(partition)
        self.engines[partition] = engine
        self._taken[partition] = Tally.of(engine)
        engine.peers = self
        for alert in engine.active.values():
            if alert.entity_id is None:
                self._holders[(alert.kind, alert.workflow, alert.stage)] = engine

    def leave(self, partition: int) -> None:
        """Drop a partition's engine (revoked): the alerts it held go with it."""
        engine = self.engines.pop(partition, None)
        if engine is not None:
            self._given_up.add(engine)
            self._given_up.add(self._taken.pop(partition), -1)
            for key in [k for k, holder in self._holders.items() if holder is engine]:
                del self._holders[key]

    def holds(self, alert: Alert, engine: Engine, holding: bool) -> None:
        """An engine fired (``holding``) or resolved an alert about a whole stage or source."""
        key = (alert.kind, alert.workflow, alert.stage)
        if holding:
            self._holders[key] = engine
        elif self._holders.get(key) is engine:
            del self._holders[key]

    def holder(self, kind: str, workflow: str, stage: str | None) -> Any:
        """Who holds the firing ``kind`` alert of this stage (None: of the source): a partition's engine
        here, another worker's partition (``streams.peers.RemotePartition``), or None."""
        key = (kind, workflow, stage)
        here = self._holders.get(key)
        board = self.board
        if here is not None or board is None:
            return here
        there = board.holder(key, self.engines)
        if there is None and kind == "source_silent":
            return self._pager_elsewhere(workflow)
        return there

    def _pager_elsewhere(self, workflow: str) -> Any:
        """Asked when this worker finds the source silent: the other worker's partition that pages it
        instead, if any (``streams.peers``: the lowest-numbered partition that heard the source, when
        its clock is there too; not after ``TAKEOVER`` seconds without its page)."""
        assert self.board is not None
        first = self.board.first_partition(workflow, self.engines)
        if first is None:
            return None
        mine = next((p for p, _heard, _rate in self._local_shares(workflow, False)), None)
        judged = self.source_limit(workflow)
        if (mine is not None and mine < first) or judged is None:
            return None
        if self.board.time_at(first) < judged[1] - CLOCK_SLACK:
            return None
        now = self.board.clock()
        found = self._deferred.get(workflow)
        if found is None or found[0] != judged:  # a new silence (the source spoke since the last one)
            self._deferred[workflow] = found = (judged, now)
        return self.board.partitions[first] if now - found[1] < TAKEOVER else None

    def silences_heard_elsewhere(self) -> list[Alert]:
        """A silence this worker pages ends when another worker's partition hears the source again (as
        when one of this worker's does, ``Engine._apply``), at the time of that event: asked as the
        other workers' records come in, not at the next source check minutes later."""
        out: list[Alert] = []
        if self.board is None:
            return out
        for (kind, workflow, _stage), engine in list(self._holders.items()):
            if kind != "source_silent":
                continue
            wf = engine.workflows[workflow]
            start = wf.silences[-1][0]
            heard = [s.heard for _p, s in self.board.shares(workflow, self.engines)
                     if s.heard is not None and s.heard > start]
            if heard and wf.silent_alert is not None:  # not before it was paged (a record late to arrive)
                engine._end_silence(wf, max(min(heard), parse_timestamp(wf.silent_alert.at)), out)
        return out

    def _ordered(self) -> list[Engine]:
        """The engines by partition: views that pick one engine's answer (a tie on ``n``) or merge in
        order give the same result whatever order the partitions were recovered in."""
        return [eng for _p, eng in sorted(self.engines.items())]

    def __len__(self) -> int:
        return len(self.engines)

    def source_limit(self, workflow: str, applied: bool = False) -> tuple[float, float] | None:
        """A source's silence judged over every partition of this worker (or replay): (the time of its
        latest event, the instant after which it is silent); None while nothing is known. ``applied``:
        the latest event applied, not merely heard (still in a lateness buffer).

        Each partition sees a share of the items, so alone it expects a quarter of the events (4
        partitions) and a quiet night of one quarter reads as an outage (steady scenario, 4 seeds: 4
        false silences in 8 partitioned replays, none on one engine), while a real stop is called late
        (a 6 h silence, 3 seeds: 4.8-6.2 h after it began against 1.5-1.7 h) and items whose events were
        lost in it are paged (1-8 a run). Over the shares the events expected since the latest one add up
        as for one engine (``silent_after_combined``): 1.5-1.8 h, no false silence, no page on a lost
        item; one alert for the source (from the partition whose clock passed the limit first)."""
        latest: float | None = None
        mine: Any = None
        rates = []
        for _p, heard, rate in self._shares(workflow, applied):
            rates.append(rate)
            if latest is None or heard > latest:
                latest, mine = heard, rate
        if mine is None or latest is None:
            return None
        # cached by the latest event, as one engine caches its own limit (WorkflowState.silent_after): the
        # rates behind it change only as events arrive (or as another worker's record does)
        key = (workflow, applied, latest, tuple((p, id(e)) for p, e in self.engines.items()),  # a revoke changes it
               None if self.board is None else (self.board.version, self.board.bucket()))
        cache = self._limits
        if key in cache:
            return cache[key]
        if len(cache) >= 16:
            cache.clear()
        rates.remove(mine)  # first: its hours bin the time
        shares = [mine, *rates]
        limit = silent_after_combined(shares, latest)
        wf = next((e.workflows[workflow] for e in self.engines.values() if workflow in e.workflows), None)
        if limit is not None and wf is not None:  # as one engine widens it (holidays, daylight-saving changes)
            limit = wf.widened(latest, limit, lambda t: silent_after_combined(shares, t))
        cache[key] = None if limit is None else (latest, limit)
        return cache[key]

    def _local_shares(self, workflow: str, applied: bool) -> Iterator[tuple[int, float, Any]]:
        """(partition, its latest event of the source, its share's rate) of this worker's partitions."""
        for p, eng in sorted(self.engines.items()):
            wf = eng.workflows.get(workflow)
            if wf is not None and (heard := wf.last_ts if applied else wf.last_heard()) is not None:
                yield p, heard, wf.rate

    def _shares(self, workflow: str, applied: bool) -> list[tuple[int, float, Any]]:
        """The same over every partition: this worker's and the other workers' (by partition)."""
        shares = list(self._local_shares(workflow, applied))
        if self.board is not None:
            for p, share in self.board.shares(workflow, self.engines):
                heard = share.applied if applied else share.heard
                if heard is not None:
                    shares.append((p, heard, share.rate))
            shares.sort(key=lambda s: s[0])
        return shares

    def typical_gap(self, workflow: str, at: float) -> float | None:
        """The typical gap between the source's events at ``at``, over every partition (for the alert's
        words: "they usually arrive every ...")."""
        return combined_gap(rate.expected_gap(at) for _p, _heard, rate in self._shares(workflow, False))

    def silent_holder(self, workflow: str) -> Engine | None:
        """This worker's partition engine holding the firing ``source_silent`` alert of ``workflow``, if any
        (another worker's ends its silence itself once the source's events show up in its records)."""
        return self._holders.get(("source_silent", workflow, None))

    def silenced_since(self, workflow: str, since: float) -> bool:
        """Whether any partition's engine called the source silent at or after ``since``."""
        if any(wf.silent_since(since) for eng in self.engines.values()
               if (wf := eng.workflows.get(workflow)) is not None):
            return True
        return self.board is not None and any(s.silent_since(since) for _p, s in self.board.shares(workflow, self.engines))

    def stage_views(self, now: float) -> Iterator[StageView]:
        merged: dict[tuple[str, str], StageView] = {}
        for eng in self._ordered():
            for v in eng.stage_views(now):
                key = (v.workflow, v.stage)
                m = merged.get(key)
                merged[key] = v if m is None else StageView(
                    workflow=v.workflow,
                    stage=v.stage,
                    wip=m.wip + v.wip,
                    stalled=m.stalled + v.stalled,
                    oldest_age_seconds=max(m.oldest_age_seconds, v.oldest_age_seconds),
                    due_next_hour=m.due_next_hour + v.due_next_hour,
                    arrivals_total=0,  # set below
                    departures_total=0,
                    bottleneck_score=max(m.bottleneck_score, v.bottleneck_score),
                    terminal=m.terminal or v.terminal,
                )
        flows = self._counted().flows
        for key, v in merged.items():
            a, d = flows.get(key, (0, 0))
            yield replace(v, arrivals_total=a, departures_total=d)

    def baseline_views(self) -> Iterator[BaselineView]:
        """Per key, the baseline of the partition that has learned the most (the best-informed one)."""
        best: dict[tuple[str, str, str], BaselineView] = {}
        for eng in self._ordered():
            for v in eng.baseline_views():
                key = (v.workflow, v.stage, v.segment)
                if key not in best or v.n > best[key].n:
                    best[key] = v
        yield from best.values()

    def source_views(self, now: float) -> Iterator[SourceView]:
        merged: dict[str, SourceView] = {}
        for eng in self._ordered():
            for v in eng.source_views(now):
                m = merged.get(v.workflow)
                merged[v.workflow] = v if m is None else SourceView(
                    workflow=v.workflow,
                    last_event_timestamp=max(m.last_event_timestamp, v.last_event_timestamp),
                    events_total=m.events_total + v.events_total,
                    # one partition pages a silence for all (the others hold back): silent when it does
                    silent=m.silent or v.silent,
                    expected_gap_seconds=m.expected_gap_seconds or v.expected_gap_seconds,
                )
        yield from merged.values()

    def histogram_views(self) -> Iterator[HistogramView]:
        yield from self._counted().durations.values()

    @property
    def counters(self) -> Counters:
        return self._counted().counters

    def events_taken(self) -> int:
        """Events the partitions' engines have taken (every outcome), over their whole history: restored
        with each partition, not only counted in this process as ``counters`` are."""
        return sum(sum(eng.counters.events.values()) for eng in self.engines.values())

    def _counted(self) -> Tally:
        """What the partitions' engines counted in this process (see ``_taken``), in partition order (a
        float sum that only grows scrape to scrape)."""
        t = Tally()
        t.add(self._given_up)
        for p, eng in sorted(self.engines.items()):
            t.add(eng)
            t.add(self._taken[p], -1)
        return t

    def item_view(self, entity_id: str, now: float) -> ItemView | None:
        for eng in self._ordered():
            v = eng.item_view(entity_id, now)
            if v is not None:
                return v
        return None

    def active_alerts(self) -> list[Alert]:
        return [a for eng in self._ordered() for a in eng.active_alerts()]

    @property
    def open_items(self) -> int:
        return sum(e.open_items for e in self.engines.values())
