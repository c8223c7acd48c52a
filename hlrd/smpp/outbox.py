"""Receipt delivery for the SMSC role: to the right bind, retried, kept while unbound.

Both the simulator and hlrd's own SMPP front end owe their clients receipts. A
receipt goes to a receiver-capable bind (receiver or transceiver) of the account it
belongs to — preferably the link the lookup came in on. One the client does not
acknowledge with deliver_sm_resp is retried; one for an account with no receiver
bound is kept (bounded, with a TTL) and delivered when the account binds again.
Nothing is dropped before its TTL except by the bound on the queue.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import structlog

from .constants import Status
from .errors import SmppError
from .pdu import DeliverSm
from .transport import SmppConnection

log = structlog.get_logger("hlrd.smpp.outbox")


@dataclass(slots=True)
class OutboxStats:
    sent: int = 0  # deliver_sm sent (each attempt)
    acked: int = 0  # deliver_sm_resp with ESME_ROK
    retried: int = 0
    expired: int = 0  # dropped at TTL
    overflowed: int = 0  # dropped because the queue was full


@dataclass(slots=True)
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
        """`listener(account, event)` hears "sent", "acked", "retried" and "expired"."""
        self.max_pending = max_pending
        self.ttl_s = ttl_s
        self.retry_delay_s = retry_delay_s
        self.stats = OutboxStats()
        self._listener = listener
        self._loop = asyncio.get_running_loop()
        self._receivers: dict[str, list[SmppConnection]] = {}
        self._parked: dict[str, deque[_Item]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._timers: set[asyncio.TimerHandle] = set()
        self.in_delivery: dict[str, int] = {}  # account -> receipts on their way

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
            self._start(item, conn)

    def detach(self, account: str, conn: SmppConnection) -> None:
        conns = self._receivers.get(account)
        if conns and conn in conns:
            conns.remove(conn)

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
        if delay_s > 0:

            def fire() -> None:
                self._timers.discard(handle)
                self._start(item, prefer)

            handle = self._loop.call_later(delay_s, fire)
            self._timers.add(handle)
        else:
            self._start(item, prefer)

    def _start(self, item: _Item, prefer: SmppConnection | None) -> None:
        self.in_delivery[item.account] = self.in_delivery.get(item.account, 0) + 1
        self._spawn(self._deliver(item, prefer))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, item: _Item, prefer: SmppConnection | None) -> None:
        try:
            while self._loop.time() < item.deadline:
                conn = self.receiver(item.account, prefer)
                if conn is None:
                    self._park(item)
                    return
                item.receipt.sequence = 0  # a fresh sequence number for every attempt
                self._count(item.account, "sent")
                try:
                    resp = await conn.request(item.receipt)
                    if resp.status == Status.ESME_ROK:
                        self._count(item.account, "acked")
                        return
                    why = f"status {resp.status}"
                except SmppError as exc:
                    why = type(exc).__name__
                self._count(item.account, "retried")
                log.info("outbox.retry", account=item.account, why=why)
                prefer = None
                await asyncio.sleep(self.retry_delay_s)
            self._count(item.account, "expired")
        finally:
            self.in_delivery[item.account] -= 1

    def _count(self, account: str, event: str) -> None:
        setattr(self.stats, event, getattr(self.stats, event) + 1)
        if self._listener is not None:
            self._listener(account, event)

    def _park(self, item: _Item) -> None:
        queue = self._parked.setdefault(item.account, deque())
        if len(queue) >= self.max_pending:
            queue.popleft()
            self.stats.overflowed += 1
        queue.append(item)

    async def close(self) -> None:
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
