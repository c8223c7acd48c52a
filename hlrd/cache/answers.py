"""AnswerCache: answers reused while their kind's time to live lasts.

Memory first (a hit is a dict lookup), then the store (one read off the event loop,
after a restart or once memory has let the entry go). Every answer a provider gives is
remembered in both; the store gets it queued, so a lookup never waits for the disk.
A caller may ask for a younger answer than the time to live allows (`max_age`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import structlog

from ..config import CacheConfig
from ..domain.result import CacheInfo, LookupResult, Timings
from ..metrics import Metrics
from ..store.base import AnswerStore, StoredAnswer, StoreStats
from . import payload
from .key_filter import KeyFilter
from .kinds import answered, kind_of
from .memory import Entry, MemoryTier

log = structlog.get_logger("hlrd.cache")

# What one cache consultation came to (hlrd_cache_lookups_total{result}).
RESULTS = ("memory", "store", "miss", "stale", "bypass")
_NO_TIMINGS = Timings(upstream_ms=None, total_ms=0.0)
STATS_REUSE_S = 10.0  # store counts reused this long (see _store_stats)
KEYS_REMEMBERED = 4_096  # number -> store key, for the lookups in flight
# Keys the filter is sized for (~2.5 MB); beyond it more misses read the store.
KEY_FILTER_CAPACITY = 2_000_000


class AnswerCache:
    def __init__(
        self,
        cfg: CacheConfig,
        store: AnswerStore | None,
        keyer: Callable[[str], bytes] | None,
        metrics: Metrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cfg = cfg
        self.store = store if cfg.enabled else None
        self.keyer = keyer
        self.memory = MemoryTier(cfg.memory_entries if cfg.enabled else 0)
        # Failures (provider error, timeout, throttled) are kept apart and in memory only:
        # they live seconds, and must not push out the last real answer, which a stale
        # serve may still need.
        self.failures = MemoryTier(min(cfg.memory_entries, 10_000) if cfg.enabled else 0)
        self.keys = KeyFilter(KEY_FILTER_CAPACITY)
        self._keys_of: dict[str, bytes] = {}
        self._stats_flight: asyncio.Future[StoreStats] | None = None
        self._stats_kept: tuple[StoreStats, float] | None = None  # (counts, when: clock())
        self.clock = clock
        self.m = metrics
        self._results = {r: metrics.pending(metrics.cache_lookups, r) for r in RESULTS}

    # -- reading ---------------------------------------------------------------------

    def peek(self, msisdn: str, max_age: float | None, lookup_id: str = "") -> LookupResult | None:
        """A fresh enough answer from memory, or None (then `fetch` may still find one)."""
        now = self.clock()
        entry = self.memory.get(msisdn)
        hit = None if entry is None else self._fresh(entry, msisdn, max_age, now, lookup_id)
        if hit is None:
            entry = self.failures.get(msisdn)
            if entry is None:
                return None
            hit = self._fresh(entry, msisdn, max_age, now, lookup_id)
            if hit is None:
                return None
        self._count("memory", entry)
        return hit

    async def fetch(
        self, msisdn: str, max_age: float | None, lookup_id: str = ""
    ) -> LookupResult | None:
        """A fresh enough answer from memory or the store; None counts as a miss."""
        if not self.cfg.enabled:
            self._count("bypass")
            return None
        hit = self.peek(msisdn, max_age, lookup_id)
        if hit is not None:
            return hit
        entry = await self._load(msisdn)
        if entry is not None:
            hit = self._fresh(entry, msisdn, max_age, self.clock(), lookup_id)
            if hit is not None:
                self._count("store", entry)
                return hit
        self._count("miss")
        return None

    async def holds(self, msisdn: str, max_age: float | None = None) -> bool:
        """Whether a fresh answer is cached, not counted as a lookup: a job's preview
        asks it of every row before anything is spent."""
        entry = self.memory.get(msisdn) or await self._load(msisdn)
        return entry is not None and (
            self._fresh(entry, msisdn, max_age, self.clock(), "") is not None
        )

    async def stale(self, msisdn: str, lookup_id: str = "") -> LookupResult | None:
        """When every provider failed: an answered entry up to `serve_stale_s` old,
        marked stale; None when serving stale answers is off (the default)."""
        limit = self.cfg.serve_stale_s
        if limit <= 0 or not self.cfg.enabled:
            return None
        entry = self.memory.get(msisdn) or await self._load(msisdn)
        if entry is None or not answered(entry.kind):
            return None
        age = self.clock() - entry.checked_at
        if age > limit:
            return None
        self._count("stale", entry)
        return replace(
            entry.result,
            lookup_id=lookup_id,
            cache=CacheInfo(hit=True, age_s=round(age, 1), stale=True),
            timings=_NO_TIMINGS,
        )

    def _fresh(
        self, entry: Entry, msisdn: str, max_age: float | None, now: float, lookup_id: str
    ) -> LookupResult | None:
        age = now - entry.checked_at
        if now >= entry.expires_at or (max_age is not None and age > max_age):
            return None
        result = entry.result
        if result.msisdn != msisdn:  # memory is keyed by number: cannot differ; be sure
            return None
        return result.served_as(lookup_id, CacheInfo(hit=True, age_s=round(age, 1)), _NO_TIMINGS)

    async def load_key_filter(self, page: int = 2_000) -> None:
        """Fill the filter with every key the store holds (at start, in the background):
        from then on a number never seen costs no disk read."""
        if self.store is None:
            return
        started = time.perf_counter()
        after = b""
        keys = 0
        while batch := await self.store.keys_after(after, page):
            for key in batch:
                self.keys.add(key)
            keys += len(batch)
            after = batch[-1]
        self.keys.ready = True
        log.info("cache.key_filter_loaded", keys=keys, s=round(time.perf_counter() - started, 3))

    async def _load(self, msisdn: str) -> Entry | None:
        if self.store is None or self.keyer is None:
            return None
        key = self._key(msisdn)
        if self.keys.absent(key):
            return None
        row = await self.store.get(key)
        if row is None:
            return None
        entry = Entry(
            result=payload.decode(row.payload, msisdn),
            checked_at=row.checked_at,
            expires_at=row.expires_at,
            kind=row.kind,
            cost=row.cost,
            currency=row.currency,
        )
        self.memory.put(msisdn, entry)
        return entry

    def _count(self, result: str, entry: Entry | None = None) -> None:
        m = self.m
        self._results[result].inc()
        if entry is not None and entry.cost and result != "stale":
            m.pending(m.cost_saved, entry.result.provider, entry.currency).inc(entry.cost)

    # -- writing -----------------------------------------------------------------------

    def remember(self, result: LookupResult, cost: float = 0.0, currency: str = "") -> None:
        """Keep a provider's answer for its kind's time to live (memory and store)."""
        if not self.cfg.enabled:
            return
        kind = kind_of(result)
        if kind is None:
            return
        ttl = self.cfg.ttl_s[kind]
        if ttl <= 0:
            return
        now = self.clock()
        # Kept as answered: a hit replaces its lookup id, cache info and timings anyway.
        entry = Entry(result, now, now + ttl, kind, cost, currency)
        if not answered(kind):
            self.failures.put(result.msisdn, entry)
            return
        self.failures.pop(result.msisdn)
        self.memory.put(result.msisdn, entry)
        if self.store is not None and self.keyer is not None:
            key = self._key(result.msisdn)
            self.keys.add(key)
            self.store.put(
                StoredAnswer(
                    key=key,
                    checked_at=now,
                    expires_at=now + ttl,
                    provider=result.provider,
                    kind=kind,
                    payload=payload.encode(result),
                    cost=cost,
                    currency=currency,
                )
            )

    def _key(self, msisdn: str) -> bytes:
        """The number's store key. A miss needs it to read and again to write the
        answer: the last KEYS_REMEMBERED are kept rather than hashed twice."""
        keys = self._keys_of
        key = keys.get(msisdn)
        if key is None:
            assert self.keyer is not None
            key = keys[msisdn] = self.keyer(msisdn)
            if len(keys) > KEYS_REMEMBERED:
                del keys[next(iter(keys))]  # the oldest
        return key

    async def forget(self, msisdn: str) -> int:
        """Everything kept for one number, memory and store (erasure builds on this)."""
        self._keys_of.pop(msisdn, None)
        self.failures.pop(msisdn)
        removed = int(self.memory.pop(msisdn) is not None)
        if self.store is not None and self.keyer is not None:
            removed = max(removed, await self.store.delete(self.keyer(msisdn)))
        return removed

    async def stats(self) -> dict[str, Any]:
        """What an operator asks `hlrd cache stats`: counts, never numbers."""
        out: dict[str, Any] = {
            "enabled": self.cfg.enabled,
            "memory_entries": len(self.memory),
            "memory_capacity": self.memory.capacity,
            "failures_remembered": len(self.failures),
            "ttl_s": dict(self.cfg.ttl_s),
            "serve_stale_s": self.cfg.serve_stale_s,
        }
        if self.store is not None:
            st, age = await self._store_stats()
            out["store"] = {
                "as_of_s_ago": round(age, 1),
                "answers": st.answers,
                "fresh": st.fresh,
                "oldest_checked_at": st.oldest_checked_at,
                "newest_checked_at": st.newest_checked_at,
                "bytes_on_disk": st.bytes_on_disk,
                "by_provider": st.by_provider,
                "by_kind": st.by_kind,
                "writes_dropped": st.writes_dropped,
            }
        return out

    async def _store_stats(self) -> tuple[StoreStats, float]:
        """The store's counts and how old they are. Counting is a scan of the table
        (~1 s at a million answers, on a reader thread): callers at the same time
        share one, and its result serves for STATS_REUSE_S (a dashboard polling it
        must not keep a reader busy)."""
        now = self.clock()
        kept = self._stats_kept
        if kept is not None and now - kept[1] < STATS_REUSE_S:
            return kept[0], now - kept[1]
        if self._stats_flight is None or self._stats_flight.done():
            assert self.store is not None
            self._stats_flight = asyncio.ensure_future(self.store.stats())
        flight = self._stats_flight
        st = await asyncio.shield(flight)
        if self._stats_flight is flight:
            self._stats_kept = (st, self.clock())
        return st, 0.0

    async def purge(self, checked_before: float | None) -> int:
        """Answers checked before an epoch time (None: all); rows removed from the store
        (or entries from memory, without a store)."""
        self.failures.purge(checked_before)
        in_memory = self.memory.purge(checked_before)
        if self.store is None:
            return in_memory
        removed = await self.store.purge(checked_before)
        self._stats_kept = self._stats_flight = None  # counts from before no longer hold
        return removed
