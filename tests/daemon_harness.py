"""A daemon wired to an in-process simulator, both on 127.0.0.1 ports picked by the OS."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from hlrd.compliance.list_formats import ReadOptions
from hlrd.compliance.list_key import ListKeyer
from hlrd.compliance.lists import ListFiles
from hlrd.config import parse_config
from hlrd.daemon import Daemon
from hlrd.store.keys import load_key
from simulator.controller import Simulator

from .data_dirs import DATA_ENV

BASE_CONFIG: dict[str, Any] = {
    "http": {"host": "127.0.0.1", "port": 0},
    "lookup": {"timeout_s": 10, "shutdown_grace_s": 0.2},
    "logging": {"format": "json", "level": "WARNING"},
    "upstream": {
        "providers": [
            {
                "name": "sim",
                "host": "127.0.0.1",
                "system_id": "hlrd",
                "password": "secret",
                "binds": 2,
                "window": 32,
                "tps": 1000,
                "result_timeout_s": 5,
                "reconnect_min_s": 0.01,
                "reconnect_max_s": 0.05,
            }
        ]
    },
}


ACCOUNT: dict[str, Any] = {
    "system_id": "cc",
    "password": "ccpass",
    "window": 50,
    "tps": 1000,
    "max_binds": 3,
}

SMPP_SERVER: dict[str, Any] = {
    "enabled": True,
    "host": "127.0.0.1",
    "port": 0,
    "receipt_retry_s": 0.05,
    "accounts": [ACCOUNT],
}


def with_account(**changes: Any) -> dict[str, Any]:
    """An smpp_server section whose one account has `changes` applied."""
    server = copy.deepcopy(SMPP_SERVER)
    server["accounts"][0].update(changes)
    return server


def config_for(sim: Simulator, **sections: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(BASE_CONFIG)
    data["upstream"]["providers"][0]["port"] = sim.smpp_port
    provider = sections.pop("provider", {})
    data["upstream"]["providers"][0].update(provider)
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return data


@asynccontextmanager
async def running_daemon(
    sim: Simulator, **sections: dict[str, Any]
) -> AsyncIterator[tuple[Daemon, aiohttp.ClientSession]]:
    async with daemon_of(config_for(sim, **sections)) as running:
        yield running


@asynccontextmanager
async def daemon_of(data: dict[str, Any]) -> AsyncIterator[tuple[Daemon, aiohttp.ClientSession]]:
    """A daemon of this configuration (a dict as TOML gives), and a client session to it."""
    daemon = Daemon(parse_config(data, env=DATA_ENV()))
    await daemon.start()
    try:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{daemon.http_port}") as http:
            yield daemon, http
    finally:
        await daemon.stop()


def import_list(data: dict[str, Any], directory: Path, name: str, *numbers: str) -> None:
    """A do-not-call list of these numbers (E.164 digits), imported as `hlrd lists
    import` would into the data directory and under the key the daemon of `data` uses."""
    cfg = parse_config(data, env=DATA_ENV())
    files = ListFiles(Path(cfg.store.data_dir) / "lists", ListKeyer(load_key(cfg.store)))
    path = directory / f"{name}.txt"
    path.write_text("".join(f"+{n}\n" for n in numbers))
    files.import_file(name, path, ReadOptions("lines"))
