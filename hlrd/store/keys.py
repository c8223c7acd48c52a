"""Keyed hashes of numbers: how a number is found again without being kept.

A plain SHA-256 of a phone number is no protection: there are only ~10^10 mobile
numbers in a country and hashing them all takes minutes. An HMAC with a secret key
makes the stored keys useless without that key, so the key lives apart from the
rows: in the environment, or in a key file only hlrd's user can read.

The key file is created on first start. Two processes starting together (the daemon
and a CLI command) must end up with the same key, or one of them writes rows nobody
finds again: the new key is written to a private temporary file and then hard-linked
into place, which succeeds for exactly one of them and never shows a half-written file.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path

from ..config import StoreConfig
from .base import KEY_BYTES, StoreError

_IMSI = b"imsi:"  # an IMSI hash never equals the hash of the same digits as a number
_MAX_DIGITS = 15  # E.164 and IMSI alike


class KeyFileError(StoreError):
    """The key file is unsafe or damaged; the message names it and the fix."""


class NumberKeyer:
    """Turns a number (or an IMSI) into the 32-byte key rows are stored under."""

    __slots__ = ("_keyed",)

    def __init__(self, secret: bytes) -> None:
        if len(secret) < KEY_BYTES:
            raise ValueError(f"a hash key has at least {KEY_BYTES} bytes")
        # HMAC with the key already absorbed: each number copies it (~2.1 µs) instead
        # of keying a new one (hmac.digest, ~3.4 µs); every lookup that misses pays it.
        self._keyed = hmac.new(secret, digestmod=hashlib.sha256)

    def key(self, msisdn: str) -> bytes:
        """`msisdn`: E.164 digits; a leading '+' is ignored so both spellings agree."""
        return self._mac(_digits(msisdn, "msisdn"))

    def imsi_key(self, imsi: str) -> bytes:
        return self._mac(_IMSI + _digits(imsi, "imsi"))

    def check(self) -> bytes:
        """This key's fingerprint, kept in the store to recognize its key: a MAC of a
        fixed text that is not digits, so it is no number's key."""
        return self._mac(b"hlrd:key-check")

    def _mac(self, message: bytes) -> bytes:
        mac = self._keyed.copy()
        mac.update(message)
        return mac.digest()

    def __repr__(self) -> str:
        return "NumberKeyer(<secret>)"


def _digits(value: str, what: str) -> bytes:
    # The message never repeats the value: it may be a number.
    text = value[1:] if value.startswith("+") else value
    if not (0 < len(text) <= _MAX_DIGITS and text.isascii() and text.isdigit()):
        raise ValueError(f"{what}: must be 1..{_MAX_DIGITS} digits 0-9")
    return text.encode("ascii")


def key_file_path(cfg: StoreConfig) -> Path:
    return Path(cfg.hash_key_file) if cfg.hash_key_file else Path(cfg.data_dir) / "hash.key"


def load_key(cfg: StoreConfig) -> bytes:
    """The secret: from the environment (already in `cfg`), else the key file, created
    when missing. Blocking file I/O: call it off the event loop (`open_keyer`)."""
    if cfg.hash_key:
        return cfg.hash_key
    path = key_file_path(cfg)
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    return _create_key(path)


async def open_keyer(cfg: StoreConfig) -> NumberKeyer:
    return NumberKeyer(await asyncio.to_thread(load_key, cfg))


def _read_key(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise KeyFileError(f"{path}: the hash key file is not a regular file")
        if st.st_mode & 0o077:
            raise KeyFileError(
                f"{path}: the hash key file is open to group or others "
                f"(mode {stat.S_IMODE(st.st_mode):04o}); anyone who reads it can tell "
                f"which numbers are stored. Run: chmod 600 {path}"
            )
        data = os.read(fd, KEY_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) != KEY_BYTES:
        raise KeyFileError(
            f"{path}: a hash key file holds exactly {KEY_BYTES} random bytes, this one "
            f"{'more' if len(data) > KEY_BYTES else len(data)}; restore it from a backup, "
            "or remove it to start with a new key (answers stored so far are then lost)"
        )
    return data


def _create_key(path: Path) -> bytes:
    secret = secrets.token_bytes(KEY_BYTES)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            if os.write(fd, secret) != KEY_BYTES:
                raise KeyFileError(f"{tmp}: short write while creating the hash key")
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return _read_key(path)  # another process won the race: use its key
        _fsync_dir(path.parent)
        return secret
    finally:
        os.unlink(tmp)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
