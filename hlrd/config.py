"""Configuration: one TOML file read once into frozen, typed objects.

Every error names the key it is about (`upstream.providers[0].window: must be
1..1024`), so an operator fixes the file without reading code. Secrets may stay out
of the file: `password_env = "NAME"` reads the environment variable NAME, here and
nowhere else (no other module reads the environment).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .domain.countries import BY_ISO
from .domain.decision import Policy
from .domain.result import Zone


class ConfigError(ValueError):
    """The message starts with the dotted key at fault."""


@dataclass(frozen=True, slots=True)
class SmppProviderConfig:
    name: str
    host: str = "127.0.0.1"
    port: int = 2775
    system_id: str = "hlrd"
    password: str = ""
    system_type: str = ""
    bind_mode: str = "transceiver"  # or "tx_rx": a transmitter and a receiver per bind
    binds: int = 1
    window: int = 64
    tps: int = 100
    source_addr: str = "hlrd"
    request_timeout_s: float = 5.0  # submit_sm -> submit_sm_resp
    result_timeout_s: float = 10.0  # submit -> receipt
    enquire_link_s: float = 30.0
    keepalive_timeout_s: float = 10.0
    connect_timeout_s: float = 5.0
    reconnect_min_s: float = 0.2
    reconnect_max_s: float = 30.0
    max_attempts: int = 3
    message_id_match: str = "auto"  # "exact": receipts carry the id as submit_sm_resp did
    type: str = "smpp"


@dataclass(frozen=True, slots=True)
class HttpConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    auth_tokens: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class NumbersConfig:
    default_region: str = "PL"
    mobile_only: bool = True


@dataclass(frozen=True, slots=True)
class LookupConfig:
    timeout_s: float = 15.0  # whole lookup, all providers and retries
    max_queue: int = 10_000  # lookups waiting for a rate slot, per provider
    return_imsi: bool = False
    shutdown_grace_s: float = 5.0


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    format: str = "auto"
    level: str = "INFO"


@dataclass(frozen=True, slots=True)
class Config:
    providers: tuple[SmppProviderConfig, ...]
    http: HttpConfig = field(default_factory=HttpConfig)
    numbers: NumbersConfig = field(default_factory=NumbersConfig)
    lookup: LookupConfig = field(default_factory=LookupConfig)
    policy: Policy = field(default_factory=Policy)
    logging: LoggingConfig = field(default_factory=LoggingConfig)


# -- validation helpers --------------------------------------------------------------


class _Table:
    """A TOML table being read: typed getters that name the key on error."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: must be a table")
        self.data: dict[str, Any] = data
        self.where = where
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name

    def get(self, name: str, default: Any) -> Any:
        self.used.add(name)
        return self.data.get(name, default)

    def get_int(self, name: str, default: int, lo: int, hi: int) -> int:
        v = self.get(name, default)
        if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
            raise ConfigError(f"{self.key(name)}: must be {lo}..{hi}")
        return v

    def get_float(self, name: str, default: float, lo: float, hi: float) -> float:
        v = self.get(name, default)
        if not isinstance(v, int | float) or isinstance(v, bool) or not lo <= v <= hi:
            raise ConfigError(f"{self.key(name)}: must be a number in {lo}..{hi}")
        return float(v)

    def get_bool(self, name: str, default: bool) -> bool:
        v = self.get(name, default)
        if not isinstance(v, bool):
            raise ConfigError(f"{self.key(name)}: must be true or false")
        return v

    def get_str(
        self, name: str, default: str, choices: tuple[str, ...] = (), max_len: int = 0
    ) -> str:
        v = self.get(name, default)
        if not isinstance(v, str):
            raise ConfigError(f"{self.key(name)}: must be a string")
        if choices and v not in choices:
            raise ConfigError(f"{self.key(name)}: must be one of {', '.join(choices)}")
        if max_len and len(v) > max_len:
            raise ConfigError(f"{self.key(name)}: at most {max_len} characters")
        return v

    def get_strs(self, name: str) -> tuple[str, ...]:
        v = self.get(name, [])
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise ConfigError(f"{self.key(name)}: must be a list of strings")
        return tuple(v)

    def get_secret(self, name: str, env: Mapping[str, str], max_len: int = 0) -> str:
        """`name = "..."` or `name_env = "VAR"` (read from the environment)."""
        var = self.get(f"{name}_env", None)
        if var is not None:
            if not isinstance(var, str) or var not in env:
                raise ConfigError(
                    f"{self.key(name + '_env')}: environment variable {var!r} is not set"
                )
            value = env[var]
            if max_len and len(value) > max_len:
                raise ConfigError(f"{self.key(name + '_env')}: at most {max_len} characters")
            return value
        return self.get_str(name, "", max_len=max_len)

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise ConfigError(f"{self.key(unknown[0])}: unknown key")


