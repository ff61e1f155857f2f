"""The report opens in a real headless Chromium: it renders, draws, and logs no script error."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from monitor import simulate as sim
from monitor.report import collect, write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],  # type: ignore[list-item]
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.skipif(CHROMIUM is None, reason="Debian package chromium not installed (make deps)")
def test_report_renders_in_headless_chromium(tmp_path: Path):
    written = sim.run("slowdown", tmp_path / "sim", items=800, seed=2)
    events = written["slowdown"]
    data = collect(events, truth_path=events.parent / "truth.json")
    report = write_report(data, tmp_path / "report.html")
    url = report.resolve().as_uri()

    shot = tmp_path / "report.png"
    run = chromium(tmp_path / "profile", f"--screenshot={shot}", "--window-size=1400,3000",
                   "--enable-logging=stderr", "--v=0", url)
    assert shot.exists(), run.stderr[-2000:]
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 50_000  # a blank 1400x3000 page is ~10 kB
    errors = [line for line in run.stderr.splitlines()
              if "Uncaught" in line or ("CONSOLE" in line and "error" in line.lower())]
    assert errors == []

    dom = chromium(tmp_path / "profile2", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "Stagewatch replay report" in dom.stdout
    assert dom.stdout.count("<svg") >= 4
    for wf in ("sales", "support"):
        assert f"Workflow {wf}" in dom.stdout
