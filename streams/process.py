"""Run a worker as a local process (tests, ``stagewatch demo``), the same way the stack runs services."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from monitor.stack import LocalProcess, free_port


class WorkerProcess(LocalProcess):
    """``stagewatch worker`` with a settings file written from ``settings`` (a plain dict)."""

    name = "worker"
    stop_timeout = 30.0

    def __init__(self, run_dir: Path, settings: dict[str, Any], *, name: str = "worker") -> None:
        self.name = name
        super().__init__(run_dir)
        worker = dict(settings.get("worker", {}))
        worker.setdefault("web_port", free_port())
        worker.setdefault("web_host", "127.0.0.1")
        worker.setdefault("data_dir", str(self.dir / "data"))
        self.settings = {**settings, "worker": worker}
        self.port = worker["web_port"]
        self.config_path = self.dir / "stagewatch.yaml"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def prepare(self) -> None:
        self.config_path.write_text(yaml.safe_dump(self.settings, sort_keys=False))

    def command(self) -> list[str]:
        return [sys.executable, "-m", "monitor.cli", "worker", "--config", str(self.config_path), "-l", "warn"]

    def ready(self) -> bool:
        return self._http_ready(f"{self.url}/health")

    def describe(self) -> dict[str, Any]:
        return {"url": self.url, "port": self.port, "config": str(self.config_path)}

    def __enter__(self) -> WorkerProcess:
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
