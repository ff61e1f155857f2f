"""Security without services: secrets never printed, no empty bearer token, and the hostile-record
generator the worker fuzz test uses (tests/integration/test_reliability.py) checked against the decoder."""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.config import MIN_SECRET_LENGTH, ConfigError, load_settings
from monitor.events import decode_record
from streams.app import decode_safely

TOKEN = "tok-" + "9f3c" * 8
PASSWORD = "pw-" + "b71e" * 6


def test_secrets_never_appear_in_repr_str_or_dump() -> None:
    s = load_settings(None, worker={"ingest_token": TOKEN}, kafka={"sasl_mechanism": "PLAIN", "sasl_username": "sw",
                                                                   "sasl_password": PASSWORD})
    for text in (repr(s), str(s), repr(s.worker), str(s.kafka), s.model_dump_json(), str(s.model_dump())):
        assert TOKEN not in text and PASSWORD not in text
    assert s.worker.ingest_token is not None and s.worker.ingest_token.get_secret_value() == TOKEN


@pytest.mark.parametrize("token", ["", "x", "short-token"])
def test_an_empty_or_short_ingest_token_is_refused_and_not_echoed(token: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(None, worker={"ingest_token": token})
    assert "ingest_token" in str(err.value) and str(MIN_SECRET_LENGTH) in str(err.value)
    if token:
        assert token not in str(err.value), "a rejected secret must not be echoed into the error"


def test_an_empty_token_from_the_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAGEWATCH_WORKER__INGEST_TOKEN", "")
    with pytest.raises(ConfigError):
        load_settings(None)
    monkeypatch.setenv("STAGEWATCH_WORKER__INGEST_TOKEN", TOKEN)
    assert load_settings(None).worker.ingest_token is not None


def test_an_empty_sasl_password_is_refused() -> None:
    with pytest.raises(ConfigError):
        load_settings(None, kafka={"sasl_password": ""})


# ----------------------------------------------------------------------------- hostile records


@dataclass(frozen=True)
class Hostile:
    """One Kafka record value and what the worker must make of it."""

    value: bytes
    good: int  # events that must be accepted
    bad: int  # DLQ records it must produce
    kind: str


def good_event(i: int, now: float) -> dict:
    return {"event_id": f"fz-{i}", "workflow": "fuzz", "entity_id": f"fz-item-{i}", "stage": "lead",
            "timestamp": now - 60 - i % 600, "attributes": {"segment": "s"}}


def hostile_records(rng: random.Random, n: int, now: float | None = None) -> list[Hostile]:
    """``n`` records: random bytes, invalid UTF-8, wrong types, huge strings, deep nesting, times far
    in the future (wall clock) or before 1970, arrays of mixed validity, and good events."""
    now = time.time() if now is None else now
    seq = iter(range(10**9))
    out: list[Hostile] = []

    def good() -> dict:
        return good_event(next(seq), now)

    def bad_obj() -> dict:
        e = good()
        choice = rng.randrange(9)
        if choice == 0:
            e["workflow"] = rng.choice([1, 2.5, None, [], {}, True])
        elif choice == 1:
            e["entity_id"] = rng.choice([[], {"a": 1}, None, ""])
        elif choice == 2:
            e["timestamp"] = rng.choice(["yesterday", {}, [], True, None, "2026-01-01T00:00:00"])
        elif choice == 3:
            e["timestamp"] = rng.uniform(-1e10, -1.0)  # before 1970
        elif choice == 4:
            e["entity_id"] = "x" * rng.randrange(300, 200_000)  # huge string
        elif choice == 5:
            e["attributes"] = {f"k{j}": j for j in range(rng.randrange(65, 500))}
        elif choice == 6:
            e["stage"] = "s" * rng.randrange(200, 5000)
        elif choice == 7:
            e["attributes"] = {"segment": "v" * rng.randrange(600, 50_000)}
        else:
            del e[rng.choice(["workflow", "entity_id", "stage", "timestamp"])]
        return e

    for _ in range(n):
        kind = rng.choice(["bytes", "utf8", "wrong", "huge", "nested", "future", "past", "mixed", "good",
                           "scalar", "emptybatch"])
        if kind == "bytes":
            out.append(Hostile(b"\xff" + rng.randbytes(rng.randrange(0, 3000)), 0, 1, kind))
        elif kind == "utf8":
            # inside a value the decoder must read (in an ignored key msgspec does not check UTF-8)
            body = json.dumps(good()).encode().replace(b'"fz-item-', rng.choice([b'"fz-\xc3\x28item-', b'"\xff\xfe']))
            out.append(Hostile(body, 0, 1, kind))
        elif kind in ("wrong", "huge"):
            out.append(Hostile(json.dumps(bad_obj()).encode(), 0, 1, kind))
        elif kind == "nested":
            depth = rng.randrange(50, 20_000)
            opener, closer = rng.choice([("[", "]"), ('{"a":', "}")])
            out.append(Hostile((opener * depth + "1" + closer * depth).encode(), 0, 1, kind))
        elif kind == "future":  # valid for the decoder, rejected by the worker's clock check
            e = good()
            e["timestamp"] = now + rng.uniform(3 * 86400, 170 * 365 * 86400)
            out.append(Hostile(json.dumps(e).encode(), 0, 1, kind))
        elif kind == "past":  # old but valid: 1970..2000 is accepted
            e = good()
            e["timestamp"] = rng.uniform(0, 946684800)
            out.append(Hostile(json.dumps(e).encode(), 1, 0, kind))
        elif kind == "mixed":
            flags = [rng.random() < 0.5 for _ in range(rng.randrange(1, 40))]
            elems = [good() if ok else bad_obj() for ok in flags]
            out.append(Hostile(json.dumps(elems).encode(), sum(flags), len(flags) - sum(flags), kind))
        elif kind == "scalar":
            out.append(Hostile(json.dumps(rng.choice([1, "text", None, True, 3.5])).encode(), 0, 1, kind))
        elif kind == "emptybatch":
            out.append(Hostile(b"[]", 0, 1, kind))
        else:
            out.append(Hostile(json.dumps(good()).encode(), 1, 0, kind))
    return out


def test_hostile_records_are_classified_by_the_decoder_as_the_generator_says() -> None:
    """The generator's labels are the fuzz test's expectations: the worker's decoder must agree with
    them (the worker additionally rejects the far-future ones against its wall clock)."""
    now = time.time()
    records = hostile_records(random.Random(7), 400, now)
    assert {h.kind for h in records} >= {"bytes", "utf8", "wrong", "huge", "nested", "future", "past", "mixed"}
    for h in records:
        events, bad = decode_safely(h.value)
        future = sum(1 for e in events if e.timestamp > now + 86400)
        assert (len(events) - future, len(bad) + future) == (h.good, h.bad), (h.kind, h.value[:200])
        assert all(b.reason for b in bad)


def test_invalid_utf8_inside_a_json_string_is_a_bad_record_not_an_exception() -> None:
    events, bad = decode_record(b'{"workflow": "w", "entity_id": "e\xc3(", "stage": "s", "timestamp": 1}')
    assert not events and len(bad) == 1 and "UTF-8" in bad[0].reason


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(st.one_of(
    st.fixed_dictionaries({"workflow": st.text(max_size=5), "entity_id": st.text(max_size=5),
                           "stage": st.text(max_size=5), "timestamp": st.one_of(
                               st.floats(allow_nan=True, allow_infinity=True), st.integers(), st.text(max_size=8),
                               st.booleans(), st.none())}),
    st.integers(), st.text(max_size=10), st.none()), max_size=8))
def test_every_element_of_a_batch_is_accounted_for_exactly_once(batch: list) -> None:
    raw = json.dumps(batch).encode()
    events, bad = decode_record(raw)
    try:
        json.dumps(batch, allow_nan=False)
    except ValueError:  # Python writes NaN / Infinity, JSON has no such numbers: the record is one bad record
        assert (events, len(bad)) == ([], 1) and "invalid JSON" in bad[0].reason
        return
    assert len(events) + len(bad) == max(1, len(batch))  # an empty batch is one bad record
    assert all(b.reason for b in bad)


def test_config_errors_name_the_setting_and_the_value_but_never_a_secret(tmp_path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("engine:\n  warmup: -5\n  nosuch: 1\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    said = str(err.value)
    assert "engine.warmup: Input should be greater than or equal to 3 (given: -5)" in said
    assert "engine.nosuch: not a setting here" in said and "errors.pydantic.dev" not in said
    path.write_text("worker:\n  ingest_token: short-secret1\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert "ingest_token" in str(err.value) and "short-secret1" not in str(err.value)
    path.write_text("engine:\n  warmup: [1\n")
    with pytest.raises(ConfigError, match='bad.yaml", line'):  # the file, not "<unicode string>"
        load_settings(path)
