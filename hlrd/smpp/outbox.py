"""Receipt delivery for the SMSC role: to the right bind, retried, kept while unbound.

Both the simulator and hlrd's own SMPP front end owe their clients receipts. A
receipt goes to a receiver-capable bind (receiver or transceiver) of the account it
belongs to — preferably the link the lookup came in on. One the client does not
acknowledge with deliver_sm_resp is retried; one for an account with no receiver
bound is kept (bounded, with a TTL) and delivered when the account binds again.
Nothing is dropped before its TTL except by the bounds: `max_pending` per account
for parked receipts and per link for its backlog (a client that never acknowledges
must cost bounded memory; the SMPP front end also stops taking that account's
lookups before either bound is reached).

Delivery is driven by callbacks, not a task per receipt: a receipt goes out when
its link has a free window slot, else waits in that link's backlog, which the link's
handler drains from `slot_freed()`.
"""

from __future__ import annotations

import asyncio
import functools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from ..log_budget import LogBudget
from .constants import Status
from .errors import SmppError
from .pdu import DeliverSm, Pdu
from .transport import SmppConnection

log = structlog.get_logger("hlrd.smpp.outbox")

EVENTS = ("sent", "acked", "retried", "expired", "overflowed")  # what the listener hears


@dataclass(slots=True)
class OutboxStats:
    sent: int = 0  # deliver_sm sent (each attempt)
    acked: int = 0  # deliver_sm_resp with ESME_ROK
    retried: int = 0
    expired: int = 0  # dropped at TTL
    overflowed: int = 0  # dropped because a queue (parked or backlog) was full


@dataclass(slots=True, eq=False)  # identity: a key of the timers dict
class _Item:
    account: str
    receipt: DeliverSm
    deadline: float


class ReceiptOutbox:
    def __init__(
        self,
        max_pending: int = 10_000,
        ttl_s: float = 3600.0,
        retry_delay_s: float = 1.0,
        listener: Callable[[str, str], None] | None = None,
    ) -> None:
        """`listener(account, event)` hears "sent", "acked", "retried", "expired" and
        "overflowed"."""
        self.max_pending = max_pending
        self.ttl_s = ttl_s
        self.retry_delay_s = retry_delay_s
        self.stats = OutboxStats()
        self._listener = listener
        self._loop = asyncio.get_running_loop()
        self._receivers: dict[str, list[SmppConnection]] = {}
        self._parked: dict[str, deque[_Item]] = {}
        self._backlog: dict[SmppConnection, deque[_Item]] = {}  # waiting for a window slot
        self._timers: dict[_Item, asyncio.TimerHandle] = {}  # waiting to be (re)sent
        self.in_delivery: dict[str, int] = {}  # account -> receipts on their way
        self._retry_logs: dict[str, LogBudget] = {}  # per account: one line per retry is a flood

    def pending(self, account: str | None = None) -> int:
        """Receipts not yet acknowledged: parked or being delivered."""
        if account is not None:
            return len(self._parked.get(account, ())) + self.in_delivery.get(account, 0)
        return sum(len(q) for q in self._parked.values()) + sum(self.in_delivery.values())

    # -- receivers ---------------------------------------------------------------------

    def attach(self, account: str, conn: SmppConnection) -> None:
        """A receiver-capable bind is up: it gets the account's parked receipts."""
        self._receivers.setdefault(account, []).append(conn)
        queue = self._parked.pop(account, None)
        now = self._loop.time()
        while queue:
            item = queue.popleft()
            if item.deadline <= now:
                self._count(item.account, "expired")
                continue
            self.in_delivery[account] = self.in_delivery.get(account, 0) + 1
            self._attempt(item, conn)

    def detach(self, account: str, conn: SmppConnection) -> None:
        conns = self._receivers.get(account)
        if conns and conn in conns:
            conns.remove(conn)
        for item in self._backlog.pop(conn, ()):
            self._attempt(item, None)

    def receiver(self, account: str, prefer: SmppConnection | None = None) -> SmppConnection | None:
        conns = [c for c in self._receivers.get(account, ()) if not c.closing]
        if prefer is not None and prefer in conns:
            return prefer
        return conns[0] if conns else None

    # -- sending -----------------------------------------------------------------------

    def send(
        self,
        account: str,
        receipt: DeliverSm,
        prefer: SmppConnection | None = None,
        delay_s: float = 0.0,
    ) -> None:
        item = _Item(account, receipt, self._loop.time() + delay_s + self.ttl_s)
        self.in_delivery[account] = self.in_delivery.get(account, 0) + 1
        if delay_s > 0:
            self._later(delay_s, item, prefer)
        else:
            self._attempt(item, prefer)

    def slot_freed(self, conn: SmppConnection) -> None:
        """The link's window has room again: send what waits for it."""
        queue = self._backlog.get(conn)
        if queue is None:
            return
        while queue and conn.free_slots > 0 and not conn.closing:
            self._send(queue.popleft(), conn)
        if not queue:
            del self._backlog[conn]

    def _later(self, delay_s: float, item: _Item, prefer: SmppConnection | None) -> None:
        # No closure over its own handle: that cycle kept every delayed receipt alive
        # until a garbage collection, which then took tens of milliseconds.
        self._timers[item] = self._loop.call_later(delay_s, self._fire, item, prefer)

    def _fire(self, item: _Item, prefer: SmppConnection | None) -> None:
        del self._timers[item]
        self._attempt(item, prefer)

    def _attempt(self, item: _Item, prefer: SmppConnection | None) -> None:
        if self._loop.time() >= item.deadline:
            self._done(item, "expired")
            return
        conn = self.receiver(item.account, prefer)
        if conn is None:
            self._park(item)
            self.in_delivery[item.account] -= 1  # parked, no longer on its way
            return
        if conn.free_slots <= 0 or conn in self._backlog:
            backlog = self._backlog.setdefault(conn, deque())
            if len(backlog) >= self.max_pending:
                self._done(backlog.popleft(), "overflowed")
            backlog.append(item)
            return
        self._send(item, conn)

    def _send(self, item: _Item, conn: SmppConnection) -> None:
        item.receipt.sequence = 0  # a fresh sequence number for every attempt
        self._count(item.account, "sent")
        try:
            conn.send_request(item.receipt, functools.partial(self._answered, item), windowed=True)
        except SmppError as exc:
            self._retry(item, type(exc).__name__)

    def _answered(self, item: _Item, resp: Pdu | None, exc: Exception | None) -> None:
        if resp is not None and resp.status == Status.ESME_ROK:
            self._done(item, "acked")
            return
        self._retry(item, type(exc).__name__ if resp is None else f"status {resp.status}")

    def _retry(self, item: _Item, why: str) -> None:
        self._count(item.account, "retried")
        budget = self._retry_logs.get(item.account)
        if budget is None:
            budget = self._retry_logs[item.account] = LogBudget(burst=5, interval_s=10.0)
        if (suppressed := budget.take()) is not None:
            log.info("outbox.retry", account=item.account, why=why, suppressed=suppressed)
        self._later(self.retry_delay_s, item, None)

    def _done(self, item: _Item, event: str) -> None:
        self.in_delivery[item.account] -= 1
        self._count(item.account, event)

    def _count(self, account: str, event: str) -> None:
        setattr(self.stats, event, getattr(self.stats, event) + 1)
        if self._listener is not None:
            self._listener(account, event)

    def _park(self, item: _Item) -> None:
        queue = self._parked.setdefault(item.account, deque())
        if len(queue) >= self.max_pending:
            self._count(queue.popleft().account, "overflowed")
        queue.append(item)

    async def close(self) -> None:
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        self._backlog.clear()
