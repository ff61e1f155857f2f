"""Stagewatch: monitor package (config, events, engine, sinks, metrics, backtest, CLI)."""

from detectors._build import check_compiled

check_compiled("monitor")  # before a stale compiled module (core/mypyc_build.py) runs its old code
