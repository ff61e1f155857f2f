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
