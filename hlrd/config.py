"""Configuration: one TOML file read once into frozen, typed objects.

Every error names the key it is about (`upstream.providers[0].window: must be
1..1024`), so an operator fixes the file without reading code. Secrets may stay out
of the file: `password_env = "NAME"` reads the environment variable NAME, here and
nowhere else (no other module reads the environment).
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

import phonenumbers

from .compliance.calling_hours import HoursRules, parse_hours
from .compliance.policy import CHANNELS, DEFAULT, CallPolicy
from .domain.decision import Policy
from .domain.result import Zone
from .upstream.http.json_mapping import JsonMapping
from .upstream.http.json_mapping import parse_mapping as parse_json_mapping
from .upstream.receipt_mapping import PRESETS, ReceiptMapping, parse_mapping


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
    # "auto": exact, else hex<->decimal when the receipt's address agrees; "exact";
    # "hex_decimal": the provider is known to switch bases (trusts address-less receipts)
    message_id_match: str = "auto"
    # A receipt that arrives before its submit_sm_resp waits this long for it, and
    # never longer than the link it came on: a provider that restarts reuses ids.
    early_receipt_ttl_s: float = 2.0
    # How its receipts carry the HLR's answer: "hlrd" (the simulator's), a gateway's
    # preset ("restcomm_sri") or "custom" with receipt_mapping (upstream/receipt_mapping.py).
    receipt_dialect: str = "hlrd"
    receipt_mapping: ReceiptMapping | None = None
    price: float = 0.0  # what the provider charges per answered lookup, for cost metrics
    currency: str = "EUR"
    type: str = "smpp"


# HTTP vendor adapters (hlrd/upstream/http/<type>.py) and where each answers.
HTTP_PROVIDER_TYPES = ("hlr_lookups", "infobip", "tyntec", "camara", "vonage", "generic_json")


@dataclass(frozen=True, slots=True)
class HttpProviderConfig:
    """A provider reached over HTTPS: a vendor's API (`type` names the adapter)."""

    name: str
    type: str
    base_url: str
    api_key: str = ""
    api_secret: str = ""
    tps: int = 50
    pool_size: int = 16  # connections kept open to the vendor, at most
    connect_timeout_s: float = 3.0
    request_timeout_s: float = 10.0  # one HTTP request, retries not included
    max_attempts: int = 3  # in all, for 429, 5xx and lost connections only
    price: float = 0.0
    currency: str = "EUR"
    # OAuth2 client credentials (CAMARA): the token endpoint (absolute URL; empty: the
    # adapter's default below base_url) and the scope asked for; api_key/api_secret
    # are the client id and secret.
    token_url: str = ""
    scope: str = ""
    # A private key in PEM (Vonage signs its JWTs with the application's key);
    # api_key is then the application id.
    private_key: str = ""
    # Batching vendors (Infobip): numbers per request, and how long a batch waits to
    # fill (the first lookup of a batch waits at most this).
    batch_size: int = 1000
    batch_wait_s: float = 0.005
    # Vonage: the purpose the application was approved for (empty: the Playground's)
    purpose: str = ""
    # generic_json: what to send and where the answer's fields are (docs/vendors/generic-json.md)
    mapping: JsonMapping | None = None


ProviderConfig = SmppProviderConfig | HttpProviderConfig


@dataclass(frozen=True, slots=True)
class SmppAccount:
    """A call-center platform allowed to bind to hlrd's SMPP front end."""

    system_id: str
    password: str
    allowed_ips: tuple[str, ...] = ()  # networks (CIDR) a bind may come from; empty = any
    window: int = 100  # lookups in flight per account; beyond it ESME_RMSGQFUL
    tps: int = 100  # submits per second per account; beyond it ESME_RTHROTTLED
    max_binds: int = 4
    receipt_format: str = "both"  # "text" | "tlv" | "both"
    return_imsi: bool = False  # IMSI in receipts (also needs lookup.return_imsi)
    reject_invalid: bool = False  # ESME_RINVDSTADR on submit instead of a failure receipt
    max_age_s: float | None = None  # oldest cached answer this platform accepts
    policy: str = "default"  # the call policy its receipts' decisions follow


