"""The embedded local stack: a real Kafka broker (KRaft), Prometheus and Alertmanager as local processes.

Nothing here is a fake: Kafka runs from jars that Maven resolves once into a cache
(``deploy/kafka/pom.xml``), Prometheus and Alertmanager are the Debian binaries. Every process
listens on a free loopback port picked by binding port 0, keeps its data and log file in a run
directory, and is stopped with SIGTERM, then SIGKILL after a timeout.

    with Stack(Path("run")) as stack:          # starts all three, writes run/stack.json
        print(stack.kafka_bootstrap, stack.prometheus_url, stack.alertmanager_url)

``python -m monitor.stack ensure`` resolves the Kafka jars (used by ``make deps``).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import yaml

KAFKA_VERSION = "3.9.1"
REPO_ROOT = Path(__file__).resolve().parent.parent
DEPLOY_DIR = REPO_ROOT / "deploy"
KAFKA_POM = DEPLOY_DIR / "kafka" / "pom.xml"
KAFKA_LOG4J = DEPLOY_DIR / "kafka" / "log4j.properties"
PROMETHEUS_TEMPLATE = DEPLOY_DIR / "prometheus" / "prometheus.yml"
PROMETHEUS_RULES_GLOB = DEPLOY_DIR / "prometheus" / "rules" / "*.yml"
ALERTMANAGER_CONFIG = DEPLOY_DIR / "alertmanager" / "alertmanager.yml"
DEFAULT_JAR_CACHE = Path.home() / ".cache" / "stagewatch" / f"kafka-{KAFKA_VERSION}"
STACK_FILE = "stack.json"
LOOPBACK = "127.0.0.1"

JAVA_INSTALL_HINT = "apt-get install openjdk-17-jre-headless maven"
PROMETHEUS_INSTALL_HINT = "apt-get install prometheus prometheus-alertmanager"

# Alertmanager needs a route and a receiver; without deploy/alertmanager/alertmanager.yml it gets this
# one, which accepts alerts (visible in its API and UI) and notifies nobody.
MINIMAL_ALERTMANAGER_CONFIG: dict[str, Any] = {
    "route": {
        "receiver": "stagewatch-null",
        "group_by": ["alertname", "workflow", "stage"],
        "group_wait": "1s",
        "group_interval": "5s",
        "repeat_interval": "1h",
    },
    "receivers": [{"name": "stagewatch-null"}],
}


class StackError(RuntimeError):
    """A local service could not be obtained, started or stopped; the message says what to do."""


# --------------------------------------------------------------------------- helpers


def free_ports(count: int = 1, host: str = LOOPBACK) -> list[int]:
    """``count`` distinct free TCP ports on ``host``, picked by the kernel (bind to port 0).

    All sockets stay open until every port is picked, so the ports differ from each other.
    """
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((host, 0))
            ports.append(sock.getsockname()[1])
        return ports


def free_port(host: str = LOOPBACK) -> int:
    """One free TCP port on ``host``."""
    return free_ports(1, host)[0]


def port_open(port: int, host: str = LOOPBACK, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _require(binaries: Sequence[str], hint: str, path: str | None) -> dict[str, str]:
    found = {b: shutil.which(b, path=path) for b in binaries}
    missing = [b for b, p in found.items() if p is None]
    if missing:
        raise StackError(f"{' and '.join(missing)} not found on PATH; install with: {hint}")
    return {b: p for b, p in found.items() if p is not None}


def ensure_kafka_jars(
    cache: Path = DEFAULT_JAR_CACHE, *, path: str | None = None, timeout: float = 900.0
) -> Path:
    """The directory holding the Kafka broker jars, resolving them with Maven the first time.

    The cache is complete when its marker file exists; concurrent callers wait on a file lock,
    so only one of them runs Maven. ``path`` overrides the PATH searched for ``java`` and ``mvn``
    (and given to Maven). Raises StackError at once when either is missing.
    """
    tools = _require(["java", "mvn"], JAVA_INSTALL_HINT, path)
    cache = Path(cache).expanduser()
    marker = cache / ".complete"
    if marker.is_file():
        return cache
    cache.parent.mkdir(parents=True, exist_ok=True)
    with open(cache.parent / f".{cache.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.is_file():  # another process finished while we waited
            return cache
        staging = cache.parent / f".{cache.name}.tmp-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        env = dict(os.environ)
        if path is not None:
            env["PATH"] = path
        cmd = [
            tools["mvn"], "-q", "-B", "-f", str(KAFKA_POM), "dependency:copy-dependencies",
            f"-DoutputDirectory={staging}", "-DincludeScope=runtime",
        ]  # fmt: skip
        try:
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise StackError(f"Maven did not resolve the Kafka jars within {timeout:.0f} s") from exc
        jars = sorted(staging.glob("*.jar")) if staging.is_dir() else []
        if done.returncode != 0 or not jars:
            shutil.rmtree(staging, ignore_errors=True)
            output = (done.stdout + done.stderr).strip()[-2000:]
            raise StackError(f"Maven could not resolve the Kafka {KAFKA_VERSION} jars:\n{output}")
        shutil.rmtree(cache, ignore_errors=True)
        staging.rename(cache)
        marker.write_text(f"kafka {KAFKA_VERSION}: {len(jars)} jars\n")
    return cache


def render_prometheus_config(
    *,
    scrape_targets: Sequence[str] = (),
    alertmanager: str | None = None,
    self_target: str | None = None,
    template: Path = PROMETHEUS_TEMPLATE,
    rules_glob: Path = PROMETHEUS_RULES_GLOB,
) -> dict[str, Any]:
    """The Prometheus configuration for the local stack, built from ``template``.

    Fills in: the ``stagewatch`` job's targets (worker ``host:port``), the ``prometheus`` job's
    target (itself), the Alertmanager to alert (``host:port``, none when ``None``) and
    ``rule_files`` as one absolute glob (Prometheus accepts a glob that matches nothing yet).
    """
    config = yaml.safe_load(template.read_text())
    config["rule_files"] = [str(rules_glob.resolve())]
    am_targets = [alertmanager] if alertmanager else []
    config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = am_targets
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    jobs["stagewatch"]["static_configs"][0]["targets"] = list(scrape_targets)
    if self_target:
        jobs["prometheus"]["static_configs"][0]["targets"] = [self_target]
    else:
        config["scrape_configs"] = [j for j in config["scrape_configs"] if j["job_name"] != "prometheus"]
    return config


def _set_parent_death_signal() -> None:  # pragma: no cover - runs in the forked child
    """Linux: the child gets SIGTERM when the thread that started it dies, even by SIGKILL."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _cmdline(pid: int) -> str | None:
    """The command line of ``pid`` (Linux), ``""`` where /proc is absent, None when the pid is gone."""
    proc = Path("/proc") / str(pid) / "cmdline"
    if not Path("/proc/self").exists():
        return ""
    try:
        return proc.read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie has finished; another user's process counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path("/proc") / str(pid) / "stat"
    with contextlib.suppress(OSError):
        if stat.read_text().rsplit(")", 1)[1].split()[0] == "Z":  # a zombie has finished
            return False
    return True


