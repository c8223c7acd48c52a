"""Configuration: defaults, errors that name their key, secrets from env, the CLI check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hlrd.config import (
    ConfigError,
    HttpProviderConfig,
    SmppProviderConfig,
    load_config,
    parse_config,
)
from hlrd.domain.decision import Policy
from hlrd.domain.result import Zone

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "config" / "hlrd.toml"

MINIMAL_TOML = '[[upstream.providers]]\nname = "p"\n'
BAD_TOML = '[[upstream.providers]]\nname = "p"\nwindow = 0\n'


def minimal(**provider: Any) -> dict[str, Any]:
    """The smallest valid config (one provider), with extra provider keys."""
    return {"upstream": {"providers": [{"name": "p", **provider}]}}


def with_section(section: str, **values: Any) -> dict[str, Any]:
    return {**minimal(), section: values}


def test_defaults_from_a_minimal_file(tmp_path: Path) -> None:
    path = tmp_path / "hlrd.toml"
    path.write_text(MINIMAL_TOML)
    cfg = load_config(path, env={})

    (p,) = cfg.providers
    assert isinstance(p, SmppProviderConfig)
    assert (p.name, p.type, p.host, p.port) == ("p", "smpp", "127.0.0.1", 2775)
    assert (p.system_id, p.password, p.system_type) == ("hlrd", "", "")
    assert (p.bind_mode, p.binds, p.window, p.tps, p.max_attempts) == ("transceiver", 1, 64, 100, 3)
    assert (p.request_timeout_s, p.result_timeout_s, p.enquire_link_s) == (5.0, 10.0, 30.0)
    assert p.message_id_match == "auto"
    assert (cfg.http.host, cfg.http.port, cfg.http.auth_tokens) == ("127.0.0.1", 8080, ())
    assert (cfg.numbers.default_region, cfg.numbers.mobile_only) == ("PL", True)
    assert (cfg.lookup.timeout_s, cfg.lookup.max_queue, cfg.lookup.return_imsi) == (
        15.0,
        10_000,
        False,
    )
    assert cfg.policy.block_zones == frozenset({Zone.NON_EEA})
    assert cfg.policy.block_countries == cfg.policy.allow_countries == frozenset()
    assert cfg.policy.block_absent and cfg.policy.block_invalid and cfg.policy.fail_closed
    assert not cfg.policy.block_restricted
    assert (cfg.logging.format, cfg.logging.level) == ("auto", "INFO")


def test_policy_values_are_read() -> None:
    cfg = parse_config(
        with_section(
            "policy",
            block_zones=["NON_EEA", "UNKNOWN"],
            block_countries=["EG"],
            allow_countries=["TR"],
            block_restricted=True,
            fail_closed=False,
        ),
        env={},
    )
    assert cfg.policy == Policy(
        block_zones=frozenset({Zone.NON_EEA, Zone.UNKNOWN}),
        block_countries=frozenset({"EG"}),
        allow_countries=frozenset({"TR"}),
        block_restricted=True,
        fail_closed=False,
    )


TWO_PROVIDERS = {"upstream": {"providers": [{"name": "a"}, {"name": "b", "window": 0}]}}


@pytest.mark.parametrize(
    ("data", "key"),
    [
        pytest.param(minimal(window=0), "upstream.providers[0].window", id="window-0"),
        pytest.param(minimal(window=1025), "upstream.providers[0].window", id="window-1025"),
        pytest.param(minimal(window=True), "upstream.providers[0].window", id="window-bool"),
        pytest.param(minimal(window="64"), "upstream.providers[0].window", id="window-str"),
        pytest.param(TWO_PROVIDERS, "upstream.providers[1].window", id="window-2nd-provider"),
        pytest.param(minimal(tps=0), "upstream.providers[0].tps", id="tps-0"),
        pytest.param(minimal(port=0), "upstream.providers[0].port", id="port-0"),
        pytest.param(minimal(port=65536), "upstream.providers[0].port", id="port-65536"),
        pytest.param(with_section("http", port=70000), "http.port", id="http-port"),
        pytest.param(minimal(bind_mode="receiver"), "upstream.providers[0].bind_mode", id="bind"),
        pytest.param(minimal(password="123456789"), "upstream.providers[0].password", id="pw-9"),
        pytest.param({**minimal(), "bogus": 1}, "bogus", id="unknown-top-level"),
        pytest.param(minimal(colour="red"), "upstream.providers[0].colour", id="unknown-provider"),
        pytest.param(
            {"upstream": {**minimal()["upstream"], "extra": 1}}, "upstream.extra", id="unknown-up"
        ),
        pytest.param(with_section("policy", block_zones=["MARS"]), "policy.block_zones", id="z"),
        pytest.param(
            with_section("policy", block_zones=["non_eea"]), "policy.block_zones", id="zl"
        ),
        pytest.param(
            with_section("policy", block_countries=["Egypt"]), "policy.block_countries", id="Egypt"
        ),
        pytest.param(
            with_section("policy", allow_countries=["eg"]), "policy.allow_countries", id="eg"
        ),
        pytest.param(with_section("policy", fail_closed="no"), "policy.fail_closed", id="bool"),
        pytest.param(with_section("logging", format="xml"), "logging.format", id="log-format"),
        pytest.param(with_section("logging", level="TRACE"), "logging.level", id="log-level"),
        pytest.param(with_section("lookup", timeout_s=0), "lookup.timeout_s", id="timeout"),
        pytest.param(
            with_section("numbers", default_region="pl"), "numbers.default_region", id="region"
        ),
        pytest.param(minimal(early_receipt_ttl_s=0), "upstream.providers[0].early_receipt_ttl_s"),
        pytest.param(with_section("lookup", bind_wait_s=-1), "lookup.bind_wait_s", id="bindw"),
        pytest.param(with_section("http", max_connections=0), "http.max_connections", id="hmax"),
        pytest.param(
            with_section("http", header_timeout_s=0), "http.header_timeout_s", id="header-to"
        ),
        pytest.param(
            with_section("smpp_server", bind_timeout_s=0), "smpp_server.bind_timeout_s", id="bt"
        ),
        pytest.param(
            with_section("smpp_server", max_connections_per_ip=0),
            "smpp_server.max_connections_per_ip",
            id="smax",
        ),
        pytest.param(with_section("limits", fd_reserve=1), "limits.fd_reserve", id="fdr"),
        pytest.param(
            with_section("cache", ttl_s={"connected": -1}), "cache.ttl_s.connected", id="ttl"
        ),
        pytest.param(with_section("cache", ttl_s={"roamin": 1}), "cache.ttl_s.roamin", id="kind"),
        pytest.param(with_section("cache", serve_stale_s=-1), "cache.serve_stale_s", id="stale"),
        pytest.param(with_section("store", retention_days=0), "store.retention_days", id="ret"),
        pytest.param(with_section("store", backend="redis"), "store.backend", id="backend"),
        pytest.param(with_section("store", data_dir=""), "store.data_dir", id="datadir"),
        pytest.param(
            with_section("store", hash_key_env="NOT_SET_ANYWHERE"), "store.hash_key_env", id="key"
        ),
        pytest.param(minimal(price=-1), "upstream.providers[0].price", id="price"),
        pytest.param(minimal(currency="eur"), "upstream.providers[0].currency", id="currency"),
        pytest.param(with_section("http", max_age_s=-5), "http.max_age_s", id="http-max-age"),
        pytest.param(with_section("limits", fds=1), "limits.fds", id="limits-unknown"),
        pytest.param(
            with_section("logging", max_line_bytes=10), "logging.max_line_bytes", id="line"
        ),
        pytest.param({}, "upstream.providers", id="no-upstream"),
        pytest.param({"upstream": {"providers": []}}, "upstream.providers", id="no-providers"),
        pytest.param(
            {"upstream": {"providers": [{"name": "a"}, {"name": "a"}]}},
            "upstream.providers",
            id="duplicate-names",
        ),
        pytest.param(
            {"upstream": {"providers": [{}, {"name": "provider0"}]}},
            "upstream.providers",
            id="duplicate-default-name",
        ),
    ],
)
def test_bad_value_names_its_key(data: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config(data, env={})
    assert str(exc.value).startswith(f"{key}: "), str(exc.value)


def test_password_env_reads_the_given_mapping_not_os_environ(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HLRD_PW", "from_os")
    cfg = parse_config(minimal(password_env="HLRD_PW"), env={"HLRD_PW": "s3cret"})
    (p,) = cfg.providers
    assert isinstance(p, SmppProviderConfig) and p.password == "s3cret"


@pytest.mark.parametrize(
    ("env", "key", "fragment"),
    [
        ({}, "upstream.providers[0].password_env", "HLRD_PW"),
        ({"HLRD_PW": "123456789"}, "upstream.providers[0].password_env", "8"),
    ],
    ids=["missing-variable", "too-long"],
)
def test_password_env_errors(env: dict[str, str], key: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config(minimal(password_env="HLRD_PW"), env=env)
    assert str(exc.value).startswith(f"{key}: ")
    assert fragment in str(exc.value)


@pytest.mark.parametrize(
    ("listed", "value", "expected"),
    [
        ([], "t1,t2", ("t1", "t2")),
        ([], "t1,,t2,", ("t1", "t2")),
        (["t0"], "t1,t2", ("t0", "t1", "t2")),
        # Bearer tokens cannot contain spaces; "t1, t2" must not yield the token " t2".
        ([], "t1, t2", ("t1", "t2")),
    ],
    ids=["plain", "empty-items-dropped", "added-to-listed", "spaces-after-commas"],
)
def test_auth_tokens_env_splits_on_commas(
    listed: list[str], value: str, expected: tuple[str, ...]
) -> None:
    data = with_section("http", auth_tokens=listed, auth_tokens_env="HLRD_TOKENS")
    assert parse_config(data, env={"HLRD_TOKENS": value}).http.auth_tokens == expected


def test_auth_tokens_env_missing_variable_is_named() -> None:
    with pytest.raises(ConfigError, match=r"^http\.auth_tokens_env: .*HLRD_TOKENS"):
        parse_config(with_section("http", auth_tokens_env="HLRD_TOKENS"), env={})


def test_shipped_config_loads() -> None:
    cfg = load_config(SHIPPED, env={})
    names = [p.name for p in cfg.providers]
    assert names == [
        "simulator",
        "hlr_lookups",
        "infobip",
        "tyntec",
        "camara_de",
        "vonage",
        "generic_json",
    ]
    assert {r.name: r.providers[0] for r in cfg.routes} == {
        "germany": "camara_de",
        "western-europe": "infobip",
        "uk": "vonage",
        "asia-pacific": "generic_json",
        "americas": "tyntec",
    }
    p = cfg.providers[0]
    assert isinstance(p, SmppProviderConfig)
    assert (p.port, p.binds, p.tps) == (2775, 2, 1000)
    assert cfg.policy == Policy()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [(None, "hlrd.toml"), ("[[upstream.providers]\n", "hlrd.toml")],
    ids=["missing-file", "broken-toml"],
)
def test_unreadable_file_names_the_file(tmp_path: Path, text: str | None, fragment: str) -> None:
    path = tmp_path / "hlrd.toml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(ConfigError, match=fragment):
        load_config(path, env={})


def run_check(file: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hlrd", "config", "check", file],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("text", "code", "stdout_suffix", "stderr_fragment"),
    [
        (MINIMAL_TOML, 0, ": ok\n", ""),
        (BAD_TOML, 2, "", "upstream.providers[0].window: must be 1..1024"),
    ],
    ids=["good", "bad"],
)
def test_cli_config_check(
    tmp_path: Path, text: str, code: int, stdout_suffix: str, stderr_fragment: str
) -> None:
    path = tmp_path / "hlrd.toml"
    path.write_text(text)
    proc = run_check(str(path))
    assert proc.returncode == code, proc.stderr
    if stdout_suffix:
        assert proc.stdout == f"{path}{stdout_suffix}"
    else:
        assert proc.stdout == ""
    assert stderr_fragment in proc.stderr
    if not stderr_fragment:
        assert proc.stderr == ""


def test_cli_config_check_shipped_file() -> None:
    proc = run_check("config/hlrd.toml")
    assert (proc.returncode, proc.stdout) == (0, "config/hlrd.toml: ok\n"), proc.stderr


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            with_section("http", port="8080"),
            "http.port: must be an integer, not a string (remove the quotes?)",
        ),
        (with_section("http", port=80.5), "http.port: must be an integer, not a number"),
        (
            with_section("lookup", timeout_s="2"),
            "lookup.timeout_s: must be a number, not a string (remove the quotes?)",
        ),
        (with_section("lookup", timeout_s=[2]), "lookup.timeout_s: must be a number, not an array"),
        (
            with_section("policy", fail_closed="true"),
            "policy.fail_closed: must be true or false, not a string (remove the quotes?)",
        ),
        (with_section("numbers", default_region=48), "must be a string, not a number"),
    ],
    ids=["port-quoted", "port-float", "timeout-quoted", "timeout-array", "bool-quoted", "str-int"],
)
def test_a_value_of_the_wrong_type_is_named_as_such(config: dict[str, Any], message: str) -> None:
    """`port = "8080"` is a type mistake; "must be 0..65535" would send the reader
    looking for a range problem that is not there."""
    with pytest.raises(ConfigError) as err:
        parse_config(config, env={})
    assert str(err.value).endswith(message)


def test_the_data_directory_comes_from_the_environment_first() -> None:
    cfg = parse_config(with_section("store", data_dir="/srv/a"), env={"HLRD_DATA_DIR": "/srv/b"})
    assert cfg.store.data_dir == "/srv/b"
    assert parse_config(with_section("store", data_dir="/srv/a"), env={}).store.data_dir == "/srv/a"


def test_a_hash_key_from_the_environment_must_be_long_hex() -> None:
    section = with_section("store", hash_key_env="K")
    assert parse_config(section, env={"K": "ab" * 32}).store.hash_key == bytes.fromhex("ab" * 32)
    for bad in ("ab" * 8, "zz" * 32):
        with pytest.raises(ConfigError, match=r"^store\.hash_key_env: K must"):
            parse_config(section, env={"K": bad})


def test_cache_defaults_explain_themselves() -> None:
    """The shipped file states every kind's time to live, equal to the built-in default."""
    shipped = load_config(SHIPPED, env={"HLRD_SIM_PASSWORD": "x", "HLRD_CC_PASSWORD": "x"})
    assert shipped.cache.ttl_s == parse_config(minimal(), env={}).cache.ttl_s
    assert shipped.cache.ttl_s["connected"] < shipped.cache.ttl_s["roaming"]
    assert shipped.cache.ttl_s["failed"] <= 60 and shipped.cache.serve_stale_s == 0