@dataclass(frozen=True, slots=True)
class SmppServerConfig:
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 2776
    tls_cert: str = ""
    tls_key: str = ""
    inactivity_timeout_s: float = 300.0
    receipt_ttl_s: float = 3600.0
    receipt_retry_s: float = 5.0
    max_pending_receipts: int = 10_000  # per account: beyond it submits get ESME_RMSGQFUL
    bind_timeout_s: float = 10.0  # a new connection must bind within this
    max_connections: int = 200  # client connections in total (bound or not)
    max_connections_per_ip: int = 20
    max_errors_before_bind: int = 3  # bad PDUs an unbound connection may send, then closed
    max_errors_per_minute: int = 60  # bad PDUs a bound connection may send per minute
    max_bind_failures: int = 5  # failed binds from one address within the window ...
    bind_failure_window_s: float = 60.0  # ... before its binds are refused for the window
    accounts: tuple[SmppAccount, ...] = ()


@dataclass(frozen=True, slots=True)
class HttpConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    auth_tokens: tuple[str, ...] = ()
    max_connections: int = 1000  # client connections in total
    max_connections_per_ip: int = 200
    header_timeout_s: float = 10.0  # a request's head must arrive within this
    idle_timeout_s: float = 30.0  # a keep-alive connection idle this long is closed
    max_age_s: float | None = None  # oldest cached answer served over HTTP by default


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
    # With no provider bound, a lookup waits this long for a bind, then fails at once
    # ("no upstream provider is bound") instead of waiting out the result timeout.
    bind_wait_s: float = 0.5


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    format: str = "auto"
    level: str = "INFO"
    max_line_bytes: int = 2048  # longer lines are cut (a value can never flood the log)


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    """Process-wide: descriptors kept back for upstream binds, the store and files."""

    fd_reserve: int = 128


# Kinds of answer, each kept for its own time. Why these defaults:
#  connected  2 h  at home and reachable; a subscriber can board a plane any time, and a
#                  call to a roamer is the harm hlrd exists to prevent, so hours, not days
#  roaming    4 h  abroad: trips last days, and a stale "roaming" only delays a call
#  absent    10 m  phones come back on (night, flight mode, no coverage)
#  invalid    3 d  unknown/unassigned numbers stay so for days (until reassigned)
#  restricted 1 d  barring and missing services change when a contract does
#  unknown   15 m  the HLR answered but not enough to tell
#  failed    30 s  a provider error: brief, so a dialer hammering a dead number does not
#  timeout   60 s  hammer the provider, and a provider that recovers is asked again soon
#  throttled  5 s  the provider asked us to slow down
CACHE_KINDS = (
    "connected", "roaming", "absent", "invalid", "restricted", "unknown",
    "failed", "timeout", "throttled",
)  # fmt: skip
DEFAULT_TTL_S = {
    "connected": 7200.0,
    "roaming": 14400.0,
    "absent": 600.0,
    "invalid": 259200.0,
    "restricted": 86400.0,
    "unknown": 900.0,
    "failed": 30.0,
    "timeout": 60.0,
    "throttled": 5.0,
}


@dataclass(frozen=True, slots=True)
class CacheConfig:
    enabled: bool = True
    ttl_s: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_TTL_S))
    memory_entries: int = 100_000  # answers kept in memory (a hit never touches the disk)
    # When every provider fails, serve an answered entry up to this old, marked stale.
    # 0 = never (the default: a stale "at home" may be wrong, and fail-closed is safer).
    serve_stale_s: float = 0.0


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """Where answers outlive a restart. Numbers are kept only as keyed hashes."""

    backend: str = "sqlite"  # the embedded default; a shared engine can come later
    data_dir: str = "data"  # HLRD_DATA_DIR overrides; created on first start
    # The HMAC key for number hashes: from this environment variable (hex, >= 32
    # bytes), else from `hash_key_file` (default <data_dir>/hash.key, created 0600).
    hash_key_env: str = ""
    hash_key: bytes = b""  # resolved from hash_key_env when set; empty = key file
    hash_key_file: str = ""
    retention_days: float = 30.0  # answers older than this are purged in the background
    write_batch: int = 500  # rows per transaction, at most
    write_queue: int = 100_000  # writes waiting for the writer thread; beyond: dropped, counted


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    """`[upstream.breaker]`: when a failing provider is skipped (hlrd/upstream/breaker.py)."""

    enabled: bool = True
    failures: int = 5  # failed lookups in a row that open it
    error_ratio: float = 0.5  # or this share of the last `window` lookups failed...
    window: int = 20
    min_calls: int = 10  # ...once this many were seen
    cooldown_s: float = 30.0  # then one probe


@dataclass(frozen=True, slots=True)
class ListsConfig:
    """`[lists]`: the do-not-call lists in <data_dir>/lists (hlrd lists import)."""

    enabled: bool = True
    reload_s: float = 5.0  # how often the list files are looked at for a new import
    stale: str = "block"  # a list past its freshness limit: "block" every number, or "warn"
    # A dialer's dispositions that put the number on the own list (VICIdial: DNC).
    dnc_dispositions: tuple[str, ...] = ("DNC",)


