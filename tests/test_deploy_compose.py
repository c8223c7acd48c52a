"""deploy/compose.yaml and what it mounts: it parses, every file it or the Prometheus
and Grafana provisioning files name exists, and the services find each other.

Paths inside containers are mapped back to the repository through the services'
bind mounts, so "exists" means: exists where the container will look for it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest

from hlrd.config import SmppProviderConfig, load_config

from .deploy_files import DASHBOARD, DEPLOY, RULE_FILES, load_yaml
from .deploy_tools import tool
from .test_container_image import CONTAINER_CONFIG, SECRETS

COMPOSE = DEPLOY / "compose.yaml"
PROMETHEUS_PORT = 9090  # Prometheus' default --web.listen-address


def compose() -> dict[str, Any]:
    data: dict[str, Any] = load_yaml(COMPOSE)
    return data


def service(name: str) -> dict[str, Any]:
    found: dict[str, Any] = compose()["services"][name]
    return found


def mounts(svc: dict[str, Any]) -> list[tuple[Path, PurePosixPath]]:
    """Bind mounts of a service as (path in the repository, path in the container)."""
    found = []
    for volume in svc.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith((".", "/")):
            found.append(((COMPOSE.parent / source).resolve(), PurePosixPath(target)))
    return found


def in_repo(svc: dict[str, Any], container_path: str) -> Path:
    """Where a path inside the service's container comes from in the repository."""
    path = PurePosixPath(container_path)
    best = max(
        (m for m in mounts(svc) if path == m[1] or m[1] in path.parents),
        key=lambda m: len(m[1].parts),
        default=None,
    )
    assert best is not None, f"{container_path} is not mounted from the repository"
    return best[0].joinpath(*path.parts[len(best[1].parts) :])


def flag(command: list[str], name: str) -> str:
    """`--name=value` or `--name value` from a command list."""
    for i, word in enumerate(command):
        if word.startswith(f"{name}="):
            return word.split("=", 1)[1]
        if word == name:
            return command[i + 1]
    raise AssertionError(f"{name} not in {command}")


def test_compose_runs_hlrd_the_simulator_prometheus_and_grafana() -> None:
    services = compose()["services"]
    assert {"hlrd", "simulator", "prometheus", "grafana"} <= services.keys()
    for name, svc in services.items():
        assert "image" in svc or "build" in svc, name


def test_every_bind_mount_and_build_context_exists() -> None:
    for name, svc in compose()["services"].items():
        for source, _ in mounts(svc):
            assert source.exists(), f"{name}: mounts {source}, which does not exist"
        if "build" in svc:
            context = (COMPOSE.parent / svc["build"]["context"]).resolve()
            assert (context / svc["build"].get("dockerfile", "Dockerfile")).is_file(), name


def test_hlrd_reaches_the_simulator_by_its_service_name() -> None:
    hlrd = service("hlrd")
    config = load_config(in_repo(hlrd, "/etc/hlrd/hlrd.toml"), env=SECRETS)
    assert in_repo(hlrd, "/etc/hlrd/hlrd.toml") == CONTAINER_CONFIG
    upstream = config.providers[0]
    assert isinstance(upstream, SmppProviderConfig)
    sim = service(upstream.host)
    command = sim["command"]
    assert command[0] == "hlrd-sim"
    assert flag(command, "--host") == "0.0.0.0"
    assert int(flag(command, "--smpp-port")) == upstream.port
    assert in_repo(sim, flag(command, "--scenario")).is_file()
    published = {p.rsplit(":", 1)[-1] for p in hlrd["ports"]}
    assert published == {str(config.http.port), str(config.smpp_server.port)}
    needed = {"HLRD_TOKENS", "HLRD_UPSTREAM_PASSWORD", "HLRD_CC_PASSWORD"}
    assert needed <= hlrd["environment"].keys(), "container.toml's *_env secrets"


def test_prometheus_config_passes_promtool_and_loads_every_rule_file() -> None:
    prom = service("prometheus")
    config = in_repo(prom, flag(prom["command"], "--config.file"))
    done = subprocess.run(
        [tool("promtool"), "check", "config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    patterns = load_yaml(config)["rule_files"]
    loaded = {p.resolve() for pattern in patterns for p in config.parent.glob(pattern)}
    assert loaded == {p.resolve() for p in RULE_FILES}


def test_prometheus_scrapes_hlrd_as_the_job_the_rules_expect() -> None:
    prom = service("prometheus")
    config = load_yaml(in_repo(prom, flag(prom["command"], "--config.file")))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    targets = [t for sc in jobs["hlrd"]["static_configs"] for t in sc["targets"]]
    http_port = load_config(CONTAINER_CONFIG, env=SECRETS).http.port
    assert targets == [f"hlrd:{http_port}"]
    assert jobs["hlrd"].get("metrics_path", "/metrics") == "/metrics"


def _grafana_files(kind: str) -> list[dict[str, Any]]:
    grafana = service("grafana")
    folder = in_repo(grafana, f"/etc/grafana/provisioning/{kind}")
    files = sorted(folder.glob("*.yml")) + sorted(folder.glob("*.yaml"))
    assert files, f"no {kind} provisioning files in {folder}"
    return [load_yaml(f) for f in files]


def test_grafana_datasource_is_the_compose_prometheus() -> None:
    sources = [d for f in _grafana_files("datasources") for d in f["datasources"]]
    assert [d["isDefault"] for d in sources].count(True) == 1
    default = next(d for d in sources if d["isDefault"])
    assert default["type"] == "prometheus"
    url = urlsplit(default["url"])
    assert url.hostname in compose()["services"] and url.hostname == "prometheus"
    assert url.port == PROMETHEUS_PORT


def test_grafana_provisions_the_dashboard() -> None:
    grafana = service("grafana")
    providers = [p for f in _grafana_files("dashboards") for p in f["providers"]]
    folders = {in_repo(grafana, p["options"]["path"]) for p in providers if p["type"] == "file"}
    assert DASHBOARD.parent in folders
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert in_repo(grafana, home) == DASHBOARD


def test_a_path_that_is_not_mounted_is_not_taken_for_a_repository_file() -> None:
    with pytest.raises(AssertionError, match="not mounted"):
        in_repo(service("hlrd"), "/etc/hlrd/scenarios/demo.toml")
