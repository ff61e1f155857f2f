"""Regression harness for performance work: the alerts must not change.

    python bench/check_identical.py --record   # before a change: write the reference alerts
    python bench/check_identical.py            # after it: backtest again, compare byte for byte

It simulates every scenario (``stagewatch simulate --scenario all --seed 1``) into
``/tmp/benchsim`` when missing, backtests each one (single engine, and 2 partitions for
``steady``) and compares the alert JSONL with the reference in ``/tmp/benchsim/ref``.
Without a reference it records one (so ``make bench`` can run it). Exit status 1 on any difference.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.backtest import run_backtest  # noqa: E402
from monitor.simulate import SCENARIOS, run  # noqa: E402

SIM = Path("/tmp/benchsim")
CASES: list[tuple[str, int]] = [(name, 1) for name in SCENARIOS] + [("steady", 2)]


def _ensure_sim() -> None:
    if all((SIM / name / "events.jsonl").exists() for name in SCENARIOS):
        return
    run("all", SIM, items=6000, seed=1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--record", action="store_true", help="write the reference alerts (before a change)")
    args = ap.parse_args(argv)
    _ensure_sim()
    ref_dir = SIM / "ref"
    record = args.record or not ref_dir.exists()
    ref_dir.mkdir(parents=True, exist_ok=True)
    out_dir = SIM / "now"
    out_dir.mkdir(parents=True, exist_ok=True)
    failed = 0
    total_events = 0
    total_seconds = 0.0
    for name, parts in CASES:
        fname = f"{name}.p{parts}.alerts.jsonl"
        target = (ref_dir if record else out_dir) / fname
        t0 = time.perf_counter()
        s = run_backtest(SIM / name / "events.jsonl", target, partitions=parts)
        dt = time.perf_counter() - t0
        total_events += s.events_read
        total_seconds += dt
        data = target.read_bytes()
        digest = hashlib.sha256(data).hexdigest()[:16]
        if record:
            status = "recorded"
        else:
            same = data == (ref_dir / fname).read_bytes()
            status = "identical" if same else "DIFFERENT"
            failed += not same
        print(
            f"{name:15s} partitions={parts} events={s.events_read:6d} alerts={s.alert_changes:5d} "
            f"sha256={digest} {s.events_read / dt:9,.0f} ev/s  {status}"
        )
    print(f"total {total_events} events in {total_seconds:.1f} s = {total_events / total_seconds:,.0f} events/s")
    if failed:
        print(f"{failed} case(s) differ from the reference in {ref_dir}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
