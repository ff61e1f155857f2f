"""Fast checks of the local-stack helpers: no service is started."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from monitor.stack import (
    JAVA_INSTALL_HINT,
    KafkaProcess,
    Stack,
    StackError,
    down,
    ensure_kafka_jars,
    free_ports,
    pid_alive,
    read_stack_file,
    render_prometheus_config,
    stop_pid,
)


def test_free_ports_are_distinct_and_bindable_on_loopback() -> None:
    ports = free_ports(5)
    assert len(set(ports)) == 5
    for port in ports:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))  # raises if the port were taken


def test_missing_java_fails_fast_naming_the_install_command(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(StackError) as info:
        ensure_kafka_jars(tmp_path / "cache", path="")
    assert time.monotonic() - started < 1.0
    assert "java" in str(info.value) and "mvn" in str(info.value)
    assert JAVA_INSTALL_HINT in str(info.value)
    assert not (tmp_path / "cache").exists()


def test_complete_jar_cache_is_reused_without_running_maven(tmp_path: Path) -> None:
    # PATH holds java and mvn stand-ins that would fail if run: a cache hit must not run them
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("java", "mvn"):
        exe = bin_dir / tool
        exe.write_text("#!/bin/sh\nexit 97\n")
        exe.chmod(0o755)
    cache = tmp_path / "kafka"
    cache.mkdir()
    (cache / ".complete").write_text("kafka: 1 jars\n")
    assert ensure_kafka_jars(cache, path=str(bin_dir)) == cache
    (cache / ".complete").unlink()
    with pytest.raises(StackError, match="Maven could not resolve"):
        ensure_kafka_jars(cache, path=str(bin_dir))


def test_prometheus_config_fills_targets_rules_and_alertmanager(tmp_path: Path) -> None:
    rules = tmp_path / "rules" / "*.yml"
    config = render_prometheus_config(
        scrape_targets=["127.0.0.1:6066", "127.0.0.1:6067"],
        alertmanager="127.0.0.1:9999",
        self_target="127.0.0.1:9998",
        rules_glob=rules,
    )
    assert config["global"]["scrape_interval"] == "5s"
    assert config["rule_files"] == [str(rules)]
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["127.0.0.1:9999"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["stagewatch"]["static_configs"][0]["targets"] == ["127.0.0.1:6066", "127.0.0.1:6067"]
    assert jobs["prometheus"]["static_configs"][0]["targets"] == ["127.0.0.1:9998"]
    yaml.safe_dump(config)  # serialisable as written to the run dir


def test_prometheus_config_without_workers_or_alertmanager_is_accepted_by_promtool(tmp_path: Path) -> None:
    config = render_prometheus_config(rules_glob=tmp_path / "none" / "*.yml")
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == []
    assert [job["job_name"] for job in config["scrape_configs"]] == ["stagewatch"]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool missing: apt-get install prometheus")
    checked = subprocess.run([promtool, "check", "config", str(path)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_kafka_server_properties_use_picked_loopback_ports(tmp_path: Path) -> None:
    kafka = KafkaProcess(tmp_path, jars=tmp_path)
    props = dict(line.split("=", 1) for line in kafka.server_properties().splitlines())
    assert kafka.port != kafka.controller_port
    assert props["listeners"] == (
        f"PLAINTEXT://127.0.0.1:{kafka.port},CONTROLLER://127.0.0.1:{kafka.controller_port}"
    )
    assert props["controller.quorum.voters"] == f"1@127.0.0.1:{kafka.controller_port}"
    assert props["log.dirs"] == str(tmp_path.resolve() / "kafka" / "data")
    assert kafka.bootstrap == f"127.0.0.1:{kafka.port}"


def test_stop_pid_terminates_the_whole_session_then_kills_what_ignores_sigterm(tmp_path: Path) -> None:
    # a parent that ignores SIGTERM with a child in its session: both must be gone
    script = (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, start_new_session=True, text=True
    )
    assert proc.stdout is not None
    child_pid = int(proc.stdout.readline())
    started = time.monotonic()
    stop_pid(proc.pid, timeout=0.5, proc=proc)
    assert proc.poll() is not None
    assert 0.5 <= time.monotonic() - started < 5
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and pid_alive(child_pid):
        time.sleep(0.05)
    assert not pid_alive(child_pid)  # gone (or a finished zombie awaiting its new parent)


def test_down_signals_only_processes_that_belong_to_the_run_dir(tmp_path: Path) -> None:
    foreign = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True)
    try:
        (tmp_path / "stack.json").write_text(
            f'{{"run_dir": "{tmp_path}", "kafka": {{"pid": {foreign.pid}, "bootstrap": "127.0.0.1:1"}}}}'
        )
        assert read_stack_file(tmp_path)["kafka"]["pid"] == foreign.pid
        assert down(tmp_path) == []  # the pid's command line does not name the run dir
        assert foreign.poll() is None
        assert read_stack_file(tmp_path) is None
    finally:
        foreign.kill()
        foreign.wait()


def test_a_fresh_stack_empties_an_earlier_runs_directory_and_refuses_any_other(tmp_path):
    """`make demo` twice: the second run started on the first one's topics and metrics and reported both
    runs' alerts as its own. The demo's stack now starts from an empty run directory, and a
    directory holding anything else (``--run-dir`` pointed at a home by mistake) is left alone."""
    earlier = tmp_path / "demo"
    for name in ("kafka/data", "prometheus/data", "alertmanager", "worker/data"):
        (earlier / name).mkdir(parents=True)
    (earlier / "kafka/data/events-0.log").write_bytes(b"x")
    (earlier / "stack.json").write_text("{}")
    Stack(earlier, fresh=True)._empty_run_dir()
    assert list(earlier.iterdir()) == []
    home = tmp_path / "home"
    (home / "kafka").mkdir(parents=True)
    (home / "notes.txt").write_text("mine")
    with pytest.raises(StackError, match="notes.txt"):
        Stack(home, fresh=True)._empty_run_dir()
    assert sorted(p.name for p in home.iterdir()) == ["kafka", "notes.txt"]
    Stack(tmp_path / "new", fresh=True)._empty_run_dir()  # nothing there yet: nothing to do
