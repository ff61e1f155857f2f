"""The deployment files (Dockerfile, docker-compose, Kubernetes kustomize) agree with the code and each other.

No Docker engine or cluster is needed: the files are parsed and cross-checked against the CLI, the
settings model and one another. ``promtool`` and ``kubectl``/``kustomize`` are used when installed.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.config import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
COMPOSE_SETTINGS = DEPLOY / "compose" / "stagewatch.yaml"
COMPOSE_PROMETHEUS = DEPLOY / "compose" / "prometheus.yml"
K8S = DEPLOY / "k8s"
K8S_SETTINGS = K8S / "stagewatch.yaml"
DOCKERFILE = ROOT / "Dockerfile"

# Ports the official images listen on by default (the compose file keeps those defaults).
IMAGE_PORTS = {"prom/prometheus": 9090, "prom/alertmanager": 9093, "grafana/grafana": 3000}


# ---------------------------------------------------------------- helpers


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _compose() -> dict[str, Any]:
    return _yaml(COMPOSE_FILE)


def _services() -> dict[str, Any]:
    return _compose()["services"]


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Volume source -> container path, from compose's short syntax ``source:target[:mode]``."""
    return dict(tuple(v.split(":")[:2]) for v in service.get("volumes", []))


def _k8s_docs() -> dict[str, dict[str, Any]]:
    """The raw manifests listed in kustomization.yaml, by kind."""
    docs: dict[str, dict[str, Any]] = {}
    for name in _yaml(K8S / "kustomization.yaml")["resources"]:
        for doc in yaml.safe_load_all((K8S / name).read_text()):
            assert doc["kind"] not in docs, f"two {doc['kind']} manifests"
            docs[doc["kind"]] = doc
    return docs


def _worker_container() -> dict[str, Any]:
    (container,) = _k8s_docs()["Deployment"]["spec"]["template"]["spec"]["containers"]
    return container


def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("STAGEWATCH_"):
            monkeypatch.delenv(key)


def _settings(path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str] | None = None) -> Settings:
    _clean_env(monkeypatch)
    for key, value in (env or {}).items():
        monkeypatch.setenv(key, value)
    return load_settings(path)


def _host_port(address: str) -> tuple[str, int]:
    address = re.sub(r"^[a-z]+://", "", address).split("/")[0]
    host, _, port = address.rpartition(":")
    return host, int(port)


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instr, _, rest = line.partition(" ")
            out.append((instr.upper(), rest.strip()))
    return out


def _dockerfile_final_stage() -> list[tuple[str, str]]:
    steps = _dockerfile()
    last_from = max(i for i, (instr, _) in enumerate(steps) if instr == "FROM")
    return steps[last_from:]


def _exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list), f"use the exec (JSON) form: {args}"
    return value


def _dockerignored(path: str) -> bool:
    """Docker's rule: the last matching pattern wins; a pattern also matches a path's parent directories."""
    patterns = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines()]
    parts = Path(path).parts
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for pattern in patterns:
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        if any(fnmatch.fnmatchcase(c, pattern) for c in candidates):
            excluded = not negate
    return excluded


def _cli_command(args: list[str]) -> None:
    """``args`` (after the ``stagewatch`` entry point) name a real command and only its real options."""
    import typer.main

    from monitor.cli import app

    group = typer.main.get_command(app)
    name, *rest = args
    assert name in group.commands, f"{name!r} is not a stagewatch command ({sorted(group.commands)})"
    known = {opt for param in group.commands[name].params for opt in param.opts}
    for arg in rest:
        if arg.startswith("-"):
            assert arg.split("=")[0] in known, f"{name} has no option {arg}"


# ---------------------------------------------------------------- parsing and file references


def _deploy_yaml_files() -> list[Path]:
    return [COMPOSE_FILE, *sorted((DEPLOY / "compose").rglob("*.y*ml")), *sorted(K8S.glob("*.y*ml"))]


