"""``stagewatch produce``: a record Kafka refuses after the producer's retries is an error, never lost
silently (kafka-python's ``flush()`` does not raise for it)."""

from __future__ import annotations

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