def stop_pid(pid: int, timeout: float = 15.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    """SIGTERM the process group led by ``pid`` (started with ``start_new_session``), then SIGKILL it
    after ``timeout`` seconds. ``proc`` (when we are its parent) is reaped."""

    def gone() -> bool:
        return proc.poll() is not None if proc is not None else not pid_alive(pid)

    def signal_group(sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)

    if gone():
        signal_group(signal.SIGKILL)  # leftovers of the group, if any
        return
    signal_group(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if gone():
            return
        time.sleep(0.1)
    signal_group(signal.SIGKILL)
    kill_deadline = time.monotonic() + 5.0
    while time.monotonic() < kill_deadline and not gone():
        time.sleep(0.05)
    if not gone():
        raise StackError(f"process {pid} survived SIGKILL")


# --------------------------------------------------------------------------- processes


class LocalProcess(ABC):
    """A local service process: its files live in ``run_dir/<name>``, its output goes to
    ``<name>.log`` there; it is started in a new session, probed until ready, and stopped with
    SIGTERM, then SIGKILL after ``stop_timeout`` seconds."""

    name = "process"
    stop_timeout = 15.0

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir).resolve()
        self.dir = self.run_dir / self.name
        self.log_path = self.dir / f"{self.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    # subclasses provide these
    @abstractmethod
    def command(self) -> list[str]:
        """The command line that starts the process."""

    def prepare(self) -> None:  # noqa: B027 - optional hook: most processes need nothing written
        """Write configuration and data directories before the process starts."""

    @abstractmethod
    def ready(self) -> bool:
        """Whether the process answers (its readiness probe)."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """What stack.json records about this process (urls and ports; the pid is added)."""

    # lifecycle
    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def launch(self, *, detach: bool = False) -> None:
        """Start the process without waiting for it. ``detach=False`` ties its life to ours
        (Linux parent-death signal), so even a killed parent leaves no orphan."""
        if self.proc is not None:
            raise StackError(f"{self.name} already started (pid {self.proc.pid})")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.prepare()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.command(),
                cwd=self.dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=None if detach or sys.platform != "linux" else _set_parent_death_signal,
            )

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Probe until ready; raise StackError with the log's tail if it exits or times out."""
        if self.proc is None:
            raise StackError(f"{self.name} was not started")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise StackError(
                    f"{self.name} exited with code {self.proc.returncode} while starting; "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            if self.ready():
                return
            time.sleep(0.2)
        raise StackError(
            f"{self.name} not ready after {timeout:.0f} s; log {self.log_path}:\n{self.log_tail()}"
        )

    def start(self, *, timeout: float = 90.0, detach: bool = False) -> LocalProcess:
        self.launch(detach=detach)
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            stop_pid(self.proc.pid, self.stop_timeout, proc=self.proc)
        finally:
            self.proc = None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def _http_ready(self, url: str) -> bool:
        try:
            return httpx.get(url, timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False


class KafkaProcess(LocalProcess):
    """A single-node Kafka broker in KRaft mode (broker and controller in one JVM).

    ``stop()`` then ``start()`` restarts it on the same ports and data directory (topics and offsets
    kept). ``sasl_users`` (user -> password) adds a SASL_PLAINTEXT listener with mechanism PLAIN at
    :attr:`sasl_bootstrap`; the PLAINTEXT listener stays for the broker itself and for probes.
    """

    name = "kafka"
    stop_timeout = 20.0

    def __init__(
        self,
        run_dir: Path,
        *,
        jars: Path | None = None,
        heap: str = "512m",
        partitions: int = 1,
        sasl_users: dict[str, str] | None = None,
    ) -> None:
        super().__init__(run_dir)
        self.jars = jars
        self.heap = heap
        self.partitions = partitions
        self.sasl_users = dict(sasl_users) if sasl_users else None
        self.port, self.controller_port, self.sasl_port = free_ports(3)
        self.data_dir = self.dir / "data"

    @property
    def bootstrap(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def sasl_bootstrap(self) -> str:
        if not self.sasl_users:
            raise StackError("this broker has no SASL listener (pass sasl_users)")
        return f"{LOOPBACK}:{self.sasl_port}"

    def server_properties(self) -> str:
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{LOOPBACK}:{self.controller_port}",
            "listeners": f"PLAINTEXT://{LOOPBACK}:{self.port},CONTROLLER://{LOOPBACK}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{LOOPBACK}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": str(self.partitions),
            "auto.create.topics.enable": "true",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "log.retention.hours": "168",
        }
        if self.sasl_users:
            sasl = f"SASL_PLAINTEXT://{LOOPBACK}:{self.sasl_port}"
            props["listeners"] += f",{sasl}"
            props["advertised.listeners"] += f",{sasl}"
            props["listener.security.protocol.map"] += ",SASL_PLAINTEXT:SASL_PLAINTEXT"
            props["sasl.enabled.mechanisms"] = "PLAIN"
            users = " ".join(f'user_{u}="{pw}"' for u, pw in self.sasl_users.items())
            props["listener.name.sasl_plaintext.plain.sasl.jaas.config"] = (
                f"org.apache.kafka.common.security.plain.PlainLoginModule required {users};"
            )
        return "".join(f"{k}={v}\n" for k, v in props.items())

    def _java(self, main: str, *args: str) -> list[str]:
        assert self.jars is not None
        return [
            _require(["java"], JAVA_INSTALL_HINT, None)["java"],
            f"-Xmx{self.heap}",
            "-XX:+UseSerialGC",
            "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{KAFKA_LOG4J}",
            f"-Dkafka.logs.dir={self.dir}",
            "-cp",
            f"{self.jars}/*",
            main,
            *args,
        ]

    def prepare(self) -> None:
        if self.jars is None:
            self.jars = ensure_kafka_jars()
        props = self.dir / "server.properties"
        props.write_text(self.server_properties())
        if (self.data_dir / "meta.properties").is_file():
            return  # formatted by an earlier start: keep the topics
        # Kafka's own Uuid.randomUuid() rejects ids starting with "-": the tool would read one as an option
        cluster_id = "-"
        while cluster_id.startswith("-"):
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        done = subprocess.run(
            self._java("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(props)),
            cwd=self.dir,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0:
            raise StackError(f"formatting Kafka storage failed:\n{(done.stdout + done.stderr)[-2000:]}")

    def command(self) -> list[str]:
        return self._java("kafka.Kafka", str(self.dir / "server.properties"))

    def ready(self) -> bool:
        if not port_open(self.port):
            return False
        from kafka import KafkaAdminClient
        from kafka.errors import KafkaError

        try:
            admin = KafkaAdminClient(
                bootstrap_servers=self.bootstrap, request_timeout_ms=3000, client_id="stagewatch-probe"
            )
        except (KafkaError, OSError, ValueError):
            return False
        try:
            admin.list_topics()
            return True
        except (KafkaError, OSError, ValueError):
            return False
        finally:
            admin.close()

    def describe(self) -> dict[str, Any]:
        return {
            "bootstrap": self.bootstrap,
            "ports": {"broker": self.port, "controller": self.controller_port,
                      **({"sasl": self.sasl_port} if self.sasl_users else {})},
            "log": str(self.log_path),
        }


class AlertmanagerProcess(LocalProcess):
    """Alertmanager with deploy/alertmanager/alertmanager.yml, or a minimal null-receiver config."""

    name = "alertmanager"

    def __init__(self, run_dir: Path, *, config: Path | None = None) -> None:
        super().__init__(run_dir)
        self.port = free_port()
        self.source_config = config if config is not None else ALERTMANAGER_CONFIG
        self.binary = _require_one(["prometheus-alertmanager", "alertmanager"])

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def host_port(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def prepare(self) -> None:
        config = self.dir / "alertmanager.yml"
        if self.source_config.is_file():
            shutil.copyfile(self.source_config, config)
        else:
            config.write_text(yaml.safe_dump(MINIMAL_ALERTMANAGER_CONFIG, sort_keys=False))
        (self.dir / "data").mkdir(exist_ok=True)

    def command(self) -> list[str]:
        return [
            self.binary,
            f"--config.file={self.dir / 'alertmanager.yml'}",
            f"--storage.path={self.dir / 'data'}",
            f"--web.listen-address={self.host_port}",
            "--cluster.listen-address=",
        ]

    def ready(self) -> bool:
        return self._http_ready(f"{self.url}/-/ready")

    def describe(self) -> dict[str, Any]:
        return {"url": self.url, "port": self.port, "log": str(self.log_path)}


class PrometheusProcess(LocalProcess):
    """Prometheus scraping the Stagewatch workers, alerting the local Alertmanager, reloadable."""

    name = "prometheus"

    def __init__(
        self, run_dir: Path, *, scrape_targets: Sequence[str] = (), alertmanager: str | None = None
    ) -> None:
        super().__init__(run_dir)
        self.port = free_port()
        self.scrape_targets = list(scrape_targets)
        self.alertmanager = alertmanager
        self.config_path = self.dir / "prometheus.yml"
        self.binary = _require_one(["prometheus"])

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def write_config(self) -> None:
        config = render_prometheus_config(
            scrape_targets=self.scrape_targets,
            alertmanager=self.alertmanager,
            self_target=f"{LOOPBACK}:{self.port}",
        )
        tmp = self.config_path.with_suffix(".yml.tmp")
        tmp.write_text(yaml.safe_dump(config, sort_keys=False))
        tmp.replace(self.config_path)

    def prepare(self) -> None:
        (self.dir / "data").mkdir(exist_ok=True)
        self.write_config()

    def command(self) -> list[str]:
        return [
            self.binary,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.dir / 'data'}",
            "--storage.tsdb.retention.time=2d",
            f"--web.listen-address={LOOPBACK}:{self.port}",
            "--web.enable-lifecycle",
        ]

    def ready(self) -> bool:
        return self._http_ready(f"{self.url}/-/ready")

    def reload(self) -> None:
        """Ask the running Prometheus to re-read its configuration and rule files."""
        response = httpx.post(f"{self.url}/-/reload", timeout=10.0)
        if response.status_code != 200:
            raise StackError(f"Prometheus reload failed ({response.status_code}): {response.text.strip()}")

    def add_scrape_target(self, host_port: str) -> None:
        """Add a worker (``host:port``) to the ``stagewatch`` job and reload."""
        if host_port not in self.scrape_targets:
            self.scrape_targets.append(host_port)
        self.write_config()
        self.reload()

    def describe(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "port": self.port,
            "scrape_targets": list(self.scrape_targets),
            "log": str(self.log_path),
        }


def _require_one(candidates: Sequence[str]) -> str:
    for name in candidates:
        found = shutil.which(name)
        if found:
            return found
    raise StackError(f"{' or '.join(candidates)} not found on PATH; install with: {PROMETHEUS_INSTALL_HINT}")


# --------------------------------------------------------------------------- the stack


class Stack:
    """Kafka, Alertmanager and Prometheus (or a subset) started together in ``run_dir``.

    A context manager: ``__enter__`` starts and waits until every process is ready and writes
    ``run_dir/stack.json``; ``__exit__`` (also on Ctrl-C) stops them all. ``detach=True`` starts
    processes that outlive this Python process; stop them later with :func:`down`.
    """

    def __init__(
        self,
        run_dir: Path = Path("run"),
        *,
        kafka: bool = True,
        prometheus: bool = True,
        alertmanager: bool = True,
        scrape_targets: Sequence[str] = (),
        detach: bool = False,
        timeout: float = 120.0,
        fresh: bool = False,
    ) -> None:
        self.run_dir = Path(run_dir).resolve()
        self.detach = detach
        self.fresh = fresh  # start from an empty run_dir: no topics, state or metrics of an earlier run
        self.timeout = timeout
        self.kafka = KafkaProcess(self.run_dir) if kafka else None
        self.alertmanager = AlertmanagerProcess(self.run_dir) if alertmanager else None
        self.prometheus = (
            PrometheusProcess(
                self.run_dir,
                scrape_targets=scrape_targets,
                alertmanager=self.alertmanager.host_port if self.alertmanager else None,
            )
            if prometheus
            else None
        )

    @property
    def processes(self) -> list[LocalProcess]:
        return [p for p in (self.kafka, self.alertmanager, self.prometheus) if p is not None]

    @property
    def kafka_bootstrap(self) -> str | None:
        return self.kafka.bootstrap if self.kafka else None

    @property
    def prometheus_url(self) -> str | None:
        return self.prometheus.url if self.prometheus else None

    @property
    def alertmanager_url(self) -> str | None:
        return self.alertmanager.url if self.alertmanager else None

    @property
    def stack_file(self) -> Path:
        return self.run_dir / STACK_FILE

    def start(self) -> Stack:
        """Launch every process at once (the slow JVM first), then wait until all are ready."""
        existing = read_stack_file(self.run_dir)
        if existing and any(_owned_pid_alive(self.run_dir, c.get("pid")) for c in _components(existing)):
            raise StackError(f"a stack is already running from {self.run_dir}; stop it with: stagewatch down")
        if self.fresh:
            self._empty_run_dir()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.kafka is not None and self.kafka.jars is None:
            self.kafka.jars = ensure_kafka_jars()
        try:
            for process in self.processes:
                process.launch(detach=self.detach)
            deadline = time.monotonic() + self.timeout
            for process in self.processes:
                process.wait_ready(max(1.0, deadline - time.monotonic()))
            self.write_stack_file()
        except BaseException:
            self.stop()
            raise
        return self

    def _empty_run_dir(self) -> None:
        """Remove what an earlier stack left in ``run_dir``, and nothing else: a directory holding anything
        but the services' own directories (``--run-dir`` pointed somewhere else by mistake) is refused."""
        if not self.run_dir.is_dir():
            return
        own = {STACK_FILE, "kafka", "prometheus", "alertmanager", "worker"}
        foreign = sorted(p.name for p in self.run_dir.iterdir() if p.name not in own)
        if foreign:
            raise StackError(f"{self.run_dir} holds files that are not a stack's ({', '.join(foreign[:5])}): "
                             "not emptied; pick an empty or new directory")
        for name in own:
            path = self.run_dir / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()

    def stop(self) -> None:
        """Stop every process (Prometheus first, Kafka last) and remove stack.json."""
        errors = []
        for process in reversed(self.processes):
            try:
                process.stop()
            except StackError as exc:
                errors.append(str(exc))
        with contextlib.suppress(FileNotFoundError):
            self.stack_file.unlink()
        if errors:
            raise StackError("; ".join(errors))

    def add_scrape_target(self, host_port: str) -> None:
        """Let Prometheus scrape a worker at ``host:port`` (rewrites its config and reloads)."""
        if self.prometheus is None:
            raise StackError("this stack has no Prometheus")
        self.prometheus.add_scrape_target(host_port)
        self.write_stack_file()

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"run_dir": str(self.run_dir), "started_at": time.time()}
        for process in self.processes:
            info[process.name] = {**process.describe(), "pid": process.pid}
        return info

    def write_stack_file(self) -> None:
        tmp = self.stack_file.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.describe(), indent=2) + "\n")
        tmp.replace(self.stack_file)

    def wait(self, timeout: float | None = None) -> LocalProcess | None:
        """Block until a process exits (returned) or ``timeout`` seconds pass (None: no limit)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while deadline is None or time.monotonic() < deadline:
            for process in self.processes:
                if not process.running():
                    return process
            time.sleep(0.5)
        return None

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def read_stack_file(run_dir: Path = Path("run")) -> dict[str, Any] | None:
    """The contents of ``run_dir/stack.json`` (urls, ports, pids), None when there is none."""
    try:
        return json.loads((Path(run_dir) / STACK_FILE).read_text())
    except FileNotFoundError:
        return None


def _components(info: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for value in info.values():
        if isinstance(value, dict) and "pid" in value:
            yield value


def _owned_pid_alive(run_dir: Path, pid: Any) -> bool:
    """True when ``pid`` runs and is one of ours (its command line names the run directory),
    so a recycled pid is never signalled."""
    if not isinstance(pid, int) or pid <= 0 or not pid_alive(pid):
        return False
    cmdline = _cmdline(pid)
    return cmdline is not None and (cmdline == "" or str(Path(run_dir).resolve()) in cmdline)


def down(run_dir: Path = Path("run"), timeout: float = 20.0) -> list[str]:
    """Stop the processes listed in ``run_dir/stack.json``; returns the names stopped."""
    run_dir = Path(run_dir).resolve()
    info = read_stack_file(run_dir)
    if info is None:
        return []
    stopped = []
    for name in ("prometheus", "alertmanager", "kafka"):
        entry = info.get(name)
        if isinstance(entry, dict) and _owned_pid_alive(run_dir, entry.get("pid")):
            stop_pid(entry["pid"], timeout)
            stopped.append(name)
    (run_dir / STACK_FILE).unlink(missing_ok=True)
    return stopped


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args != ["ensure"]:
        print("usage: python -m monitor.stack ensure   (resolve the Kafka broker jars once)", file=sys.stderr)
        return 2
    try:
        started = time.monotonic()
        jars = ensure_kafka_jars()
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    count = len(list(jars.glob("*.jar")))
    print(f"Kafka {KAFKA_VERSION}: {count} jars in {jars} ({time.monotonic() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
