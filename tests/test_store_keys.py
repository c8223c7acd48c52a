"""Keyed hashes: the key that makes stored rows useless to whoever copies the file,
kept where only hlrd's user reads it, and the same across restarts and processes."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import os
import threading
from pathlib import Path

import pytest

from hlrd.config import StoreConfig
from hlrd.store import KeyFileError, NumberKeyer, open_keyer, open_store
from hlrd.store.keys import key_file_path, load_key

from .store_tools import answer, file_mode, file_names, store_config

NUMBER = "48601234567"


@pytest.fixture
def cfg(tmp_path: Path) -> StoreConfig:
    return store_config(tmp_path)


async def test_the_key_file_is_made_private_on_first_start_and_reused(cfg: StoreConfig) -> None:
    first = await open_keyer(cfg)
    path = Path(cfg.data_dir) / "hash.key"
    assert file_mode(path) == 0o600
    assert file_mode(Path(cfg.data_dir)) == 0o700
    assert file_names(Path(cfg.data_dir)) == {"hash.key"}  # no temporary file left
    assert len(load_key(cfg)) == 32
    second = await open_keyer(cfg)
    assert second.key(NUMBER) == first.key(NUMBER)


async def test_after_a_restart_an_answer_is_found_under_the_same_key(cfg: StoreConfig) -> None:
    keyer = await open_keyer(cfg)
    store = await open_store(cfg, retention_interval_s=None)
    kept = dataclasses.replace(answer(), key=keyer.key(NUMBER))
    store.put(kept)
    await store.close()

    keyer = await open_keyer(cfg)
    store = await open_store(cfg, retention_interval_s=None)
    assert await store.get(keyer.key(NUMBER)) == kept
    await store.close()


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620])
async def test_a_key_file_open_to_others_is_refused(cfg: StoreConfig, mode: int) -> None:
    await open_keyer(cfg)
    path = Path(cfg.data_dir) / "hash.key"
    path.chmod(mode)
    with pytest.raises(KeyFileError) as err:
        await open_keyer(cfg)
    assert f"(mode {mode:04o})" in str(err.value)
    assert str(err.value).endswith(f"Run: chmod 600 {path}")


@pytest.mark.parametrize("content", [b"", b"\x01" * 31, b"ab" * 32, b"\x01" * 33])
async def test_a_key_file_of_the_wrong_size_is_refused(cfg: StoreConfig, content: bytes) -> None:
    path = key_file_path(cfg)
    path.parent.mkdir(parents=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, content)
    os.close(fd)
    with pytest.raises(KeyFileError, match="holds exactly 32 random bytes"):
        await open_keyer(cfg)
    assert path.read_bytes() == content  # left for the operator to look at


async def test_a_key_from_the_environment_is_used_and_no_file_is_made(cfg: StoreConfig) -> None:
    secret = bytes.fromhex("5e" * 40)
    keyer = await open_keyer(dataclasses.replace(cfg, hash_key_env="HLRD_KEY", hash_key=secret))
    assert keyer.key(NUMBER) == hmac.new(secret, NUMBER.encode(), hashlib.sha256).digest()
    assert file_names(Path(cfg.data_dir)) == set()


async def test_a_configured_key_file_path_is_used(cfg: StoreConfig, tmp_path: Path) -> None:
    elsewhere = tmp_path / "secrets" / "hlrd.key"
    keyer = await open_keyer(dataclasses.replace(cfg, hash_key_file=str(elsewhere)))
    secret = load_key(dataclasses.replace(cfg, hash_key_file=str(elsewhere)))
    assert keyer.key(NUMBER) == hmac.new(secret, NUMBER.encode(), hashlib.sha256).digest()
    assert file_names(Path(cfg.data_dir)) == set()


def test_starters_racing_for_a_new_key_file_agree_on_one_key(tmp_path: Path) -> None:
    for round_ in range(20):
        cfg = store_config(tmp_path / str(round_))
        start = threading.Barrier(8)
        keys: list[bytes] = []

        def starter(
            cfg: StoreConfig = cfg, start: threading.Barrier = start, keys: list[bytes] = keys
        ) -> None:
            start.wait()
            keys.append(load_key(cfg))

        threads = [threading.Thread(target=starter) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(keys) == 8
        assert set(keys) == {key_file_path(cfg).read_bytes()}


def test_a_number_has_one_key_whatever_its_spelling() -> None:
    keyer = NumberKeyer(b"s" * 32)
    assert keyer.key("+" + NUMBER) == keyer.key(NUMBER)
    assert keyer.key(NUMBER) != keyer.key("48601234568")
    assert keyer.key(NUMBER) != NumberKeyer(b"t" * 32).key(NUMBER)
    assert len(keyer.key(NUMBER)) == 32


def test_an_imsi_never_shares_a_key_with_a_number() -> None:
    keyer = NumberKeyer(b"s" * 32)
    digits = "260011234567890"
    assert keyer.imsi_key(digits) != keyer.key(digits)
    expected = hmac.new(b"s" * 32, b"imsi:" + digits.encode(), hashlib.sha256).digest()
    assert keyer.imsi_key(digits) == expected


@pytest.mark.parametrize("bad", ["", "+", "48 601 234 567", "4860123456x", "٤٨٦٠١", "1" * 16])
def test_a_malformed_number_is_refused_without_repeating_it(bad: str) -> None:
    keyer = NumberKeyer(b"s" * 32)
    with pytest.raises(ValueError) as err:
        keyer.key(bad)
    assert str(err.value) == "msisdn: must be 1..15 digits 0-9"
    with pytest.raises(ValueError, match=r"^imsi: "):
        keyer.imsi_key(bad)


def test_a_short_secret_is_refused_and_never_shown() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        NumberKeyer(b"short")
    assert "s" * 32 not in repr(NumberKeyer(b"s" * 32))
