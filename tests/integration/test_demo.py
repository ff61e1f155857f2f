"""`stagewatch demo --no-ui`, as a script would run it: it must page a stall in Alertmanager and get
stage-duration metrics into Prometheus, and say so in its summary."""

from __future__ import annotations

import subprocess
import sys


def test_demo_pages_a_stall_in_alertmanager_and_fills_prometheus(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "monitor.cli", "demo", "--duration", "75", "--no-ui", "--run-dir", str(tmp_path / "demo")],
        capture_output=True, text=True, timeout=400,
    )
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-3000:]
    assert "StagewatchItemStalled" in out and "stalls paged, metrics scraped" in out
    assert not (tmp_path / "demo" / "stack.json").exists(), "the demo must stop its services"