@dataclass(frozen=True, slots=True)
class ComplianceConfig:
    """`[consent]`, `[erasure]` and `[audit]`."""

    # Consent recorded without `valid_until` lasts this long (3 years: what several
    # European regulators take as the longest a marketing consent stays fresh).
    consent_valid_days: float = 1095.0
    # Erasure keeps a number's consent records this long (evidence a claim may need),
    # unused and unlinked from any decision; 0: deleted at once with the rest.
    legal_hold_days: float = 0.0
    audit: bool = True
    audit_retention_days: float = 730.0
    audit_flush_s: float = 0.2  # decisions are written in batches this often
    audit_max_pending: int = 100_000  # decisions waiting to be written; beyond: fail closed
    # `[jobs]`: a washing job's files (the user's list, plaintext numbers) are kept
    # this long, then deleted with the job.
    jobs_retention_days: float = 7.0
    # Signs completion webhooks (HMAC-SHA256); empty: jobs take no webhook.
    jobs_webhook_secret: str = ""


@dataclass(frozen=True, slots=True)
class Route:
    """`[[upstream.routes]]`: numbers of these countries or E.164 prefixes go to these
    providers, in this order (the next one when one fails or its circuit is open)."""

    name: str
    providers: tuple[str, ...]
    countries: tuple[str, ...] = ()  # ISO 3166 alpha-2 of the number's numbering plan
    prefixes: tuple[str, ...] = ()  # E.164 digits; the longest match beats a country


@dataclass(frozen=True, slots=True)
class Config:
    providers: tuple[ProviderConfig, ...]
    http: HttpConfig = field(default_factory=HttpConfig)
    numbers: NumbersConfig = field(default_factory=NumbersConfig)
    lookup: LookupConfig = field(default_factory=LookupConfig)
    policy: Policy = field(default_factory=Policy)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    smpp_server: SmppServerConfig = field(default_factory=SmppServerConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)
    breaker: BreakerConfig = field(default_factory=BreakerConfig)
    # A number no route claims goes to every provider in configured order.
    routes: tuple[Route, ...] = ()
    lists: ListsConfig = field(default_factory=ListsConfig)
    # Named call policies, "default" ([policy]) among them (empty: only `policy`).
    policies: Mapping[str, CallPolicy] = field(default_factory=lambda: MappingProxyType({}))
    compliance: ComplianceConfig = field(default_factory=ComplianceConfig)

    def __post_init__(self) -> None:
        if DEFAULT not in self.policies:
            policies = {DEFAULT: CallPolicy(roaming=self.policy), **self.policies}
            object.__setattr__(self, "policies", MappingProxyType(policies))

    def call_policy(self, name: str = DEFAULT) -> CallPolicy:
        """KeyError for a name not configured."""
        return self.policies[name]


# -- validation helpers --------------------------------------------------------------


