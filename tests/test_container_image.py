"""The image: its config passes `hlrd config check`, its build context holds what it
copies, and its HEALTHCHECK command works against a running daemon.

There is no Docker engine here; what the image does is checked through the files
Docker reads and by running the healthcheck's own command.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import subprocess
import sys

from hlrd.config import Config, load_config
from simulator.controller import Simulator

from .container_files import (
    ROOT,
    DockerIgnore,
    copies,
    dockerignore,
    healthcheck,
    instructions,
    one,
    words,
)
from .daemon_harness import running_daemon

CONTAINER_CONFIG = ROOT / "config" / "container.toml"
# The secrets container.toml reads from the environment, as compose.yaml sets them.
SECRETS = {
    "HLRD_TOKENS": "t0ken",
    "HLRD_UPSTREAM_PASSWORD": "secret",
    "HLRD_CC_PASSWORD": "cc-pass",
}
CHECK_TIMEOUT_S = 30.0


def container_config() -> Config:
    return load_config(CONTAINER_CONFIG, env=SECRETS)


def hlrd_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in SECRETS}
    return subprocess.run(
        [sys.executable, "-m", "hlrd", *args],
        capture_output=True,
        text=True,
        timeout=CHECK_TIMEOUT_S,
        env=clean | env,
        cwd=ROOT,
    )


def test_container_config_passes_hlrd_config_check() -> None:
    done = hlrd_cli("config", "check", str(CONTAINER_CONFIG), env=SECRETS)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith(": ok")


def test_container_config_names_a_secret_left_unset() -> None:
    done = hlrd_cli("config", "check", str(CONTAINER_CONFIG), env={})
    assert done.returncode == 2
    assert re.search(r"environment variable '(HLRD_\w+)' is not set", done.stderr), done.stderr


def test_container_config_listens_beyond_the_container_on_the_exposed_ports() -> None:
    cfg = container_config()
    exposed = {int(p.split("/")[0]) for p in words(one(instructions(), "EXPOSE"))}
    assert (cfg.http.host, cfg.smpp_server.host) == ("0.0.0.0", "0.0.0.0")
    assert cfg.smpp_server.enabled
    assert exposed == {cfg.http.port, cfg.smpp_server.port}
    assert cfg.http.auth_tokens == ("t0ken",), "/v1 must need a token from HLRD_TOKENS"


def test_container_account_admits_container_networks_only() -> None:
    cfg = container_config()
    nets = [ipaddress.ip_network(n) for a in cfg.smpp_server.accounts for n in a.allowed_ips]

    def admitted(ip: str) -> bool:
        return any(ipaddress.ip_address(ip) in net for net in nets)

    # docker0's gateway, a compose network's peer, a LAN platform; not the Internet
    assert all(map(admitted, ["172.17.0.1", "172.18.0.5", "10.1.2.3", "192.168.1.20"]))
    assert not any(map(admitted, ["8.8.8.8", "100.64.0.1"]))


def test_the_image_runs_its_config_as_a_non_root_user() -> None:
    found = instructions()
    cmd = words(one(found, "CMD"))
    config_path = cmd[cmd.index("--config") + 1]
    assert ["config/container.toml"] in [src for src, dest in copies(found) if dest == config_path]
    user = one(found, "USER").split(":")[0]
    assert user not in ("root", "0")
    assert "/var/lib/hlrd" in words(one(found, "VOLUME"))
    assert not [i for i in found if i.keyword == "RUN" and "sed " in i.args], "edit config files"


def test_dockerfile_copies_only_paths_in_the_build_context() -> None:
    ignore = dockerignore()
    sources = [s for srcs, _ in copies(instructions()) for s in srcs]
    assert sources
    for source in sources:
        path = ROOT / source
        assert path.exists(), f"COPY {source}: no such path"
        assert not ignore.excluded(source), f"COPY {source}: excluded by .dockerignore"
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        for f in files:
            rel = f.relative_to(ROOT).as_posix()
            if "__pycache__" not in rel:
                assert not ignore.excluded(rel), f"{rel}: excluded by .dockerignore"


def test_dockerignore_keeps_the_clutter_out() -> None:
    ignore = dockerignore()
    for path in [".git/HEAD", ".venv/bin/python", "hlrd/__pycache__/cli.cpython-311.pyc"]:
        assert ignore.excluded(path), path


def test_dockerignore_reads_patterns_as_docker_does() -> None:
    ignore = DockerIgnore("# c\n**/__pycache__\n/build\nconf/*.toml\n!conf/keep.toml\n")
    assert ignore.excluded("__pycache__/x.pyc") and ignore.excluded("a/b/__pycache__/x.pyc")
    assert ignore.excluded("build/lib/x.py") and not ignore.excluded("src/build.py")
    assert ignore.excluded("conf/a.toml") and not ignore.excluded("conf/keep.toml")
    assert not ignore.excluded("conf/sub/a.toml")


async def _run(command: list[str]) -> int:
    proc = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    return await asyncio.wait_for(proc.wait(), CHECK_TIMEOUT_S)


def _healthcheck_for(port: int) -> list[str]:
    """The Dockerfile's HEALTHCHECK command, pointed at `port`, run by this Python."""
    _, command = healthcheck(instructions())
    assert command[0] == "python", "the slim image has python, not curl"
    cfg = container_config()
    assert command[2].count(f"127.0.0.1:{cfg.http.port}/") == 1, command
    return [sys.executable, *command[1:2], command[2].replace(f":{cfg.http.port}/", f":{port}/")]


async def test_healthcheck_passes_against_a_running_daemon(sim: Simulator) -> None:
    async with running_daemon(sim) as (daemon, _):
        assert await _run(_healthcheck_for(daemon.http_port)) == 0


async def test_healthcheck_fails_when_nothing_answers(unused_tcp_port: int) -> None:
    assert await _run(_healthcheck_for(unused_tcp_port)) == 1


def test_healthcheck_gives_up_before_docker_does() -> None:
    options, command = healthcheck(instructions())
    timeout = re.search(r"timeout=(\d+)", command[2])
    assert timeout and "timeout" in options
    assert int(timeout[1]) < int(options["timeout"].removesuffix("s"))
