"""``stagewatch produce``: a record Kafka refuses after the producer's retries is an error, never lost
silently (kafka-python's ``flush()`` does not raise for it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kafka import TopicPartition
from kafka.errors import KafkaTimeoutError
from kafka.producer.future import FutureProduceResult

from monitor.produce import Delivery, KafkaUnavailable


def test_a_refused_record_makes_the_delivery_check_fail_with_the_count_and_the_reason():
    delivery = Delivery()
    futures = [FutureProduceResult(TopicPartition("ev", p % 2)) for p in range(3)]
    for f in futures:
        delivery.watch(f)
    futures[0].success(None)
    futures[2].success(None)
    delivery.check(3)  # nothing refused yet: no error
    futures[1].failure(KafkaTimeoutError("Batch for ev-1 containing 1 record(s) expired"))
    with pytest.raises(KafkaUnavailable, match=r"1 of 3 records were not delivered.*KafkaTimeoutError.*expired"):
        delivery.check(3)


class Clock:
    """A wall clock that moves only when slept on (``monitor.produce`` reads ``time.time``/``time.sleep``)."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_live_events_are_sent_when_their_time_comes_never_before(monkeypatch: pytest.MonkeyPatch) -> None:
    """--live slept at most 60 s and then sent: an event an hour ahead went out 59 minutes early."""
    import monitor.produce as produce_mod
    from monitor.events import Event
    from monitor.produce import PACE_STEP, when_due

    clock = Clock(1000.0)
    monkeypatch.setattr(produce_mod, "time", clock)
    due = [1000.0, 1000.0, 1150.0, 4600.5, 4600.7]
    events = [Event(f"e{i}", "w", f"i{i}", "a", ts, {}, None) for i, ts in enumerate(due)]
    flushed_at: list[float] = []
    sent_at = [(ev.timestamp, clock.now) for ev in when_due(events, lambda: flushed_at.append(clock.now))]
    assert all(now >= ts for ts, now in sent_at), sent_at
    assert sent_at[-1][1] == pytest.approx(4600.7)  # and not much later
    assert flushed_at == [1000.0, 1150.0, 4600.5]  # what waits in a batch goes out before each wait
    assert max(clock.sleeps) <= PACE_STEP  # slept in steps: Ctrl-C is never far


def produce_cli(*args: str) -> Any:
    """``stagewatch produce ARGS`` at a port where no broker listens: every case here ends before Kafka."""
    from typer.testing import CliRunner

    from monitor.cli import app

    r = CliRunner().invoke(app, ["produce", *args, "--bootstrap", "127.0.0.1:9"])
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception  # no traceback
    return r


def test_produce_reads_a_csv_with_the_reading_options_of_backtest(tmp_path: Path) -> None:
    """produce had none of backtest's reading options: a CSV with other column names could not be sent, and
    its errors were tracebacks (after a connection to Kafka). They are checked before Kafka is asked now."""
    odd = tmp_path / "odd.csv"
    odd.write_text("Fall;Schritt;Zeit\nc1;offen;05.03.2026 14:22\nc1;zu;06.03.2026 09:00\n")
    r = produce_cli(str(odd))
    assert r.exit_code == 2 and "no entity column found" in r.output and "--entity-col" in r.output
    r = produce_cli(str(odd), "--entity-col", "Fall", "--stage-col", "Schritt", "--time-col", "Zeit",
                    "--tz", "Europe/Berlin")  # the columns are found: now every time asks for its format
    assert r.exit_code == 1, r.output
    assert "not one of the 2 records" in r.output and "pass that with --time-format" in r.output
    assert produce_cli(str(odd), "--tz", "Mars/Base").exit_code == 2  # checked as backtest checks it


@pytest.mark.parametrize(("content", "args", "code", "said"), [
    ('{"a": 1}\nnot json\n', (), 1, "not one of the 2 records"),  # as backtest: nothing could be read
    ("", (), 0, "holds no events"),
    ("", ("--live", "--speed", "0"), 2, "--speed: give a factor above 0"),
    ("", ("--rate", "0"), 2, "--rate: give events per second above 0"),
])
def test_produce_says_in_one_line_what_it_cannot_send(tmp_path: Path, content: str, args: tuple[str, ...],
                                                      code: int, said: str) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text(content)
    r = produce_cli(str(events), *args)
    assert (r.exit_code, said in " ".join(r.output.split())) == (code, True), r.output  # rich wraps lines
    r = produce_cli(str(tmp_path))
    assert (r.exit_code, r.output.strip()) == (2, f"{tmp_path}: a directory, not a file")
