"""hlrd as an SMPP HLR endpoint: a drop-in for the providers call centers already use.

A platform binds (transceiver, or transmitter + receiver for the same system_id),
submits one submit_sm per number, gets submit_sm_resp at once with a message id, and
reads the answer from the delivery receipt. Flow control is per account: beyond its
window of lookups in flight a submit gets ESME_RMSGQFUL, beyond its rate
ESME_RTHROTTLED. Receipts go through the shared outbox: retried until acknowledged,
kept while the account has no receiver bound.

One peer, bound or not, costs a bounded share of the daemon: connections are capped
in total and per address, a connection must bind within `bind_timeout_s`, refused
PDUs and failed binds spend an error budget (a few before bind, a rate after) that
closes the connection when spent, an address with repeated failed binds is locked
out for a while (bind_guard), and an account whose receipts go unacknowledged gets
ESME_RMSGQFUL once `max_pending_receipts` of them (with its lookups in flight) wait.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import ipaddress
import itertools
import ssl
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog
from prometheus_client import Counter, Gauge

from ..call_check import Answer, CallCheck
from ..config import SmppAccount, SmppServerConfig
from ..domain.masking import mask_msisdn
from ..domain.numbers import InvalidNumber, Msisdn
from ..domain.result import LookupResult, Outcome
from ..log_budget import LogBudget
from ..metrics import Metrics
from ..service import LookupService, ShuttingDown
from ..smpp.constants import CommandId, MessageState, Status
from ..smpp.flow import TokenBucket
from ..smpp.outbox import EVENTS as OUTBOX_EVENTS
from ..smpp.outbox import ReceiptOutbox
from ..smpp.pdu import Bind, Pdu, QuerySm, QuerySmResp, SubmitSm, SubmitSmResp, make_response
from ..smpp.receipts import STAT_TO_STATE
from ..smpp.transport import MISBEHAVIOUR_REASONS, Handler, LinkConfig, SmppConnection, serve
from .bind_guard import BindGuard
from .conn_limits import ConnectionLimiter
from .smpp_receipts import build_receipt, stat_and_err

log = structlog.get_logger("hlrd.smpp_server")

MAX_REMEMBERED = 100_000
FRONTEND = "smpp"
UNKNOWN_ACCOUNT = "?"  # a bind whose system_id is no account's, or from a locked-out address
# (status, reason) of failed binds, for a known account and for UNKNOWN_ACCOUNT.
_ACCOUNT_BIND_FAILURES = (
    (Status.ESME_RINVPASWD, "wrong_password"),
    (Status.ESME_RBINDFAIL, "address_not_allowed"),
    (Status.ESME_RBINDFAIL, "too_many_binds"),
)
_UNKNOWN_BIND_FAILURES = (
    (Status.ESME_RINVSYSID, "unknown_system_id"),
    (Status.ESME_RBINDFAIL, "locked_out"),
)
_SUBMIT_REFUSALS = (Status.ESME_RMSGQFUL, Status.ESME_RINVDSTADR)


@dataclass
class _AccountState:
    account: SmppAccount
    bucket: TokenBucket
    in_flight: int = 0
    binds: set[SmppConnection] = field(default_factory=set)


class _ServerMetrics:
    def __init__(self, metrics: Metrics) -> None:
        self.child = metrics.child
        r = metrics.registry
        self.binds = Gauge("hlrd_smpp_server_binds", "Bound client links", ["account"], registry=r)
        self.submits = Counter(
            "hlrd_smpp_server_submits", "Lookups submitted", ["account"], registry=r
        )
        self.receipts = Counter(
            "hlrd_smpp_server_receipts",
            "Receipt events: sent, acked, retried, expired",
            ["account", "event"],
            registry=r,
        )
        self.pending = Gauge(
            "hlrd_smpp_server_receipts_pending",
            "Receipts not yet acknowledged",
            ["account"],
            registry=r,
        )
        self.throttled = Counter(
            "hlrd_smpp_server_throttled", "Submits refused for rate", ["account"], registry=r
        )
        self.rejected = Counter(
            "hlrd_smpp_server_rejected",
            "Binds and submits refused, by command_status",
            ["account", "status"],
            registry=r,
        )
        self.bind_failures = Counter(
            "hlrd_smpp_server_bind_failures",
            "Failed binds, by account (? when unknown) and reason: unknown_system_id, "
            "wrong_password, address_not_allowed, too_many_binds, locked_out",
            ["account", "reason"],
            registry=r,
        )
        self.lockouts = Counter(
            "hlrd_smpp_server_bind_lockouts",
            "Addresses locked out for bind_failure_window_s after max_bind_failures",
            registry=r,
        )
        self.connections = metrics.connections
        self.refused = metrics.connections_refused
        self.closed = metrics.connections_closed
        self._metrics = metrics

    def create_series(self, accounts: list[str]) -> None:
        """Every series the front end can count, at 0 from the start."""
        m = self._metrics
        m.touch_each(self.refused, (FRONTEND,), ConnectionLimiter.REASONS)
        m.touch_each(self.closed, (FRONTEND,), MISBEHAVIOUR_REASONS)
        for name in accounts:
            m.touch(self.submits, name)
            m.touch(self.throttled, name)
            m.touch_each(self.receipts, (name,), OUTBOX_EVENTS)
            m.touch_each(self.rejected, (name,), {s.name for s in _SUBMIT_REFUSALS})
            for status, reason in _ACCOUNT_BIND_FAILURES:
                m.touch(self.rejected, name, status.name)
                m.touch(self.bind_failures, name, reason)
        for status, reason in _UNKNOWN_BIND_FAILURES:
            m.touch(self.rejected, UNKNOWN_ACCOUNT, status.name)
            m.touch(self.bind_failures, UNKNOWN_ACCOUNT, reason)


class SmppFrontend:
    def __init__(
        self,
        config: SmppServerConfig,
        service: LookupService,
        metrics: Metrics,
        clock: Callable[[], float] = time.monotonic,
        checker: CallCheck | None = None,
    ) -> None:
        self.config = config
        self.service = service
        # Each account's policy: its receipts carry the gate's decision.
        self.checker = checker if checker is not None else CallCheck(service, metrics)
        self.clock = clock  # error buckets and bind lockouts; tests move it
        self.m = _ServerMetrics(metrics)
        self.accounts = {a.system_id: _AccountState(a, TokenBucket(a.tps)) for a in config.accounts}
        for name, state in self.accounts.items():
            self.m.binds.labels(name).set_function(functools.partial(_bind_count, state))
        self.m.create_series(list(self.accounts))
        self.outbox: ReceiptOutbox | None = None
        self.limiter = ConnectionLimiter(
            config.max_connections, config.max_connections_per_ip, self._refused
        )
        self.m.connections.labels(FRONTEND).set_function(lambda: self.limiter.total)
        self.bind_guard = BindGuard(
            config.max_bind_failures, config.bind_failure_window_s, self._now
        )
        self.link = LinkConfig(
            window=64,
            enquire_link_interval=0.0,
            inactivity_timeout=config.inactivity_timeout_s,
            bind_timeout=config.bind_timeout_s,
            max_errors_unbound=config.max_errors_before_bind,
            max_errors_per_minute=config.max_errors_per_minute,
            pause_reading_when_blocked=True,
            clock=self._now,
        )
        self._server: asyncio.Server | None = None
        self._ids = itertools.count(int(time.time() * 1000) % 10**12 * 1000)
        # message id -> (account, state, error); bounded, for query_sm
        self.states: OrderedDict[str, tuple[str, MessageState, int]] = OrderedDict()
        self.connections: set[SmppConnection] = set()
        self.port = 0
        # Lines about peers not bound (failed binds above all) share one budget: a
        # guesser opens a connection per guess, so a budget per connection is none.
        self.unbound_log = LogBudget(burst=20, interval_s=10.0)

    async def start(self) -> None:
        self.outbox = ReceiptOutbox(
            max_pending=self.config.max_pending_receipts,
            ttl_s=self.config.receipt_ttl_s,
            retry_delay_s=self.config.receipt_retry_s,
            listener=self._on_outbox,
        )
        outbox = self.outbox
        for name in self.accounts:
            self.m.pending.labels(name).set_function(functools.partial(outbox.pending, name))
        ctx = None
        if self.config.tls_cert:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(self.config.tls_cert, self.config.tls_key)
        self._server = await serve(
            lambda: _ClientHandler(self), self.config.host, self.config.port, self.link, ctx
        )
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("smpp_server.listening", address=f"{self.config.host}:{self.port}", tls=bool(ctx))

    async def stop(self) -> None:
        """Stop listening, let lookups in flight become receipts, then unbind clients."""
        if self._server is not None:
            self._server.close()
        # Lookups in flight are the service's: the daemon drains it before this, and
        # each one's receipt is in the outbox as soon as it completes.
        await asyncio.gather(*(c.close() for c in list(self.connections)), return_exceptions=True)
        if self.outbox is not None:
            await self.outbox.close()
        if self._server is not None:
            await self._server.wait_closed()

    def _now(self) -> float:
        return self.clock()

    def _refused(self, reason: str) -> None:
        self.m.child(self.m.refused, FRONTEND, reason).inc()

    def _on_outbox(self, account: str, event: str) -> None:
        self.m.child(self.m.receipts, account, event).inc()

    def next_message_id(self) -> str:
        """Decimal ids: every ESME (Kannel's msg-id-type included) reads them the same."""
        return str(next(self._ids))

    def remember(self, message_id: str, account: str, state: MessageState, error: int) -> None:
        self.states[message_id] = (account, state, error)
        self.states.move_to_end(message_id)
        while len(self.states) > MAX_REMEMBERED:
            self.states.popitem(last=False)


class _ClientHandler(Handler):
    def __init__(self, server: SmppFrontend) -> None:
        self.server = server
        self.state: _AccountState | None = None
        self.ip = "?"
        self.admitted = False
        self.bound_log = LogBudget(burst=5, interval_s=10.0)  # lines about this bound peer

    def connection_made(self, conn: SmppConnection) -> None:
        self.ip = conn.peer.rsplit(":", 1)[0]
        if self.server.limiter.admit(self.ip) is not None:
            conn.abort()  # refused: closed at once, before it costs anything more
            return
        self.admitted = True
        self.server.connections.add(conn)

    def log_take(self) -> int | None:
        """Whether a line about this peer may be written (None: no), per LogBudget."""
        if self.state is None:
            return self.server.unbound_log.take()
        return self.bound_log.take()

    def misbehaved(self, conn: SmppConnection, reason: str) -> None:
        self.server.m.child(self.server.m.closed, FRONTEND, reason).inc()

    def connection_lost(self, conn: SmppConnection, exc: Exception | None) -> None:
        if not self.admitted:
            return
        self.admitted = False
        self.server.limiter.release(self.ip)
        self.server.connections.discard(conn)
        if self.state is not None:
            self.state.binds.discard(conn)
            assert self.server.outbox is not None
            self.server.outbox.detach(self.state.account.system_id, conn)

    def slot_freed(self, conn: SmppConnection) -> None:
        if self.server.outbox is not None:
            self.server.outbox.slot_freed(conn)

    def handle_request(self, conn: SmppConnection, pdu: Pdu) -> Pdu | None:
        if isinstance(pdu, SubmitSm):
            return self._submit(conn, pdu)
        if isinstance(pdu, Bind):
            return self._bind(conn, pdu)
        if isinstance(pdu, QuerySm):
            return self._query(pdu)
        return make_response(pdu, Status.ESME_RINVCMDID)

    def _refuse(self, pdu: Pdu, status: Status, account: str, why: str, peer: str) -> Pdu:
        self.server.m.child(self.server.m.rejected, account, status.name).inc()
        if (suppressed := self.log_take()) is not None:
            log.warning(
                "smpp_server.refused",
                account=account,
                peer=peer,
                status=status.name,
                why=why,
                suppressed=suppressed,
            )
        return make_response(pdu, status)

    def _bind(self, conn: SmppConnection, pdu: Bind) -> Pdu | None:
        server = self.server
        if server.bind_guard.locked(self.ip):
            # Even the right password: a guesser must learn nothing while locked out.
            return self._bind_failed(
                conn, pdu, Status.ESME_RBINDFAIL, UNKNOWN_ACCOUNT, "locked_out"
            )
        state = server.accounts.get(pdu.system_id)
        if state is None:
            return self._bind_failed(
                conn, pdu, Status.ESME_RINVSYSID, UNKNOWN_ACCOUNT, "unknown_system_id"
            )
        account = state.account
        name = account.system_id
        if not hmac.compare_digest(pdu.password.encode(), account.password.encode()):
            return self._bind_failed(conn, pdu, Status.ESME_RINVPASWD, name, "wrong_password")
        if account.allowed_ips and not _ip_allowed(self.ip, account.allowed_ips):
            return self._bind_failed(conn, pdu, Status.ESME_RBINDFAIL, name, "address_not_allowed")
        if len(state.binds) >= account.max_binds:
            return self._bind_failed(conn, pdu, Status.ESME_RBINDFAIL, name, "too_many_binds")
        self.state = state
        state.binds.add(conn)
        conn.respond(make_response(pdu, system_id="hlrd"))
        if pdu.command_id != CommandId.BIND_TRANSMITTER:
            assert server.outbox is not None
            server.outbox.attach(name, conn)  # after the bind_resp: parked receipts follow
        log.info("smpp_server.bound", account=name, peer=conn.peer, bind=pdu.command_name)
        return None

    def _bind_failed(
        self, conn: SmppConnection, pdu: Bind, status: Status, account: str, reason: str
    ) -> Pdu:
        """Count, maybe lock the address out, spend the connection's error budget.

        Only wrong credentials count towards a lockout: "too many binds" or a foreign
        address are configuration, and a client reconnecting fast must not lock
        itself out.
        """
        m = self.server.m
        m.child(m.bind_failures, account, reason).inc()
        if reason in ("unknown_system_id", "wrong_password") and self.server.bind_guard.failed(
            self.ip
        ):
            m.lockouts.inc()
            log.warning(
                "smpp_server.bind_lockout",
                peer=self.ip,
                failures=self.server.bind_guard.max_failures,
                for_s=self.server.bind_guard.window_s,
            )
        answer = self._refuse(pdu, status, account, reason, conn.peer)
        conn.charge_error()  # the answer still goes out if this closes the link
        return answer

    def _submit(self, conn: SmppConnection, pdu: SubmitSm) -> Pdu | None:
        state = self.state
        assert state is not None  # the session refuses submit_sm before bind
        server = self.server
        account = state.account
        name = account.system_id
        server.m.child(server.m.submits, name).inc()
        if state.in_flight >= account.window:
            return self._refuse(pdu, Status.ESME_RMSGQFUL, name, "window full", conn.peer)
        assert server.outbox is not None
        if server.outbox.pending(name) + state.in_flight >= server.config.max_pending_receipts:
            # The client is not acknowledging its receipts: every lookup more would be
            # one more receipt held in memory for it.
            return self._refuse(pdu, Status.ESME_RMSGQFUL, name, "receipts pending", conn.peer)
        if not state.bucket.take():
            server.m.child(server.m.throttled, name).inc()
            return make_response(pdu, Status.ESME_RTHROTTLED)
        try:
            msisdn = server.service.normalize(pdu.destination_addr)
        except InvalidNumber as exc:
            if account.reject_invalid:
                return self._refuse(pdu, Status.ESME_RINVDSTADR, name, exc.problem, conn.peer)
            msisdn = None
        message_id = server.next_message_id()
        server.remember(message_id, name, MessageState.ENROUTE, 0)
        resp = SubmitSmResp(sequence=pdu.sequence, message_id=message_id)
        receipt_for = functools.partial(self._receipt, conn, pdu, message_id)
        answer: Answer | None = None
        if msisdn is not None:
            checker = server.checker
            policy = checker.policies[account.policy]
            cleared = checker.before(msisdn, policy, message_id, "smpp")
            if isinstance(cleared, Answer):  # the gate stopped it: no lookup
                result: LookupResult | None = None
                answer = cleared
            else:
                try:
                    # The platform's id for this lookup goes into its log lines.
                    lookup = server.service.begin(
                        msisdn,
                        trace={"message_id": message_id},
                        max_age=account.max_age_s,
                        policy=policy.roaming,
                    )
                except ShuttingDown:
                    result = _not_looked_up(msisdn, "hlrd is shutting down")
                else:
                    state.in_flight += 1
                    decided = functools.partial(
                        checker.after,
                        msisdn,
                        policy,
                        cleared,
                        decision_id=message_id,
                        source="smpp",
                    )
                    lookup.add_done_callback(
                        functools.partial(self._answered, receipt_for, msisdn, decided)
                    )
                    return resp
        else:
            result = None
            if (suppressed := self.log_take()) is not None:
                log.info(
                    "smpp_server.invalid_number",
                    account=name,
                    message_id=message_id,  # its REJECTD receipt carries this id
                    number=mask_msisdn(pdu.destination_addr),
                    suppressed=suppressed,
                )
        # Answered at once: the submit_sm_resp must go out first, or the client cannot
        # match the receipt to a message id it does not know yet.
        conn.respond(resp)
        receipt_for(result, answer)
        return None

    def _answered(
        self,
        receipt_for: Callable[[LookupResult | None, Answer | None], None],
        msisdn: Msisdn,
        decided: Callable[[LookupResult], Answer],
        lookup: asyncio.Future[LookupResult],
    ) -> None:
        assert self.state is not None
        self.state.in_flight -= 1
        if lookup.cancelled():
            result = _not_looked_up(msisdn, "lookup cancelled")
        elif (exc := lookup.exception()) is not None:
            log.error("smpp_server.lookup_failed", error=type(exc).__name__)
            result = _not_looked_up(msisdn, "internal error")
        else:
            result = lookup.result()
        try:
            receipt_for(result, decided(result))
        except Exception as exc:  # a receipt we cannot build must not vanish silently
            if (suppressed := self.log_take()) is not None:
                log.error(
                    "smpp_server.receipt_failed", error=type(exc).__name__, suppressed=suppressed
                )

    def _receipt(
        self,
        conn: SmppConnection,
        pdu: SubmitSm,
        message_id: str,
        result: LookupResult | None,
        answer: Answer | None = None,
    ) -> None:
        """Send the receipt (neither: the number was not valid, REJECTD err:901)."""
        state = self.state
        assert state is not None
        server = self.server
        receipt = build_receipt(pdu, message_id, result, state.account, answer)
        stat, err = stat_and_err(result, answer)
        server.remember(message_id, state.account.system_id, STAT_TO_STATE[stat], err)
        assert server.outbox is not None
        server.outbox.send(state.account.system_id, receipt, prefer=conn)

    def _query(self, pdu: QuerySm) -> Pdu:
        known = self.server.states.get(pdu.message_id)
        if known is None or self.state is None or known[0] != self.state.account.system_id:
            return make_response(pdu, Status.ESME_RQUERYFAIL)
        _, state, error = known
        return QuerySmResp(
            sequence=pdu.sequence,
            message_id=pdu.message_id,
            message_state=int(state),
            error_code=min(error, 255),
        )


def _not_looked_up(msisdn: Msisdn, why: str) -> LookupResult:
    return LookupResult(
        lookup_id="",
        msisdn=msisdn.e164,
        provider="none",
        transport="none",
        outcome=Outcome.FAILED,
        error=why,
    )


def _bind_count(state: _AccountState) -> int:
    return len(state.binds)


def _ip_allowed(ip: str, networks: tuple[str, ...]) -> bool:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(addr in ipaddress.ip_network(n, strict=False) for n in networks)
