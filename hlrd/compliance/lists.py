"""Do-not-call lists: imported from registry files, kept as keyed hashes, swapped whole.

Each list is two files in `<data_dir>/lists/`: `<name>.<id>.keys` (the sorted 8-byte
keys of its numbers, number_set.py) and `<name>.json` (what it is: version, when
imported, the source file's SHA-256, rows read, rows that were not numbers, numbers
listed, how old it may grow, and the fingerprint of the key it was written under).
An import writes a new keys file, then replaces the JSON in one rename, then removes
the old keys file: a reader (the daemon reloading, a CLI) sees the old list or the
new one, never a mix and never an empty moment. In memory, `Lists` swaps a loaded
list in one assignment for the same reason.

A list older than its `max_age_days` is stale: registries require washing against a
fresh copy (the UK TPS within 28 days, the US FTC within 31, Italy's RPO within 15),
and a stale list is reported as such by every check (the gate blocks on it unless
the policy says otherwise).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import IO, Any

from .list_formats import ReadOptions, open_text, read_batches
from .list_key import ListKeyer
from .number_set import NumberSet

NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
DEFAULT_MAX_AGE_DAYS = {"tps": 28.0, "us_ftc": 31.0, "rpo": 15.0}


class ListError(Exception):
    """A list cannot be imported or loaded; the message says which and why."""


@dataclass(frozen=True, slots=True)
class ListInfo:
    name: str
    version: str
    format: str
    imported_at: float  # Unix time
    source_sha256: str
    rows: int  # rows read from the file
    invalid: int  # rows that were not a number
    numbers: int  # distinct numbers listed
    max_age_days: float | None  # None: never stale
    key_check: str
    keys_file: str
    changes: int = 0  # change lists applied since the full import

    def age_s(self, now: float) -> float:
        return max(0.0, now - self.imported_at)

    def stale(self, now: float) -> bool:
        return self.max_age_days is not None and self.age_s(now) > self.max_age_days * 86400


@dataclass(frozen=True, slots=True)
class LoadedList:
    info: ListInfo
    numbers: NumberSet


class ListFiles:
    """The lists' files in one directory (blocking I/O: call it off the event loop)."""

    def __init__(
        self, directory: Path, keyer: ListKeyer, clock: Callable[[], float] = time.time
    ) -> None:
        self.directory = directory
        self.keyer = keyer
        self.clock = clock

    def import_file(
        self,
        name: str,
        path: Path,
        options: ReadOptions,
        *,
        version: str = "",
        max_age_days: float | None = None,
        change: str = "",  # "" a full list; "add" or "delete" a change list
        default_region: str = "PL",
        progress: Callable[[int], None] | None = None,
    ) -> ListInfo:
        """Read `path`, write the list (replacing a list of that name), say what it is.
        `progress` is told the bytes read so far, a megabyte at a time (the web page's
        import shows it)."""
        check_name(name)
        if change not in ("", "add", "delete"):
            raise ListError("change: add or delete (a registry's change list), or none")
        digest = _sha256(path)
        counts = {"rows": 0, "invalid": 0}
        try:
            with path.open("rb") as raw, open_text(raw) as text:
                batches = read_batches(text, options, default_region)
                if progress is not None:
                    batches = _telling(batches, raw, progress)
                keys = self._keys(batches, counts)
                incoming = NumberSet.build(keys)
        except (OSError, ValueError) as exc:
            raise ListError(f"{path}: {exc}") from None
        old = self.load(name) if change else None
        if change and old is None:
            raise ListError(f"{name}: no list to apply a change list to; import it in full first")
        if old is not None and change == "add":
            numbers = old.numbers.with_changes(incoming, ())
        elif old is not None and change == "delete":
            numbers = old.numbers.with_changes((), incoming)
        else:
            numbers = incoming
        now = self.clock()
        if old is not None:
            info = replace(
                old.info,
                version=version or old.info.version,
                source_sha256=digest,
                rows=counts["rows"],
                invalid=counts["invalid"],
                numbers=len(numbers),
                changes=old.info.changes + 1,
                keys_file="",
            )
        else:
            info = ListInfo(
                name=name,
                version=version or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
                format=options.format,
                imported_at=now,
                source_sha256=digest,
                rows=counts["rows"],
                invalid=counts["invalid"],
                numbers=len(numbers),
                max_age_days=(
                    max_age_days
                    if max_age_days is not None
                    else DEFAULT_MAX_AGE_DAYS.get(options.format)
                ),
                key_check=self.keyer.check(),
                keys_file="",
            )
        return self._write(info, numbers)

    def load(self, name: str) -> LoadedList | None:
        meta = self.directory / f"{name}.json"
        try:
            info = ListInfo(**json.loads(meta.read_text()))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as exc:
            raise ListError(f"{meta}: not a list's description ({exc})") from None
        if info.key_check != self.keyer.check():
            raise ListError(
                f"{meta}: written under another hash key; it would match no number. "
                "Import the registry file again (or restore the key it was written under)"
            )
        try:
            numbers = NumberSet.from_bytes((self.directory / info.keys_file).read_bytes())
        except OSError as exc:
            raise ListError(f"{name}: its keys file cannot be read ({exc})") from None
        if len(numbers) != info.numbers:
            raise ListError(
                f"{name}: its keys file holds {len(numbers)} numbers, not {info.numbers}"
            )
        return LoadedList(info, numbers)

    def names(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        return sorted(p.stem for p in self.directory.glob("*.json") if NAME.fullmatch(p.stem))

    def load_all(self) -> dict[str, LoadedList]:
        out: dict[str, LoadedList] = {}
        for name in self.names():
            loaded = self.load(name)
            if loaded is not None:
                out[name] = loaded
        return out

    def remove(self, name: str) -> bool:
        check_name(name)
        loaded = self.load(name)
        if loaded is None:
            return False
        (self.directory / f"{name}.json").unlink()
        (self.directory / loaded.info.keys_file).unlink(missing_ok=True)
        return True

    def _keys(self, batches: Iterable[list[str | None]], counts: dict[str, int]) -> Iterator[int]:
        for batch in batches:
            valid = [n for n in batch if n is not None]
            counts["rows"] += len(batch)
            counts["invalid"] += len(batch) - len(valid)
            yield from self.keyer.keys(valid)

    def _write(self, info: ListInfo, numbers: NumberSet) -> ListInfo:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        old = self.directory / f"{info.name}.json"
        previous = None
        if old.exists():
            try:
                previous = json.loads(old.read_text()).get("keys_file")
            except (OSError, ValueError):
                previous = None
        keys_file = f"{info.name}.{secrets.token_hex(6)}.keys"
        info = replace(info, keys_file=keys_file)
        _write_atomically(self.directory / keys_file, numbers.to_bytes())
        _write_atomically(old, json.dumps(asdict(info), indent=1).encode())
        if previous and previous != keys_file:
            (self.directory / previous).unlink(missing_ok=True)
        return info


class Lists:
    """The loaded lists the gate reads; `replace` swaps one in whole."""

    def __init__(self, loaded: dict[str, LoadedList] | None = None) -> None:
        self._lists: dict[str, LoadedList] = dict(loaded or {})

    def replace(self, loaded: dict[str, LoadedList]) -> None:
        self._lists = dict(loaded)  # one assignment: a check sees the old or the new

    def put(self, loaded: LoadedList) -> None:
        lists = dict(self._lists)
        lists[loaded.info.name] = loaded
        self._lists = lists

    def infos(self) -> list[ListInfo]:
        return [loaded.info for loaded in self._lists.values()]

    @property
    def generation(self) -> object:
        """Changes (by identity) whenever a list is swapped in."""
        return self._lists

    def hits(self, key: int, names: Iterable[str] | None = None) -> list[str]:
        """The lists (of `names`, default all) that hold the number whose key this is."""
        lists = self._lists
        wanted = lists if names is None else names
        return [n for n in wanted if n in lists and key in lists[n].numbers]

    def __len__(self) -> int:
        return len(self._lists)


def _telling(
    batches: Iterator[list[str | None]], raw: IO[bytes], progress: Callable[[int], None]
) -> Iterator[list[str | None]]:
    for batch in batches:
        progress(raw.tell())
        yield batch


def check_name(name: str) -> None:
    if not NAME.fullmatch(name):
        raise ListError(
            f"name: {name!r} is not a list name (lower-case letters, digits, _ and -, "
            "at most 40, starting with a letter or digit)"
        )


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    try:
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except OSError as exc:
        raise ListError(f"{path}: {exc.strerror or exc}") from None
    return h.hexdigest()


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def info_json(info: ListInfo, now: float) -> dict[str, Any]:
    """What an operator is shown of a list (no file names)."""
    d = asdict(info)
    d.pop("keys_file")
    d.pop("key_check")
    d["age_days"] = round(info.age_s(now) / 86400, 3)
    d["stale"] = info.stale(now)
    return d
