"""Wires config -> providers -> service -> HTTP front end, and shuts down in order.

Shutdown order matters: first stop taking lookups (new ones get 503), give those in
flight `lookup.shutdown_grace_s` to finish, then stop the providers (which fails
what is left with a clear "shutting down" result and unbinds every link), then let
the SMPP front end turn what finished into receipts and unbind its clients, and only
then close the HTTP server, so every request in flight gets an answer.

At start the descriptor limit is raised and the front ends' connection caps fitted
under it (`fd_limits.py`), and the event loop's error handler is replaced by one
that logs each kind of error once per interval, with a count and no traceback: the
default one wrote 222,033 accept() tracebacks in 30 s when descriptors ran out.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import os
import signal
import time
import traceback
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import structlog

from .cache.answers import AnswerCache
from .call_check import CallCheck
from .compliance.audit import AuditTrail
from .compliance.consent import ConsentBook
from .compliance.gate import ListGate
from .compliance.list_imports import ListImports
from .config import Config
from .fd_limits import fit_connection_caps, raise_fd_limit
from .frontends.http_api import make_app
from .frontends.http_server import HttpServer
from .frontends.smpp_server import SmppFrontend
from .jobs.manager import Jobs
from .log_budget import LogBudget
from .metrics import Metrics
from .runtime import tune_gc
from .service import LookupService
from .store.base import AnswerStore
from .store.factory import open_store
from .store.keys import NumberKeyer, load_key
from .upstream.factory import build_providers

log = structlog.get_logger("hlrd")

LoopHandler = Callable[[asyncio.AbstractEventLoop, dict[str, Any]], object]


class Daemon:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.metrics = Metrics()
        self.providers = build_providers(config, self.metrics)
        # The store is opened by start() (off the event loop); until then memory only.
        self.cache = AnswerCache(config.cache, None, None, self.metrics)
        self.service = LookupService(config, self.providers, self.metrics, self.cache)
        self.smpp_server: SmppFrontend | None = None  # built by start(), caps fitted
        self.http: HttpServer | None = None
        self.http_port = 0
        self.store: AnswerStore | None = None
        self._key_filter: asyncio.Task[None] | None = None
        self._list_watch: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.jobs: Jobs | None = None
        self.list_imports: ListImports | None = None
        # The compliance gate; start() gives it consent records and the audit trail.
        self.checker = CallCheck(self.service, self.metrics)
        self._loop_errors = LoopErrorLog()
        self._previous_loop_handler: LoopHandler | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._previous_loop_handler = loop.get_exception_handler()
        loop.set_exception_handler(self._loop_errors)
        cfg = self.config
        smpp_cfg = cfg.smpp_server
        caps = fit_connection_caps(
            cfg.http.max_connections,
            smpp_cfg.max_connections if smpp_cfg.enabled else 0,
            raise_fd_limit(),
            cfg.limits.fd_reserve,
        )
        # The key: the store's rows, the lists, consent records and the audit trail.
        secret = await asyncio.to_thread(load_key, cfg.store)
        if cfg.cache.enabled:
            # Before anything listens: a store that cannot be opened ends the start
            # with its message (StoreError), not with a daemon that forgets.
            keyer = NumberKeyer(secret)
            self.store = await open_store(cfg.store, key_check=keyer.check())
            self.cache.store, self.cache.keyer = self.store, keyer.key
            self._key_filter = asyncio.create_task(self.cache.load_key_filter())
        if cfg.lists.enabled:
            # Likewise the lists: a daemon that cannot read them would call listed people.
            gate = ListGate.for_data_dir(cfg.store.data_dir, secret, self.metrics, cfg.lists.stale)
            await gate.load()
            self.service.gate = gate
            self._list_watch = asyncio.create_task(gate.watch(cfg.lists.reload_s))
        # Consent and the audit trail do not depend on the lists: a daemon without
        # lists still keeps the consent its policies need and records its decisions.
        await self._start_compliance(secret)
        for p in self.providers:
            await p.start()
        self.jobs = Jobs(
            Path(cfg.store.data_dir) / "jobs",
            self.checker,
            self.store.flush if self.store is not None else None,
            cfg.compliance.jobs_retention_days * 86400,
            cfg.compliance.jobs_webhook_secret,
        )
        self.checker.erasers["job_rows"] = self.jobs.erase
        if self.service.gate is not None:
            self.list_imports = ListImports(self.service.gate, cfg.numbers.default_region)
        app = make_app(
            self.service,
            self.metrics,
            cfg.http.auth_tokens,
            self.checker,
            self.jobs,
            self.list_imports,
        )
        self.http = HttpServer(app, cfg.http, self.metrics, caps.http)
        async with self._listening("HTTP", cfg.http.host, cfg.http.port, "http"):
            await self.http.start()
        self.http_port = self.http.port
        if smpp_cfg.enabled:
            smpp_cfg = dataclasses.replace(smpp_cfg, max_connections=caps.smpp)
            self.smpp_server = SmppFrontend(
                smpp_cfg, self.service, self.metrics, checker=self.checker
            )
            async with self._listening("SMPP", smpp_cfg.host, smpp_cfg.port, "smpp_server"):
                await self.smpp_server.start()
        await self.jobs.start()  # a job that was running goes on where it stopped
        log.info(
            "hlrd.started",
            http=f"http://{self.config.http.host}:{self.http_port}",
            providers=[p.where for p in self.providers],
            http_max_connections=caps.http,
        )

    async def _start_compliance(self, secret: bytes) -> None:
        """Consent records and the audit trail, beside the lists (the same key)."""
        cfg = self.config
        data_dir = Path(cfg.store.data_dir)
        keyer = NumberKeyer(secret)
        self.service.imsi_keyer = keyer.imsi_key
        consent = ConsentBook(data_dir / "consent.sqlite3", keyer)
        await asyncio.to_thread(consent.load)
        self.metrics.consent_records.set_function(consent.__len__)
        audit = None
        if cfg.compliance.audit:
            audit = AuditTrail.for_data_dir(
                data_dir, secret, max_pending=cfg.compliance.audit_max_pending
            )
            self.metrics.audit_pending.set_function(lambda: audit.pending)
            self.metrics.before_render.append(_AuditCounts(audit, self.metrics))
            self._tasks.append(asyncio.create_task(audit.run(cfg.compliance.audit_flush_s)))
        self.checker = CallCheck(
            self.service, self.metrics, self.service.gate, consent, audit, keyer
        )
        # Country zones and holidays are worked out once, not on a dialer's first check.
        year = time.gmtime().tm_year
        for hours in self.checker.hours():
            await asyncio.to_thread(hours.preload, (year, year + 1))
        self._tasks.append(asyncio.create_task(self._housekeeping()))

    async def _housekeeping(self) -> None:
        """Hourly: the audit trail's retention, consent held past its legal hold."""
        cfg = self.config.compliance
        checker = self.checker
        while True:
            try:
                if checker.audit is not None:
                    before = time.time() - cfg.audit_retention_days * 86400
                    pruned = await asyncio.to_thread(checker.audit.prune, before)
                    if pruned:
                        log.info("audit.pruned", records=pruned)
                if checker.consent is not None:
                    await asyncio.to_thread(checker.consent.purge_expired_holds)
                if self.jobs is not None:
                    await self.jobs.expire()
            except Exception as exc:  # the disk's trouble: logged, tried again next hour
                log.error("compliance.housekeeping_failed", error=type(exc).__name__)
            await asyncio.sleep(3600)

    @contextlib.asynccontextmanager
    async def _listening(
        self, what: str, host: str, port: int, section: str
    ) -> AsyncIterator[None]:
        """A port that cannot be had ends the start with one clear line, not a traceback,
        after undoing what was started."""
        try:
            yield
        except OSError as exc:
            err = ListenError(what, host, port, section, exc)
            log.error("hlrd.listen_failed", frontend=what, address=f"{host}:{port}", reason=err.why)
            await self.stop()
            raise err from exc

    async def stop(self) -> None:
        grace = self.config.lookup.shutdown_grace_s
        log.info("hlrd.stopping", in_flight=self.service.in_flight, grace_s=grace)
        if self.jobs is not None:
            await self.jobs.stop()  # resumable: a job goes on at its next start
        if self.list_imports is not None:
            await self.list_imports.stop()  # its thread ends the file it writes
        await self.service.drain(grace)
        for p in self.providers:
            await p.stop()
        await self.service.drain(1.0)  # let failed lookups reach their HTTP handlers
        if self.smpp_server is not None:
            await self.smpp_server.stop()
        if self.http is not None:
            await self.http.stop()
        for task in (self._key_filter, self._list_watch, *self._tasks):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self.checker.audit is not None:
            with contextlib.suppress(Exception):  # close() logged what it could not write
                await self.checker.audit.close()
        if self.store is not None:
            await self.store.close()  # what is queued is written first
            self.store = None
        asyncio.get_running_loop().set_exception_handler(self._previous_loop_handler)
        log.info("hlrd.stopped")

    async def run_until_signalled(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await self.start()
        tune_gc()
        ready = loop.create_task(self._announce_ready())
        await stop.wait()
        ready.cancel()
        await self.stop()

    async def _announce_ready(self) -> None:
        """One log line when the first upstream bind is up: scripts wait for it."""
        await self.service.wait_ready()
        log.info(
            "hlrd.ready",
            http=f"http://{self.config.http.host}:{self.http_port}",
            smpp=self.smpp_server.port if self.smpp_server is not None else None,
        )


class _AuditCounts:
    """The audit trail counts in its writer thread; the counters take the growth."""

    def __init__(self, audit: AuditTrail, metrics: Metrics) -> None:
        self.audit, self.metrics = audit, metrics
        self.written = self.failures = 0

    def __call__(self) -> None:
        a, m = self.audit, self.metrics
        written, failures = a.written, a.write_failures
        m.audit_records.inc(max(0, written - self.written))
        m.audit_failures.inc(max(0, failures - self.failures))
        self.written, self.failures = written, failures


class ListenError(Exception):
    """A front end could not listen on its address; the message says what to change."""

    _HINTS = {
        errno.EADDRINUSE: "address already in use (another hlrd running? change {key})",
        errno.EACCES: "permission denied (ports below 1024 need privileges; change {key})",
        errno.EADDRNOTAVAIL: "this host has no such address (change {section}.host)",
    }

    def __init__(self, what: str, host: str, port: int, section: str, exc: OSError) -> None:
        hint = self._HINTS.get(exc.errno or 0)
        key = f"{section}.port"
        self.why = (
            hint.format(key=key, section=section) if hint else (exc.strerror or str(exc)).lower()
        )
        super().__init__(f"cannot listen for {what} on {host}:{port}: {self.why}")


class LoopErrorLog:
    """The event loop's exception handler: one line per kind of error and interval.

    The kind is the message's leading plain words ("socket.accept() out of system
    resource", "Exception in callback"); what follows them can quote a callback's
    arguments, so it is dropped, as is the traceback. The error's type, errno and
    the place it was raised stay: enough to find the bug without the data.
    """

    MAX_KINDS = 32

    def __init__(self, interval_s: float = 10.0) -> None:
        self.interval_s = interval_s
        self._budgets: dict[str, LogBudget] = {}

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        kind = _kind(str(context.get("message") or ""))
        budget = self._budgets.get(kind)
        if budget is None:
            if len(self._budgets) >= self.MAX_KINDS:
                kind = "other"
            budget = self._budgets.setdefault(kind, LogBudget(1, self.interval_s))
        suppressed = budget.take()
        if suppressed is None:
            return
        exc = context.get("exception")
        log.error(
            "loop.error",
            kind=kind,
            error=type(exc).__name__ if exc is not None else None,
            errno=getattr(exc, "errno", None),
            where=_raised_at(exc),
            suppressed=suppressed,
        )


def _kind(message: str) -> str:
    words: list[str] = []
    for word in message.split():
        if not all(c.isalpha() or c in "._()" for c in word) or len(words) == 8:
            break
        words.append(word)
    return " ".join(words) or "other"


def _raised_at(exc: object) -> str | None:
    if not isinstance(exc, BaseException) or exc.__traceback__ is None:
        return None
    last = traceback.extract_tb(exc.__traceback__)[-1]
    return f"{os.path.basename(last.filename)}:{last.lineno}"
