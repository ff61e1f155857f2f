"""Quality of the bottleneck-shift detector (``detectors.drift.ShiftDetector``), measured on seeded
lognormal streams of stage durations with 2 % 10x outliers, and optionally compared with another
version of the module (a git revision or a file), all measured in the same run.

Figures (the ones the module docstring quotes):

* detection delay of a permanent 2x slowdown / 0.5x speedup that starts at item 300 (median and
  worst items after the change, over ``--runs`` seeds, per sigma), with the number missed
  (no shift within 900 items) or reported early (before the change);
* delay of the same 2x slowdown when it starts only 20 items after the detector armed (item 50);
* false shifts per 100 000 items on stationary streams (sigma 0.3 / 0.6 / 0.9, ``--false-items``
  items each, 8 seeds);
* cost of one ``update`` in microseconds.

Usage::

    .venv/bin/python bench/drift_quality.py                      # the working-tree module only
    .venv/bin/python bench/drift_quality.py --against d222dc4    # and the CUSUM it replaced (git rev)
    .venv/bin/python bench/drift_quality.py --against /tmp/drift_old.py
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from monitor.simulate import duration_stream as stream  # noqa: E402

SIGMAS = (0.3, 0.6, 0.9)
FALSE_SEEDS = range(100, 108)




def load(source: str) -> ModuleType:
    """The drift module from a file path, or from ``git show REV:detectors/drift.py`` (read only)."""
    path = Path(source)
    if not path.is_file():
        text = subprocess.run(["git", "-C", str(ROOT), "show", f"{source}:detectors/drift.py"],
                              check=True, capture_output=True, text=True).stdout
        tmp = tempfile.NamedTemporaryFile("w", suffix=".py", delete=False)
        tmp.write(text)
        tmp.close()
        path = Path(tmp.name)
    spec = importlib.util.spec_from_file_location(f"drift_{abs(hash(source))}", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(mod)
    return mod


def first_shifts(make: Callable[[], Any], values: list[float]) -> list[int]:
    d = make()
    return [i for i, v in enumerate(values) if d.update(v, 1_700_000_000.0 + i) is not None]


def delays(make: Callable[[], Any], sigma: float, factor: float, change_at: int, runs: int) -> dict[str, Any]:
    found: list[int] = []
    missed = early = 0
    for seed in range(runs):
        hits = first_shifts(make, stream(seed, sigma, change_at + 900, change_at, factor))
        if hits and hits[0] < change_at:
            early += 1
            hits = [h for h in hits if h >= change_at]
        if not hits:
            missed += 1
        else:
            found.append(hits[0] - change_at + 1)
    return {"median": statistics.median(found) if found else None, "max": max(found, default=None),
            "missed": missed, "early": early}


def false_rate(make: Callable[[], Any], sigma: float, items: int) -> int:
    return sum(len(first_shifts(make, stream(seed, sigma, items))) for seed in FALSE_SEEDS)


def cost_us(make: Callable[[], Any]) -> float:
    values = stream(1, 0.6, 20_000)
    d = make()
    t0 = time.perf_counter()
    for i, v in enumerate(values):
        d.update(v, i)
    return 1e6 * (time.perf_counter() - t0) / len(values)


def measure(mod: ModuleType, runs: int, false_items: int) -> dict[str, Any]:
    make = mod.ShiftDetector
    out: dict[str, Any] = {}
    for sigma in SIGMAS:
        out[("up", sigma)] = delays(make, sigma, 2.0, 300, runs)
        out[("down", sigma)] = delays(make, sigma, 0.5, 300, runs)
        out[("early-up", sigma)] = delays(make, sigma, 2.0, 50, runs)
        out[("false", sigma)] = false_rate(make, sigma, false_items)
    out["cost"] = cost_us(make)
    return out


def _fmt(d: dict[str, Any]) -> str:
    if d["median"] is None:
        return f"missed {d['missed']}"
    s = f"{d['median']:g} (max {d['max']})"
    if d["missed"]:
        s += f" miss {d['missed']}"
    if d["early"]:
        s += f" early {d['early']}"
    return s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--against", action="append", default=[],
                    help="git revision or file of another detectors/drift.py to compare with (repeatable)")
    ap.add_argument("--runs", type=int, default=20, help="seeds per delay cell")
    ap.add_argument("--false-items", type=int, default=10_000, help="items per stationary stream")
    args = ap.parse_args()

    versions = [("working tree", load(str(ROOT / "detectors" / "drift.py")))]
    versions += [(src, load(src)) for src in args.against]
    results = [(name, measure(mod, args.runs, args.false_items)) for name, mod in versions]

    per_sigma = len(FALSE_SEEDS) * args.false_items
    print(f"ShiftDetector quality: {args.runs} seeds per delay cell, 2 % 10x outliers; "
          f"false shifts over {len(FALSE_SEEDS)} x {args.false_items} stationary items per sigma")
    header = f"{'row':34}" + "".join(f"{name[:26]:>28}" for name, _ in results)
    print(header)
    print("-" * len(header))
    rows: list[tuple[str, Callable[[dict[str, Any]], str]]] = []
    for sigma in SIGMAS:
        rows.append((f"2x slowdown @300, sigma {sigma}: items", lambda r, s=sigma: _fmt(r[("up", s)])))
    for sigma in SIGMAS:
        rows.append((f"0.5x speedup @300, sigma {sigma}: items", lambda r, s=sigma: _fmt(r[("down", s)])))
    for sigma in SIGMAS:
        rows.append((f"2x slowdown @50, sigma {sigma}: items", lambda r, s=sigma: _fmt(r[("early-up", s)])))
    for sigma in SIGMAS:
        rows.append((f"false shifts, sigma {sigma}", lambda r, s=sigma: str(r[("false", s)])))
    rows.append(("false shifts per 100k items (all)",
                 lambda r: f"{1e5 * sum(r[('false', s)] for s in SIGMAS) / (len(SIGMAS) * per_sigma):.2f}"))
    rows.append(("update cost, us", lambda r: f"{r['cost']:.1f}"))
    for label, cell in rows:
        print(f"{label:34}" + "".join(f"{cell(r):>28}" for _, r in results))
    if len(results) > 1:
        print()
        base = results[1][1]
        new = results[0][1]
        for sigma in SIGMAS:
            for kind in ("up", "down"):
                a, b = new[(kind, sigma)]["median"], base[(kind, sigma)]["median"]
                if a is not None and b:
                    print(f"delay ratio working tree / {results[1][0]}, {kind} sigma {sigma}: {a / b:.2f}")


if __name__ == "__main__":
    main()