def _provider(raw: Any, i: int, env: Mapping[str, str]) -> SmppProviderConfig:
    t = _Table(raw, f"upstream.providers[{i}]")
    kind = t.get_str("type", "smpp", choices=("smpp",))
    name = t.get_str("name", f"provider{i}", max_len=40)
    cfg = SmppProviderConfig(
        name=name,
        type=kind,
        host=t.get_str("host", "127.0.0.1"),
        port=t.get_int("port", 2775, 1, 65535),
        system_id=t.get_str("system_id", "hlrd", max_len=15),
        password=t.get_secret("password", env, max_len=8),
        system_type=t.get_str("system_type", "", max_len=12),
        bind_mode=t.get_str("bind_mode", "transceiver", choices=("transceiver", "tx_rx")),
        binds=t.get_int("binds", 1, 1, 64),
        window=t.get_int("window", 64, 1, 1024),
        tps=t.get_int("tps", 100, 1, 100_000),
        source_addr=t.get_str("source_addr", "hlrd", max_len=20),
        request_timeout_s=t.get_float("request_timeout_s", 5.0, 0.01, 300),
        result_timeout_s=t.get_float("result_timeout_s", 10.0, 0.01, 3600),
        enquire_link_s=t.get_float("enquire_link_s", 30.0, 0.01, 3600),
        keepalive_timeout_s=t.get_float("keepalive_timeout_s", 10.0, 0.01, 300),
        connect_timeout_s=t.get_float("connect_timeout_s", 5.0, 0.01, 300),
        reconnect_min_s=t.get_float("reconnect_min_s", 0.2, 0.0, 300),
        reconnect_max_s=t.get_float("reconnect_max_s", 30.0, 0.0, 3600),
        max_attempts=t.get_int("max_attempts", 3, 1, 10),
        message_id_match=t.get_str("message_id_match", "auto", choices=("auto", "exact")),
    )
    t.done()
    return cfg


def _policy(t: _Table) -> Policy:
    zones = t.get_strs("block_zones") if "block_zones" in t.data else ("NON_EEA",)
    valid = {z.value for z in Zone}
    for z in zones:
        if z not in valid:
            raise ConfigError(f"{t.key('block_zones')}: {z!r} is not one of {sorted(valid)}")
    countries = {}
    for key in ("block_countries", "allow_countries"):
        values = t.get_strs(key)
        for c in values:
            if len(c) != 2 or not c.isupper():
                raise ConfigError(f"{t.key(key)}: {c!r} is not an ISO 3166 alpha-2 code")
        countries[key] = frozenset(values)
    policy = Policy(
        block_zones=frozenset(Zone(z) for z in zones),
        block_countries=countries["block_countries"],
        allow_countries=countries["allow_countries"],
        block_absent=t.get_bool("block_absent", True),
        block_invalid=t.get_bool("block_invalid", True),
        block_restricted=t.get_bool("block_restricted", False),
        fail_closed=t.get_bool("fail_closed", True),
    )
    t.done()
    return policy


def parse_config(data: dict[str, Any], env: Mapping[str, str] | None = None) -> Config:
    env = os.environ if env is None else env
    top = _Table(data, "")
    upstream = _Table(top.get("upstream", {}), "upstream")
    raw_providers = upstream.get("providers", [])
    upstream.done()
    if not isinstance(raw_providers, list) or not raw_providers:
        raise ConfigError("upstream.providers: at least one provider ([[upstream.providers]])")
    providers = tuple(_provider(p, i, env) for i, p in enumerate(raw_providers))
    names = [p.name for p in providers]
    if len(set(names)) != len(names):
        raise ConfigError("upstream.providers: names must be unique")

    h = _Table(top.get("http", {}), "http")
    tokens = h.get_strs("auth_tokens")
    if "auth_tokens_env" in h.data:
        var = h.get("auth_tokens_env", "")
        if var not in env:
            raise ConfigError(f"http.auth_tokens_env: environment variable {var!r} is not set")
        tokens += tuple(x.strip() for x in env[var].split(",") if x.strip())
    http = HttpConfig(
        host=h.get_str("host", "127.0.0.1"),
        port=h.get_int("port", 8080, 0, 65535),
        auth_tokens=tokens,
    )
    h.done()

    n = _Table(top.get("numbers", {}), "numbers")
    region = n.get_str("default_region", "PL")
    if region not in BY_ISO and not (len(region) == 2 and region.isupper()):
        raise ConfigError("numbers.default_region: must be an ISO 3166 alpha-2 code")
    numbers = NumbersConfig(default_region=region, mobile_only=n.get_bool("mobile_only", True))
    n.done()

    lk = _Table(top.get("lookup", {}), "lookup")
    lookup = LookupConfig(
        timeout_s=lk.get_float("timeout_s", 15.0, 0.01, 3600),
        max_queue=lk.get_int("max_queue", 10_000, 1, 10_000_000),
        return_imsi=lk.get_bool("return_imsi", False),
        shutdown_grace_s=lk.get_float("shutdown_grace_s", 5.0, 0.0, 600),
    )
    lk.done()

    policy = _policy(_Table(top.get("policy", {}), "policy"))

    lg = _Table(top.get("logging", {}), "logging")
    logging = LoggingConfig(
        format=lg.get_str("format", "auto", choices=("auto", "json", "console")),
        level=lg.get_str("level", "INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR")),
    )
    lg.done()
    top.done()
    return Config(providers, http, numbers, lookup, policy, logging)


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> Config:
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError(f"{p}: {exc.strerror}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: {exc}") from exc
    return parse_config(data, env)