@pytest.mark.parametrize("path", _deploy_yaml_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_deployment_yaml_file_parses(path: Path) -> None:
    docs = list(yaml.safe_load_all(path.read_text()))
    assert docs and all(isinstance(d, dict) for d in docs)


def test_compose_build_context_and_bind_mounts_exist_in_the_repo() -> None:
    services = _services()
    build = services["worker"]["build"]
    context = (COMPOSE_FILE.parent / (build if isinstance(build, str) else build["context"])).resolve()
    assert context == ROOT and (context / "Dockerfile").is_file()
    named = set(_compose().get("volumes") or {})
    mounts = 0
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")):
                assert (COMPOSE_FILE.parent / source).exists(), f"{name}: {source} is not in the repo"
                mounts += 1
            else:
                assert source in named, f"{name}: volume {source} is not declared"
    assert mounts >= 6


def test_dockerfile_copies_only_files_that_exist_and_are_not_dockerignored() -> None:
    copied = []
    for instr, args in _dockerfile():
        if instr == "COPY" and not args.startswith("--from"):
            *sources, _dest = shlex.split(args)
            copied += [s for s in sources if not s.startswith("--")]
    assert {"pyproject.toml", "README.md", "monitor", "streams", "detectors"} <= set(copied)
    for source in copied:
        assert (ROOT / source).exists(), source
        assert not _dockerignored(source), f"{source} is excluded by .dockerignore"
    for package in ("monitor", "streams", "detectors"):
        assert not _dockerignored(f"{package}/__init__.py")
    for heavy in (".venv/bin/python", ".git/HEAD", "run/stack.json", "tests/conftest.py"):
        assert _dockerignored(heavy), f"{heavy} would be sent to the docker daemon"


def test_kustomization_lists_only_files_that_exist() -> None:
    kustomization = _yaml(K8S / "kustomization.yaml")
    listed = list(kustomization["resources"])
    for generator in kustomization.get("configMapGenerator", []) + kustomization.get("secretGenerator", []):
        listed += [f.split("=")[-1] for f in generator.get("files", [])]
    for name in listed:
        assert (K8S / name).is_file(), name
    unlisted = {p.name for p in K8S.glob("*.yaml")} - set(listed) - {"kustomization.yaml"}
    assert not unlisted, f"manifests not in kustomization.yaml: {unlisted}"


# ---------------------------------------------------------------- the worker command


def test_the_worker_command_is_a_real_cli_command_everywhere() -> None:
    import tomllib

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    final = dict(_dockerfile_final_stage())
    assert _exec_form(final["ENTRYPOINT"]) == ["stagewatch"] and "stagewatch" in scripts
    commands = {
        "Dockerfile CMD": _exec_form(final["CMD"]),
        "compose worker": _services()["worker"]["command"],
        "k8s worker": _worker_container()["args"],
    }
    for where, args in commands.items():
        assert args[0] == "worker", where
        _cli_command(args)
    # every place reads the settings from the same path, where the settings file is mounted
    config_paths = {args[args.index("--config") + 1] for args in commands.values()}
    assert config_paths == {"/etc/stagewatch/stagewatch.yaml"}
    assert _mounts(_services()["worker"])["./compose/stagewatch.yaml"] == "/etc/stagewatch/stagewatch.yaml"
    mounts = {m["name"]: m["mountPath"] for m in _worker_container()["volumeMounts"]}
    assert mounts["config"] == "/etc/stagewatch"
    assert _k8s_docs()["Deployment"]["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"] == (
        _yaml(K8S / "kustomization.yaml")["configMapGenerator"][0]["name"]
    )
    assert _yaml(K8S / "kustomization.yaml")["configMapGenerator"][0]["files"] == ["stagewatch.yaml"]


def test_the_dockerfile_runs_as_a_numeric_non_root_user_with_a_healthcheck_on_health() -> None:
    final = _dockerfile_final_stage()
    instrs = dict(final)
    assert final[0][1].startswith("python:3.11-slim")
    user = instrs["USER"].split(":")[0]
    assert user.isdigit() and int(user) != 0
    assert int(user) == _k8s_docs()["Deployment"]["spec"]["template"]["spec"]["securityContext"]["runAsUser"]
    assert "/health" in instrs["HEALTHCHECK"] and "127.0.0.1" in instrs["HEALTHCHECK"]
    assert 'pip install ".[rocksdb]"' in " ".join(a for i, a in _dockerfile() if i == "RUN")  # store: rocksdb works


# ---------------------------------------------------------------- settings


@pytest.mark.parametrize("path", [COMPOSE_SETTINGS, K8S_SETTINGS], ids=["compose", "k8s"])
def test_the_container_settings_validate_and_listen_beyond_loopback(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(path, monkeypatch)
    assert settings.worker.web_host == "0.0.0.0", "in a container 127.0.0.1 is unreachable for probes and Prometheus"
    assert settings.worker.data_dir.is_absolute()
    assert settings.worker.ingest_token is None, "secrets come from the environment, not the settings file"
    assert settings.alertmanager.urls


def test_the_image_default_settings_are_the_compose_settings() -> None:
    copies = [shlex.split(a) for i, a in _dockerfile_final_stage() if i == "COPY" and not a.startswith("--from")]
    assert ["deploy/compose/stagewatch.yaml", "/etc/stagewatch/stagewatch.yaml"] in copies


def test_compose_passes_a_required_ingest_token_that_the_settings_pick_up(monkeypatch: pytest.MonkeyPatch) -> None:
    env = _services()["worker"]["environment"]
    value = env["STAGEWATCH_WORKER__INGEST_TOKEN"]
    # `${VAR:?message}`: compose refuses to start without it (an empty token would open POST /events)
    assert re.fullmatch(r"\$\{STAGEWATCH_INGEST_TOKEN:\?[^}$]+\}", value), value
    settings = _settings(COMPOSE_SETTINGS, monkeypatch, {"STAGEWATCH_WORKER__INGEST_TOKEN": "s3cret-token-0123456789"})
    assert settings.worker.ingest_token is not None
    assert settings.worker.ingest_token.get_secret_value() == "s3cret-token-0123456789"
    assert settings.worker.web_port == 6066 and settings.kafka.bootstrap_servers == "kafka:9092"  # the file still counts


def test_k8s_secret_env_names_are_real_settings_fields_and_keys_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    docs = _k8s_docs()
    secret = docs["Secret"]
    env = _worker_container()["env"]
    values = {}
    for item in env:
        ref = item["valueFrom"]["secretKeyRef"]
        assert ref["name"] == secret["metadata"]["name"]
        assert ref["key"] in secret["stringData"], ref["key"]
        assert item["name"].startswith("STAGEWATCH_")
        values[item["name"]] = f"value-of-{ref['key']}"
    settings = _settings(K8S_SETTINGS, monkeypatch, values)
    for name, value in values.items():
        node: Any = settings
        for part in name.removeprefix("STAGEWATCH_").lower().split("__"):
            node = getattr(node, part)
        assert node.get_secret_value() == value, name
    assert {"STAGEWATCH_WORKER__INGEST_TOKEN", "STAGEWATCH_KAFKA__SASL_PASSWORD"} <= set(values)


def test_k8s_secret_placeholders_are_clearly_marked() -> None:
    secret = _k8s_docs()["Secret"]
    assert "data" not in secret, "placeholders are readable stringData"
    for key, value in secret["stringData"].items():
        assert value.startswith("CHANGE-ME"), key


def test_k8s_settings_use_sasl_with_enough_partitions_for_the_replicas(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(K8S_SETTINGS, monkeypatch)
    assert settings.kafka.security_protocol.startswith("SASL_") and settings.kafka.sasl_mechanism
    replicas = _k8s_docs()["Deployment"]["spec"]["replicas"]
    assert replicas == 2
    assert settings.topics.partitions >= replicas, "a worker without a partition idles"


# ---------------------------------------------------------------- names and ports agree


def test_worker_ports_equal_the_settings_web_port(monkeypatch: pytest.MonkeyPatch) -> None:
    port = _settings(COMPOSE_SETTINGS, monkeypatch).worker.web_port
    assert _settings(K8S_SETTINGS, monkeypatch).worker.web_port == port
    final = dict(_dockerfile_final_stage())
    assert int(final["EXPOSE"]) == port
    assert f"'{port}'" in final["HEALTHCHECK"]
    published = [p.split(":") for p in _services()["worker"]["ports"]]
    assert [int(p[-1]) for p in published] == [port] and all(p[0] == "127.0.0.1" for p in published)
    docs = _k8s_docs()
    container = _worker_container()
    (container_port,) = container["ports"]
    assert container_port["containerPort"] == port
    annotations = docs["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == port and annotations["prometheus.io/path"] == "/metrics"
    (service_port,) = docs["Service"]["spec"]["ports"]
    assert service_port["targetPort"] == container_port["name"] and service_port["port"] == port
    for probe in ("startupProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/health", "port": container_port["name"]}, probe
    # never restarted for recovering the partitions it took over (minutes after a failover)
    assert container["livenessProbe"]["httpGet"] == {"path": "/live", "port": container_port["name"]}
    (endpoint,) = docs["ServiceMonitor"]["spec"]["endpoints"]
    assert endpoint["port"] == service_port["name"] and endpoint["path"] == "/metrics"


def _listening_ports(name: str, service: dict[str, Any], web_port: int) -> set[int]:
    if name == "worker":
        return {web_port}
    if name == "kafka":
        return {int(p) for p in re.findall(r"://[^:,]*:(\d+)", service["environment"]["KAFKA_LISTENERS"])}
    return {IMAGE_PORTS[service["image"].split(":")[0]]}


def test_addresses_in_the_compose_configs_are_compose_services_and_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    services = _services()
    settings = _settings(COMPOSE_SETTINGS, monkeypatch)
    prometheus = _yaml(COMPOSE_PROMETHEUS)
    (datasource,) = _yaml(DEPLOY / "compose" / "grafana" / "datasources" / "prometheus.yml")["datasources"]
    addresses = {
        *settings.kafka.bootstrap_servers.split(","),
        *settings.alertmanager.urls,
        *(t for am in prometheus["alerting"]["alertmanagers"] for sc in am["static_configs"] for t in sc["targets"]),
        *(t for job in prometheus["scrape_configs"] if job["job_name"] != "prometheus"
          for sc in job["static_configs"] for t in sc["targets"]),
        datasource["url"],
    }
    assert {"kafka:9092", "worker:6066", "alertmanager:9093", "http://alertmanager:9093",
            "http://prometheus:9090"} <= addresses
    for address in addresses:
        host, port = _host_port(address)
        assert host in services, f"{address}: no compose service {host!r}"
        assert port in _listening_ports(host, services[host], settings.worker.web_port), address
    for name, service in services.items():
        for published in service.get("ports", []):
            bind, _host, container = published.split(":")
            assert bind == "127.0.0.1", f"{name} publishes beyond loopback"
            assert int(container) in _listening_ports(name, service, settings.worker.web_port), published


def test_compose_kafka_is_a_consistent_single_kraft_node() -> None:
    kafka = _services()["kafka"]
    assert kafka["image"] == "apache/kafka:3.9.1"
    env = kafka["environment"]
    listeners = dict(re.findall(r"(\w+)://[^:,]*:(\d+)", env["KAFKA_LISTENERS"]))
    protocols = dict(item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert set(listeners) == set(protocols)
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    voter_id, voter = env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split("@")
    assert int(voter_id) == env["KAFKA_NODE_ID"]
    assert voter == f"kafka:{listeners[env['KAFKA_CONTROLLER_LISTENER_NAMES']]}"
    advertised = dict(re.findall(r"(\w+)://([^,]+)", env["KAFKA_ADVERTISED_LISTENERS"]))
    assert advertised[env["KAFKA_INTER_BROKER_LISTENER_NAME"]] == "kafka:9092"
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] not in advertised
    for name, address in advertised.items():
        assert _host_port(address)[1] == int(listeners[name])
    assert len(base64.urlsafe_b64decode(env["CLUSTER_ID"] + "==")) == 16, "CLUSTER_ID is a base64 UUID"
    assert f"kafka-data:{env['KAFKA_LOG_DIRS']}" in kafka["volumes"]
    assert _services()["worker"]["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_compose_prometheus_loads_the_repo_rules_and_scrapes_the_worker_job() -> None:
    prometheus = _services()["prometheus"]
    mounts = _mounts(prometheus)
    assert mounts["./compose/prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    (rule_glob,) = _yaml(COMPOSE_PROMETHEUS)["rule_files"]
    assert Path(rule_glob).parent == Path(mounts["./prometheus/rules"])
    assert list((DEPLOY / "prometheus" / "rules").glob(Path(rule_glob).name))
    jobs = [j["job_name"] for j in _yaml(COMPOSE_PROMETHEUS)["scrape_configs"]]
    rules = (DEPLOY / "prometheus" / "rules" / "stagewatch-alerts.yml").read_text()
    selector = re.search(r'up\{job=~"([^"]+)"\}', rules)
    assert selector and any(re.fullmatch(selector.group(1), j) for j in jobs)
    # the ServiceMonitor's job label is the Service name: the same rules must select it
    assert re.fullmatch(selector.group(1), _k8s_docs()["Service"]["metadata"]["name"])
    am = _services()["alertmanager"]
    assert "./alertmanager/alertmanager.yml:/etc/alertmanager/alertmanager.yml:ro" in am["volumes"]


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_promtool_accepts_the_compose_prometheus_config() -> None:
    run = subprocess.run(["promtool", "check", "config", str(COMPOSE_PROMETHEUS)],
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stdout + run.stderr


def test_compose_grafana_mounts_the_dashboards_where_the_provider_reads_them() -> None:
    grafana = _services()["grafana"]
    mounts = _mounts(grafana)
    (provider,) = _yaml(ROOT / "grafana" / "provisioning" / "dashboards" / "stagewatch.yml")["providers"]
    assert mounts["../grafana/dashboards"] == provider["options"]["path"]
    assert list((ROOT / "grafana" / "dashboards").glob("*.json"))
    assert mounts["../grafana/provisioning/dashboards"] == "/etc/grafana/provisioning/dashboards"
    assert mounts["./compose/grafana/datasources"] == "/etc/grafana/provisioning/datasources"
    (repo_ds,) = _yaml(ROOT / "grafana" / "provisioning" / "datasources" / "prometheus.yml")["datasources"]
    (compose_ds,) = _yaml(DEPLOY / "compose" / "grafana" / "datasources" / "prometheus.yml")["datasources"]
    assert {k: v for k, v in compose_ds.items() if k != "url"} == {k: v for k, v in repo_ds.items() if k != "url"}


# ---------------------------------------------------------------- Kubernetes objects fit together


def test_k8s_selectors_match_the_worker_pods_and_the_pod_is_locked_down(monkeypatch: pytest.MonkeyPatch) -> None:
    docs = _k8s_docs()
    pod = docs["Deployment"]["spec"]["template"]
    labels = pod["metadata"]["labels"]

    def selects(selector: dict[str, str]) -> bool:
        return selector.items() <= labels.items()

    assert selects(docs["Deployment"]["spec"]["selector"]["matchLabels"])
    assert selects(docs["Service"]["spec"]["selector"])
    assert selects(docs["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"])
    assert docs["ServiceMonitor"]["apiVersion"] == "monitoring.coreos.com/v1"
    assert docs["ServiceMonitor"]["spec"]["selector"]["matchLabels"].items() <= docs["Service"]["metadata"]["labels"].items()
    assert docs["PodDisruptionBudget"]["spec"]["minAvailable"] < docs["Deployment"]["spec"]["replicas"]
    pod_sc = pod["spec"]["securityContext"]
    sc = _worker_container()["securityContext"]
    assert pod_sc["runAsNonRoot"] and pod_sc["runAsUser"] != 0
    assert sc["readOnlyRootFilesystem"] and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    # with a read-only root, every path the worker writes is a volume
    writable = {m["mountPath"] for m in _worker_container()["volumeMounts"] if not m.get("readOnly")}
    assert {str(_settings(K8S_SETTINGS, monkeypatch).worker.data_dir), "/tmp"} <= writable
    resources = _worker_container()["resources"]
    assert set(resources) == {"requests", "limits"} and resources["limits"]["cpu"] == "1"
    assert docs["Namespace"]["metadata"]["name"] == _yaml(K8S / "kustomization.yaml")["namespace"]


def test_compose_worker_writes_only_to_its_volume(monkeypatch: pytest.MonkeyPatch) -> None:
    worker = _services()["worker"]
    assert worker["read_only"] is True and "/tmp" in worker["tmpfs"]
    targets = {v.split(":")[1] for v in worker["volumes"] if not v.endswith(":ro")}
    assert str(_settings(COMPOSE_SETTINGS, monkeypatch).worker.data_dir) in targets


def _kustomize() -> list[str] | None:
    if shutil.which("kustomize"):
        return ["kustomize", "build", str(K8S)]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize", str(K8S)]
    return None


@pytest.mark.skipif(_kustomize() is None, reason="neither kustomize nor kubectl is installed")
def test_kustomize_builds_and_the_generated_configmap_is_the_one_mounted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    command = _kustomize()
    assert command is not None
    run = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    docs = {d["kind"]: d for d in yaml.safe_load_all(run.stdout)}
    assert set(docs) == {"Namespace", "ConfigMap", "Secret", "Service", "Deployment", "ServiceMonitor",
                         "PodDisruptionBudget"}
    assert all(d["metadata"].get("namespace") == "stagewatch" for k, d in docs.items() if k != "Namespace")
    configmap = docs["ConfigMap"]
    mounted = docs["Deployment"]["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"]
    assert mounted == configmap["metadata"]["name"] != "stagewatch-config"  # hashed: edits roll the pods
    settings_file = tmp_path / "stagewatch.yaml"
    settings_file.write_text(configmap["data"]["stagewatch.yaml"])
    assert _settings(settings_file, monkeypatch) == _settings(K8S_SETTINGS, monkeypatch)