HLR_LOOKUPS = {"type": "hlr_lookups", "base_url": "https://www.hlr-lookups.com/api/v2/"}


def test_an_http_vendor_takes_its_url_and_credentials_from_the_environment() -> None:
    cfg = parse_config(
        minimal(**HLR_LOOKUPS, api_key_env="K", api_secret_env="S", price=0.01),
        env={"K": "key-1", "S": "secret-1"},
    )
    (p,) = cfg.providers
    assert isinstance(p, HttpProviderConfig)
    assert (p.type, p.base_url, p.api_key, p.api_secret) == (
        "hlr_lookups",
        "https://www.hlr-lookups.com/api/v2",
        "key-1",
        "secret-1",
    )
    assert (p.tps, p.pool_size, p.max_attempts, p.price) == (50, 16, 3, 0.01)


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"base_url": "ftp://x/api"}, "base_url: the vendor's API root"),
        ({"base_url": "https://user:pw@x/api/v2"}, "base_url: no credentials"),
        ({"base_url": "https://x/api/v2?key=1"}, "base_url: no credentials, query"),
        ({"api_key": ""}, "api_key: the vendor's API key"),
        ({"window": 10}, "window: unknown key"),  # an SMPP setting on an HTTP vendor
        ({"type": "hlr-lookups"}, "type: must be one of"),
    ],
)
def test_an_http_vendor_misconfigured_is_named_precisely(
    changes: dict[str, Any], fragment: str
) -> None:
    provider = {**HLR_LOOKUPS, "api_key": "k", **changes}
    with pytest.raises(ConfigError) as err:
        parse_config(minimal(**provider), env={})
    assert fragment in str(err.value)


def test_the_breaker_has_defaults_and_refuses_what_cannot_work() -> None:
    assert parse_config(minimal()).breaker.failures == 5
    cfg = parse_config(
        {
            **minimal(),
            "upstream": {**minimal()["upstream"], "breaker": {"failures": 2, "cooldown_s": 5}},
        }
    )
    assert (cfg.breaker.failures, cfg.breaker.cooldown_s, cfg.breaker.enabled) == (2, 5.0, True)
    with pytest.raises(ConfigError, match=r"upstream\.breaker\.error_ratio"):
        parse_config(
            {**minimal(), "upstream": {**minimal()["upstream"], "breaker": {"error_ratio": 1.5}}}
        )
