"""The list gate: what the do-not-call lists say of a number, before anything is paid.

A number on a list is blocked without a lookup (a paid lookup of a number nobody may
call is money spent for nothing); a list past its freshness limit blocks every
number (`[lists] stale = "block"`, the default: washing against a stale registry is
itself the breach) or is reported beside the decision (`"warn"`).

The daemon's lists follow their files: `watch` looks at the list descriptions every
`reload_s` and, when an import changed them, loads them all off the event loop and
swaps them in whole. A list that fails to load leaves the lists in memory as they
were (logged and counted): a broken file must never mean an empty list.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from ..metrics import Metrics
from .list_key import ListKeyer
from .lists import ListError, ListFiles, ListInfo, Lists, info_json
from .own_list import NAME as OWN
from .own_list import Entry, OwnList
from .policy import CallPolicy

log = structlog.get_logger("hlrd.lists")


@dataclass(frozen=True, slots=True)
class Screened:
    blocked: tuple[str, ...]  # reasons: listed:<name>, list_stale:<name>
    warnings: tuple[str, ...] = ()  # list_stale:<name> under stale = "warn"


CLEAR = Screened(())
ERASED = Screened(("erased",))  # the person asked to be forgotten: never called again
# Reasons the gate gives (hlrd_decisions_total{verdict="block"}), beside decide()'s.
REASONS = ("listed", "list_stale", "erased")


class ListGate:
    def __init__(
        self,
        files: ListFiles,
        metrics: Metrics,
        stale: str = "block",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.files = files
        self.own = OwnList(files.directory / "own.sqlite3", files.keyer, clock)
        self._own: dict[int, float | None] = {}  # key -> expiry, what the gate reads
        # Erased people: their suppression tokens (the keyed hash, nothing else).
        self.erased = OwnList(files.directory / "erased.sqlite3", files.keyer, clock)
        self._erased: frozenset[int] = frozenset()
        self.lists = Lists()
        self._metrics = metrics
        self._block_stale = stale == "block"
        self._clock = clock
        self._seen: tuple[object, ...] = ()
        self._stale_names: tuple[str, ...] = ()
        self._stale_checked = -1e18
        self._consulted: dict[str, tuple[object, tuple[tuple[str, str], ...]]] = {}
        for reason in REASONS:  # the series exist before the first block
            metrics.touch(metrics.decisions, "block", reason)
        metrics.watch(metrics.list_numbers, (OWN,), self._own_size)

    @classmethod
    def for_data_dir(
        cls, data_dir: str, secret: bytes, metrics: Metrics, stale: str = "block"
    ) -> ListGate:
        return cls(ListFiles(Path(data_dir) / "lists", ListKeyer(secret)), metrics, stale)

    async def load(self) -> None:
        """Every list from its files (ListError: none replaced)."""
        seen = await asyncio.to_thread(self._signature)
        loaded = await asyncio.to_thread(self.files.load_all)
        own = await asyncio.to_thread(self.own.load)
        erased = await asyncio.to_thread(self.erased.load)
        self.lists.replace(loaded)
        self._own = own
        self._erased = frozenset(erased)
        self._seen = seen
        self._stale_checked = -1e18
        m = self._metrics
        m.touch(m.list_hits, OWN)
        for name, one in loaded.items():
            m.list_numbers.labels(name).set(len(one.numbers))
            m.list_age.labels(name).set_function(functools.partial(self._age, one.info))
            m.list_stale.labels(name).set_function(functools.partial(self._is_stale, one.info))
            m.touch(m.list_hits, name)
        log.info("lists.loaded", lists={n: len(x.numbers) for n, x in loaded.items()})

    async def watch(self, interval_s: float) -> None:
        """Reload when an import changed the files (runs until cancelled)."""
        while True:
            await asyncio.sleep(interval_s)
            await self.reload_if_changed()

    async def reload_if_changed(self) -> bool:
        """Load the lists again if their files changed; a failure keeps what is loaded."""
        try:
            if await asyncio.to_thread(self._signature) == self._seen:
                return False
            await self.load()
            return True
        except (ListError, OSError) as exc:
            self._metrics.list_reload_failures.inc()
            log.error("lists.reload_failed", error=str(exc))
            return False

    def version(self) -> tuple[object, ...]:
        """Changes (by its items' identities) whenever a list, the own list or the
        erased people change: what remembers decisions forgets them then."""
        return (self.lists.generation, self._own, self._erased)

    def describe(self) -> list[dict[str, Any]]:
        """Each list as an operator is shown it (lists.info_json), and the own list."""
        now = self._clock()
        shown = [info_json(info, now) for info in self.lists.infos()]
        own = {"name": OWN, "format": "own", "numbers": len(self._own), "stale": False}
        return [*sorted(shown, key=lambda d: str(d["name"])), own]

    def _own_size(self) -> float:
        return len(self._own)

    def _age(self, info: ListInfo) -> float:
        return info.age_s(self._clock())

    def _is_stale(self, info: ListInfo) -> float:
        return float(info.stale(self._clock()))

    async def add(
        self, e164: str, reason: str, source: str, expires_at: float | None = None
    ) -> Entry:
        """Onto the own list, in force at once (OwnListFull beyond its bound)."""
        entry = await asyncio.to_thread(self.own.add, e164, reason, source, expires_at)
        own = dict(self._own)
        own[self.files.keyer.key(e164)] = expires_at
        self._own = own
        return entry

    async def suppress(self, e164: str, source: str) -> bool:
        """Erasure's token: the number is never called again, and its own-list entry
        (which says why, about a person) goes. True when it was on the own list."""
        await asyncio.to_thread(self.erased.add, e164, "erasure", source)
        self._erased = self._erased | {self.files.keyer.key(e164)}
        return await self.remove(e164)

    async def own_entry(self, e164: str) -> Entry | None:
        return await asyncio.to_thread(self.own.get, e164)

    async def remove(self, e164: str) -> bool:
        removed = await asyncio.to_thread(self.own.remove, e164)
        own = dict(self._own)
        own.pop(self.files.keyer.key(e164), None)
        self._own = own
        return removed

    def is_erased(self, e164: str) -> bool:
        return bool(self._erased) and self.files.keyer.key(e164) in self._erased

    def screen(self, e164: str, policy: CallPolicy | None = None, count: bool = True) -> Screened:
        """Erased, then the lists `policy` consults (every list without one). `count`
        False: a preview's question, not a check (no hit is counted)."""
        lists, own = self.lists, self._own
        if not len(lists) and not own and not self._erased:
            return CLEAR
        key = self.files.keyer.key(e164)
        if key in self._erased:
            return ERASED
        hits = lists.hits(key)
        if key in own:
            expires = own[key]
            if expires is None or self._clock() < expires:
                hits.insert(0, OWN)
        stale = self._stale()
        block_stale = self._block_stale
        if policy is not None:
            if policy.lists is not None:
                hits = [name for name in hits if name in policy.lists]
                stale = tuple(name for name in stale if name in policy.lists)
            block_stale = policy.stale_block
        for name in hits if count else ():
            self._metrics.child(self._metrics.list_hits, name).inc()
        blocked = [f"listed:{name}" for name in hits]
        stale_reasons = tuple(f"list_stale:{name}" for name in stale)
        if block_stale:
            return Screened((*blocked, *stale_reasons)) if blocked or stale else CLEAR
        return Screened(tuple(blocked), stale_reasons)

    def consulted(self, policy: CallPolicy) -> tuple[tuple[str, str], ...]:
        """The lists `policy` consults, each with its version, for the audit record
        (worked out once per loaded set of lists and policy)."""
        memo = self._consulted
        found = memo.get(policy.name)
        if found is None or found[0] is not self.lists.generation:
            versions = [(i.name, i.version) for i in self.lists.infos() if policy.uses(i.name)]
            if policy.uses(OWN):
                versions.append((OWN, "live"))
            found = memo[policy.name] = (self.lists.generation, tuple(sorted(versions)))
        return found[1]

    def _stale(self) -> tuple[str, ...]:
        """Stale lists, worked out at most once a second (every check asks)."""
        now = self._clock()
        if now - self._stale_checked >= 1.0:
            self._stale_names = tuple(i.name for i in self.lists.infos() if i.stale(now))
            self._stale_checked = now
        return self._stale_names

    def _signature(self) -> tuple[object, ...]:
        """The descriptions' names and change times (an import replaces one) and the
        own list's change time (`hlrd dnc` writes it)."""
        directory = self.files.directory
        if not directory.is_dir():
            return ()
        described = sorted((p.name, p.stat().st_mtime_ns) for p in directory.glob("*.json"))
        return (*described, self.own.changed_at(), self.erased.changed_at())