def _kind(value: object) -> str:
    """How TOML spelled a value of the wrong type: `port = "8080"` is a string."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string (remove the quotes?)" if _looks_numeric(value) else "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return text.strip().lower() in ("true", "false")
    return True


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
        if not isinstance(v, int) or isinstance(v, bool):
            raise ConfigError(f"{self.key(name)}: must be an integer, not {_kind(v)}")
        if not lo <= v <= hi:
            raise ConfigError(f"{self.key(name)}: must be {lo}..{hi}")
        return v

    def get_float(self, name: str, default: float, lo: float, hi: float) -> float:
        v = self.get(name, default)
        if not isinstance(v, int | float) or isinstance(v, bool):
            raise ConfigError(f"{self.key(name)}: must be a number, not {_kind(v)}")
        if not lo <= v <= hi:
            raise ConfigError(f"{self.key(name)}: must be a number in {lo}..{hi}")
        return float(v)

    def get_bool(self, name: str, default: bool) -> bool:
        v = self.get(name, default)
        if not isinstance(v, bool):
            raise ConfigError(f"{self.key(name)}: must be true or false, not {_kind(v)}")
        return v

    def get_str(
        self, name: str, default: str, choices: tuple[str, ...] = (), max_len: int = 0
    ) -> str:
        v = self.get(name, default)
        if not isinstance(v, str):
            raise ConfigError(f"{self.key(name)}: must be a string, not {_kind(v)}")
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
        if var is not None and name in self.data:
            raise ConfigError(f"{self.key(name)}: give {name} or {name}_env, not both")
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


def _currency(t: _Table) -> str:
    code = t.get_str("currency", "EUR")
    if len(code) != 3 or not code.isascii() or not code.isalpha() or not code.isupper():
        raise ConfigError(f"{t.key('currency')}: must be an ISO 4217 code such as EUR")
    return code


def _provider(raw: Any, i: int, env: Mapping[str, str]) -> ProviderConfig:
    t = _Table(raw, f"upstream.providers[{i}]")
    kind = t.get_str("type", "smpp", choices=("smpp", *HTTP_PROVIDER_TYPES))
    name = t.get_str("name", f"provider{i}", max_len=40)
    if kind != "smpp":
        return _http_provider(t, name, kind, env)
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
        message_id_match=t.get_str(
            "message_id_match", "auto", choices=("auto", "exact", "hex_decimal")
        ),
        early_receipt_ttl_s=t.get_float("early_receipt_ttl_s", 2.0, 0.01, 600),
        receipt_dialect=t.get_str("receipt_dialect", "hlrd", choices=(*PRESETS, "custom")),
        receipt_mapping=_receipt_mapping(t),
        price=t.get_float("price", 0.0, 0.0, 1000.0),
        currency=_currency(t),
    )
    if cfg.reconnect_min_s > cfg.reconnect_max_s:
        raise ConfigError(f"{t.key('reconnect_min_s')}: must not exceed reconnect_max_s")
    t.done()
    return cfg


def _url(t: _Table, name: str, default: str, example: str) -> str:
    """An http(s) URL without credentials, query or fragment (they would be logged
    with it); `default` when absent (an empty default: optional)."""
    url = t.get_str(name, default, max_len=2000)
    if not url:
        return url
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        what = "the vendor's API root" if name == "base_url" else "an http(s) URL"
        raise ConfigError(f"{t.key(name)}: {what}, e.g. {example}")
    if parsed.username or parsed.password or parsed.query or parsed.fragment:
        raise ConfigError(
            f"{t.key(name)}: no credentials, query or fragment in the URL "
            "(credentials go in api_key / api_secret, or their _env forms)"
        )
    return url.rstrip("/")


def _private_key(t: _Table, env: Mapping[str, str]) -> str:
    """`private_key` / `private_key_env` (PEM text) or `private_key_file` (a path)."""
    path = t.get_str("private_key_file", "", max_len=4096)
    key = t.get_secret("private_key", env, max_len=16_384)
    if path and key:
        raise ConfigError(f"{t.key('private_key_file')}: give private_key or its file, not both")
    if path:
        try:
            key = Path(path).read_text(encoding="ascii")[:16_385]
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{t.key('private_key_file')}: cannot read it ({exc})") from None
    if key and "-----BEGIN" not in key:
        raise ConfigError(f"{t.key('private_key')}: a PEM private key (-----BEGIN ...)")
    return key


def _receipt_mapping(t: _Table) -> ReceiptMapping | None:
    """`receipt_mapping` with `receipt_dialect = "custom"`, and only then."""
    raw = t.get("receipt_mapping", None)
    custom = t.data.get("receipt_dialect") == "custom"
    if raw is None:
        if custom:
            raise ConfigError(
                f"{t.key('receipt_mapping')}: receipt_dialect custom needs a mapping "
                "(where each field is in the receipts: see README, SMPP receipt dialects)"
            )
        return None
    if not custom:
        raise ConfigError(f'{t.key("receipt_mapping")}: only with receipt_dialect = "custom"')
    return _parsed(t, "receipt_mapping", parse_mapping, raw)


_M = TypeVar("_M")


def _json_mapping(t: _Table, kind: str) -> JsonMapping | None:
    """`mapping` for a generic_json provider, and only for one."""
    raw = t.get("mapping", None)
    if kind != "generic_json":
        if raw is not None:
            raise ConfigError(f'{t.key("mapping")}: only for type = "generic_json"')
        return None
    if raw is None:
        raise ConfigError(
            f"{t.key('mapping')}: generic_json needs [upstream.providers.mapping] "
            "(what to send, where the fields are: docs/vendors/generic-json.md)"
        )
    return _parsed(t, "mapping", parse_json_mapping, raw)


def _parsed(t: _Table, name: str, parse: Callable[[Any], _M], raw: Any) -> _M:
    """A table read by a pure parser whose ValueError names the key below it."""
    try:
        return parse(raw)
    except ValueError as exc:
        detail = str(exc)
        joint = "" if detail.startswith(":") else "."
        raise ConfigError(f"{t.key(name)}{joint}{detail}") from None


def _http_provider(t: _Table, name: str, kind: str, env: Mapping[str, str]) -> HttpProviderConfig:
    base_url = _url(t, "base_url", "", "https://www.hlr-lookups.com/api/v2")
    if not base_url:
        raise ConfigError(
            f"{t.key('base_url')}: the vendor's API root, e.g. https://www.hlr-lookups.com/api/v2"
        )
    cfg = HttpProviderConfig(
        name=name,
        type=kind,
        base_url=base_url,
        api_key=t.get_secret("api_key", env, max_len=512),
        api_secret=t.get_secret("api_secret", env, max_len=512),
        tps=t.get_int("tps", 50, 1, 100_000),
        pool_size=t.get_int("pool_size", 16, 1, 1024),
        connect_timeout_s=t.get_float("connect_timeout_s", 3.0, 0.01, 300),
        request_timeout_s=t.get_float("request_timeout_s", 10.0, 0.01, 600),
        max_attempts=t.get_int("max_attempts", 3, 1, 10),
        price=t.get_float("price", 0.0, 0.0, 1000.0),
        currency=_currency(t),
        token_url=_url(t, "token_url", "", "https://api.example-operator.com/oauth2/token"),
        scope=t.get_str("scope", "", max_len=1000),
        private_key=_private_key(t, env),
        batch_size=t.get_int("batch_size", 1000, 1, 1000),
        batch_wait_s=t.get_float("batch_wait_s", 0.005, 0.0, 1.0),
        mapping=_json_mapping(t, kind),
        purpose=t.get_str("purpose", "", max_len=100),
    )
    needed = {"api_key"} if cfg.mapping is None else cfg.mapping.secrets_used
    if "api_key" in needed and not cfg.api_key:
        raise ConfigError(f"{t.key('api_key')}: the vendor's API key (or api_key_env)")
    if "api_secret" in needed and not cfg.api_secret:
        raise ConfigError(f"{t.key('api_secret')}: the mapping sends {{api_secret}}: give it")
    if kind == "vonage" and not cfg.private_key:
        raise ConfigError(
            f"{t.key('private_key')}: Vonage signs with the application's private key "
            "(private_key, private_key_env or private_key_file; api_key is the application id)"
        )
    t.done()
    return cfg


def _account(raw: Any, i: int, env: Mapping[str, str]) -> SmppAccount:
    t = _Table(raw, f"smpp_server.accounts[{i}]")
    system_id = t.get_str("system_id", "", max_len=15)
    if not system_id:
        raise ConfigError(f"{t.key('system_id')}: required")
    ips = t.get_strs("allowed_ips")
    for net in ips:
        try:
            ipaddress.ip_network(net, strict=False)
        except ValueError as exc:
            raise ConfigError(f"{t.key('allowed_ips')}: {net!r} is not an address") from exc
    acc = SmppAccount(
        system_id=system_id,
        password=t.get_secret("password", env, max_len=8),
        allowed_ips=ips,
        window=t.get_int("window", 100, 1, 100_000),
        tps=t.get_int("tps", 100, 1, 100_000),
        max_binds=t.get_int("max_binds", 4, 1, 1000),
        receipt_format=t.get_str("receipt_format", "both", choices=("text", "tlv", "both")),
        return_imsi=t.get_bool("return_imsi", False),
        reject_invalid=t.get_bool("reject_invalid", False),
        max_age_s=_max_age(t),
        policy=t.get_str("policy", DEFAULT, max_len=40),
    )
    t.done()
    return acc


def _smpp_server(raw: Any, env: Mapping[str, str]) -> SmppServerConfig:
    t = _Table(raw, "smpp_server")
    accounts_raw = t.get("accounts", [])
    if not isinstance(accounts_raw, list):
        raise ConfigError("smpp_server.accounts: must be an array of tables")
    accounts = tuple(_account(a, i, env) for i, a in enumerate(accounts_raw))
    if len({a.system_id for a in accounts}) != len(accounts):
        raise ConfigError("smpp_server.accounts: system_id must be unique")
    cfg = SmppServerConfig(
        enabled=t.get_bool("enabled", False),
        host=t.get_str("host", "127.0.0.1"),
        port=t.get_int("port", 2776, 0, 65535),
        tls_cert=t.get_str("tls_cert", ""),
        tls_key=t.get_str("tls_key", ""),
        inactivity_timeout_s=t.get_float("inactivity_timeout_s", 300.0, 0.0, 86400),
        receipt_ttl_s=t.get_float("receipt_ttl_s", 3600.0, 1.0, 7 * 86400),
        receipt_retry_s=t.get_float("receipt_retry_s", 5.0, 0.0, 3600),
        max_pending_receipts=t.get_int("max_pending_receipts", 10_000, 1, 10_000_000),
        bind_timeout_s=t.get_float("bind_timeout_s", 10.0, 0.01, 3600),
        max_connections=t.get_int("max_connections", 200, 1, 1_000_000),
        max_connections_per_ip=t.get_int("max_connections_per_ip", 20, 1, 1_000_000),
        max_errors_before_bind=t.get_int("max_errors_before_bind", 3, 0, 1000),
        max_errors_per_minute=t.get_int("max_errors_per_minute", 60, 0, 1_000_000),
        max_bind_failures=t.get_int("max_bind_failures", 5, 1, 1_000_000),
        bind_failure_window_s=t.get_float("bind_failure_window_s", 60.0, 0.0, 86400),
        accounts=accounts,
    )
    if bool(cfg.tls_cert) != bool(cfg.tls_key):
        raise ConfigError("smpp_server.tls_cert: tls_cert and tls_key go together")
    if cfg.enabled and not accounts:
        raise ConfigError("smpp_server.accounts: at least one account when enabled")
    t.done()
    return cfg


def _roaming(t: _Table) -> Policy:
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
        max_age_s=_max_age(t),
    )
    return policy


_POLICY_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,39}")


def _call_policy(t: _Table, name: str, lists: ListsConfig, hours: HoursRules | None) -> CallPolicy:
    """`[policy]` (named "default") or `[policies.<name>]`: the same keys. Calling hours
    are `[hours]` unless the policy has its own `hours` table or says
    `calling_hours = false`."""
    roaming = _roaming(t)
    names = t.get_strs("lists") if "lists" in t.data else None
    consent = t.get_str("consent", "", choices=("", *CHANNELS))
    own_hours = t.get("hours", None)
    if own_hours is not None:
        try:
            hours = parse_hours(own_hours, t.key("hours"))
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
    if not t.get_bool("calling_hours", True):
        hours = None
    policy = CallPolicy(
        name=name,
        version=t.get_str("version", "1", max_len=40) or "1",
        roaming=roaming,
        lists=frozenset(names) if names is not None else None,
        stale_block=t.get_str("stale", lists.stale, choices=("block", "warn")) == "block",
        consent=consent or None,
        consent_ownership=t.get_bool("consent_ownership", False),
        subscriber_check=t.get_bool("subscriber_check", True),
        hours=hours,
    )
    t.done()
    return policy


def _policies(top: _Table, lists: ListsConfig) -> dict[str, CallPolicy]:
    hours: HoursRules | None = None
    if "hours" in top.data:
        try:
            hours = parse_hours(top.get("hours", {}), "hours")
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
    policies = {
        DEFAULT: _call_policy(_Table(top.get("policy", {}), "policy"), DEFAULT, lists, hours)
    }
    named = _Table(top.get("policies", {}), "policies")
    for name, raw in named.data.items():
        named.used.add(name)
        if not _POLICY_NAME.fullmatch(name) or name == DEFAULT:
            raise ConfigError(
                f"policies.{name}: a policy name is 1-40 of a-z 0-9 _ . - (and not {DEFAULT!r})"
            )
        policies[name] = _call_policy(_Table(raw, f"policies.{name}"), name, lists, hours)
    return policies


def _max_age(t: _Table) -> float | None:
    """`max_age_s`: the oldest cached answer accepted; 0 or absent = no limit of its own."""
    value = t.get_float("max_age_s", 0.0, 0.0, 365 * 86400.0)
    return value or None


def parse_config(data: dict[str, Any], env: Mapping[str, str] | None = None) -> Config:
    env = os.environ if env is None else env
    top = _Table(data, "")
    upstream = _Table(top.get("upstream", {}), "upstream")
    raw_providers = upstream.get("providers", [])
    breaker = _breaker(_Table(upstream.get("breaker", {}), "upstream.breaker"))
    raw_routes = upstream.get("routes", [])
    upstream.done()
    if not isinstance(raw_providers, list) or not raw_providers:
        raise ConfigError("upstream.providers: at least one provider ([[upstream.providers]])")
    providers = tuple(_provider(p, i, env) for i, p in enumerate(raw_providers))
    names = [p.name for p in providers]
    if len(set(names)) != len(names):
        raise ConfigError("upstream.providers: names must be unique")
    routes = _routes(raw_routes, set(names))

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
        max_connections=h.get_int("max_connections", 1000, 1, 1_000_000),
        max_connections_per_ip=h.get_int("max_connections_per_ip", 200, 1, 1_000_000),
        header_timeout_s=h.get_float("header_timeout_s", 10.0, 0.01, 3600),
        idle_timeout_s=h.get_float("idle_timeout_s", 30.0, 0.01, 3600),
        max_age_s=_max_age(h),
    )
    h.done()

    n = _Table(top.get("numbers", {}), "numbers")
    region = n.get_str("default_region", "PL")
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ConfigError("numbers.default_region: must be an ISO 3166 alpha-2 code")
    numbers = NumbersConfig(default_region=region, mobile_only=n.get_bool("mobile_only", True))
    n.done()

    lk = _Table(top.get("lookup", {}), "lookup")
    lookup = LookupConfig(
        timeout_s=lk.get_float("timeout_s", 15.0, 0.01, 3600),
        max_queue=lk.get_int("max_queue", 10_000, 1, 10_000_000),
        return_imsi=lk.get_bool("return_imsi", False),
        shutdown_grace_s=lk.get_float("shutdown_grace_s", 5.0, 0.0, 600),
        bind_wait_s=lk.get_float("bind_wait_s", 0.5, 0.0, 600),
    )
    lk.done()

    lists = _lists(_Table(top.get("lists", {}), "lists"))
    policies = _policies(top, lists)

    lg = _Table(top.get("logging", {}), "logging")
    logging = LoggingConfig(
        format=lg.get_str("format", "auto", choices=("auto", "json", "console")),
        level=lg.get_str("level", "INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR")),
        max_line_bytes=lg.get_int("max_line_bytes", 2048, 256, 1_000_000),
    )
    lg.done()
    smpp_server = _smpp_server(top.get("smpp_server", {}), env)
    li = _Table(top.get("limits", {}), "limits")
    limits = LimitsConfig(fd_reserve=li.get_int("fd_reserve", 128, 16, 100_000))
    li.done()
    store = _store(_Table(top.get("store", {}), "store"), env)
    cache = _cache(_Table(top.get("cache", {}), "cache"))
    compliance = _compliance(top, env)
    top.done()
    for account in smpp_server.accounts:
        if account.policy not in policies:
            raise ConfigError(
                f"smpp_server.accounts: {account.system_id}'s policy {account.policy!r} "
                "is not [policy] (default) or one of [policies]"
            )
    return Config(
        providers,
        http,
        numbers,
        lookup,
        policies[DEFAULT].roaming,
        logging,
        smpp_server,
        limits,
        store,
        cache,
        breaker,
        routes,
        lists,
        MappingProxyType(policies),
        compliance,
    )


def _compliance(top: _Table, env: Mapping[str, str]) -> ComplianceConfig:
    c = _Table(top.get("consent", {}), "consent")
    e = _Table(top.get("erasure", {}), "erasure")
    a = _Table(top.get("audit", {}), "audit")
    j = _Table(top.get("jobs", {}), "jobs")
    cfg = ComplianceConfig(
        consent_valid_days=c.get_float("valid_days", 1095.0, 1.0, 36500.0),
        legal_hold_days=e.get_float("legal_hold_days", 0.0, 0.0, 36500.0),
        audit=a.get_bool("enabled", True),
        audit_retention_days=a.get_float("retention_days", 730.0, 1.0, 36500.0),
        audit_flush_s=a.get_float("flush_s", 0.2, 0.01, 60.0),
        audit_max_pending=a.get_int("max_pending", 100_000, 100, 10_000_000),
        jobs_retention_days=j.get_float("retention_days", 7.0, 0.01, 3650.0),
        jobs_webhook_secret=j.get_secret("webhook_secret", env),
    )
    for t in (c, e, a, j):
        t.done()
    return cfg


def _lists(t: _Table) -> ListsConfig:
    cfg = ListsConfig(
        enabled=t.get_bool("enabled", True),
        reload_s=t.get_float("reload_s", 5.0, 0.1, 3600.0),
        stale=t.get_str("stale", "block", choices=("block", "warn")),
        dnc_dispositions=t.get_strs("dnc_dispositions")
        if "dnc_dispositions" in t.data
        else ("DNC",),
    )
    t.done()
    return cfg


def _routes(raw: Any, providers: set[str]) -> tuple[Route, ...]:
    """Each country and each prefix in one route only: which list a number takes must
    not depend on the order routes happen to be written in."""
    if not isinstance(raw, list):
        raise ConfigError("upstream.routes: must be an array of tables ([[upstream.routes]])")
    routes: list[Route] = []
    claimed: dict[str, str] = {}
    for i, item in enumerate(raw):
        t = _Table(item, f"upstream.routes[{i}]")
        name = t.get_str("name", f"route{i}", max_len=40)
        listed = t.get_strs("providers")
        if not listed:
            raise ConfigError(f"{t.key('providers')}: at least one provider, in order")
        for p in listed:
            if p not in providers:
                raise ConfigError(f"{t.key('providers')}: no provider named {p!r}")
        if len(set(listed)) != len(listed):
            raise ConfigError(f"{t.key('providers')}: a provider listed twice")
        countries = tuple(c.upper() for c in t.get_strs("countries"))
        for c in countries:
            if c not in phonenumbers.SUPPORTED_REGIONS:  # the regions numbers are read as
                raise ConfigError(f"{t.key('countries')}: {c!r} is not an ISO 3166 alpha-2 code")
        prefixes = tuple(p.removeprefix("+") for p in t.get_strs("prefixes"))
        for p in prefixes:
            if not (p.isascii() and p.isdigit() and 1 <= len(p) <= 15):
                raise ConfigError(f"{t.key('prefixes')}: {p!r} is not an E.164 prefix (digits)")
        if not countries and not prefixes:
            raise ConfigError(f"{t.key('countries')}: a route needs countries or prefixes")
        for what in (*countries, *prefixes):
            if what in claimed:
                raise ConfigError(f"upstream.routes[{i}]: {what!r} is already in {claimed[what]}")
            claimed[what] = f"upstream.routes[{i}]"
        t.done()
        routes.append(Route(name, listed, countries, prefixes))
    if len({r.name for r in routes}) != len(routes):
        raise ConfigError("upstream.routes: names must be unique")
    return tuple(routes)


def _breaker(t: _Table) -> BreakerConfig:
    cfg = BreakerConfig(
        enabled=t.get_bool("enabled", True),
        failures=t.get_int("failures", 5, 1, 1000),
        error_ratio=t.get_float("error_ratio", 0.5, 0.01, 1.0),
        window=t.get_int("window", 20, 1, 10_000),
        min_calls=t.get_int("min_calls", 10, 1, 10_000),
        cooldown_s=t.get_float("cooldown_s", 30.0, 0.0, 3600.0),
    )
    t.done()
    return cfg


def _cache(t: _Table) -> CacheConfig:
    ttl = dict(DEFAULT_TTL_S)
    tt = _Table(t.get("ttl_s", {}), t.key("ttl_s"))
    for kind in CACHE_KINDS:
        ttl[kind] = tt.get_float(kind, DEFAULT_TTL_S[kind], 0.0, 365 * 86400.0)
    tt.done()
    cfg = CacheConfig(
        enabled=t.get_bool("enabled", True),
        ttl_s=ttl,
        memory_entries=t.get_int("memory_entries", 100_000, 0, 100_000_000),
        serve_stale_s=t.get_float("serve_stale_s", 0.0, 0.0, 365 * 86400.0),
    )
    t.done()
    return cfg


def _store(t: _Table, env: Mapping[str, str]) -> StoreConfig:
    data_dir = t.get_str("data_dir", "data")
    data_dir = env.get("HLRD_DATA_DIR") or data_dir
    if not data_dir:
        raise ConfigError("store.data_dir: must not be empty")
    key_env = t.get_str("hash_key_env", "")
    key = b""
    if key_env:
        if key_env not in env:
            raise ConfigError(f"store.hash_key_env: environment variable {key_env!r} is not set")
        try:
            key = bytes.fromhex(env[key_env].strip())
        except ValueError as exc:
            raise ConfigError(f"store.hash_key_env: {key_env} must be hex digits") from exc
        if len(key) < 32:
            raise ConfigError(
                f"store.hash_key_env: {key_env} must hold at least 32 bytes (64 hex digits)"
            )
    cfg = StoreConfig(
        backend=t.get_str("backend", "sqlite", choices=("sqlite",)),
        data_dir=data_dir,
        hash_key_env=key_env,
        hash_key=key,
        hash_key_file=t.get_str("hash_key_file", ""),
        retention_days=t.get_float("retention_days", 30.0, 0.001, 3650),
        write_batch=t.get_int("write_batch", 500, 1, 100_000),
        write_queue=t.get_int("write_queue", 100_000, 1, 10_000_000),
    )
    t.done()
    return cfg


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
