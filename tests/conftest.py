"""Shared fixtures: the real local services, started lazily (only when a test asks) and once per session.

- ``kafka``: bootstrap string ``127.0.0.1:PORT`` of a KRaft broker (jars resolved by Maven, cached).
- ``alertmanager``: base URL of an Alertmanager.
- ``prometheus``: base URL of a Prometheus that alerts the session's Alertmanager and loads
  deploy/prometheus/rules/*.yml; ``prometheus_process`` gives the process object itself
  (``add_scrape_target("127.0.0.1:PORT")`` to scrape a worker).
- ``topic_name``: a fresh, unique topic name for one test.

Every test under tests/integration is marked ``integration`` automatically.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.stack import AlertmanagerProcess, KafkaProcess, PrometheusProcess

INTEGRATION_DIR = Path(__file__).parent / "integration"


def pytest_configure(config: pytest.Config) -> None:
    # kafka-python loads its protocol schemas with importlib.resources' legacy API (hundreds of warnings)
    for message in ("read_text is deprecated", "open_text is deprecated"):
        config.addinivalue_line("filterwarnings", f"ignore:{message}:DeprecationWarning")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION_DIR in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def stack_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's run directory: each service keeps its data and log file in a subdirectory."""
    return tmp_path_factory.mktemp("stack")


@pytest.fixture(scope="session")
def kafka(stack_dir: Path) -> Iterator[str]:
    process = KafkaProcess(stack_dir)
    process.start(timeout=120)
    try:
        yield process.bootstrap
    finally:
        process.stop()


@pytest.fixture(scope="session")
def alertmanager_process(stack_dir: Path) -> Iterator[AlertmanagerProcess]:
    process = AlertmanagerProcess(stack_dir)
    process.start(timeout=60)
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="session")
def alertmanager(alertmanager_process: AlertmanagerProcess) -> str:
    return alertmanager_process.url


@pytest.fixture(scope="session")
def prometheus_process(
    stack_dir: Path, alertmanager_process: AlertmanagerProcess
) -> Iterator[PrometheusProcess]:
    process = PrometheusProcess(stack_dir, alertmanager=alertmanager_process.host_port)
    process.start(timeout=60)
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="session")
def prometheus(prometheus_process: PrometheusProcess) -> str:
    return prometheus_process.url


@pytest.fixture
def topic_name() -> str:
    """A topic name no other test (or earlier run against the same broker) has used."""
    return f"test-{uuid.uuid4().hex[:16]}"
