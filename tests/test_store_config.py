"""[store] in the config file: where the data lives and where its hash key comes from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hlrd.config import ConfigError, StoreConfig, load_config, parse_config


def with_store(**store: Any) -> dict[str, Any]:
    return {"upstream": {"providers": [{"name": "p"}]}, "store": store}


def test_defaults() -> None:
    cfg = parse_config(with_store(), env={}).store
    assert cfg == StoreConfig()
    assert (cfg.data_dir, cfg.hash_key, cfg.retention_days) == ("data", b"", 30.0)


def test_hlrd_data_dir_overrides_the_file() -> None:
    env = {"HLRD_DATA_DIR": "/var/lib/hlrd"}
    assert parse_config(with_store(data_dir="here"), env=env).store.data_dir == "/var/lib/hlrd"


def test_the_hash_key_comes_from_the_named_environment_variable() -> None:
    cfg = parse_config(with_store(hash_key_env="K"), env={"K": "ab" * 32}).store
    assert cfg.hash_key == b"\xab" * 32


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "store.hash_key_env: environment variable 'K' is not set"),
        ({"K": "zz" * 32}, "store.hash_key_env: K must be hex digits"),
        ({"K": "ab" * 31}, "store.hash_key_env: K must hold at least 32 bytes"),
    ],
)
def test_a_bad_environment_key_is_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(with_store(hash_key_env="K"), env=env)
    assert str(err.value).startswith(message)
    assert "zz" not in str(err.value)  # the value of a secret is never repeated


def test_the_shipped_file_documents_the_defaults() -> None:
    shipped = Path(__file__).resolve().parent.parent / "config" / "hlrd.toml"
    assert load_config(shipped, env={}).store == StoreConfig()
