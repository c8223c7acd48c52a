"""hlrd's SMPP server against peers no call-center platform would be.

Each test is one finding of issue #9 ("never down because of one bad peer"): a peer
may cost itself its connection, never the daemon its memory, its log, its other
clients' receipts or its descriptors. Peers are raw sockets on the test's loop and
our own ESME; waits are bounded by TIMEOUT, never by sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import gc
import struct
from collections.abc import Callable
from typing import Any

from structlog.testing import capture_logs

from hlrd.daemon import Daemon
from hlrd.frontends.smpp_server import SmppFrontend
from hlrd.smpp import codec
from hlrd.smpp.constants import CommandId, Status
from hlrd.smpp.errors import PduError, ResponseError
from hlrd.smpp.outbox import ReceiptOutbox
from hlrd.smpp.pdu import (
    BindTransceiver,
    DeliverSm,
    DeliverSmResp,
    EnquireLink,
    Pdu,
    SubmitSm,
    SubmitSmResp,
    make_response,
)
from hlrd.smpp.receipts import receipt_from_pdu
from hlrd.smpp.session import PduRejected, Role, Session
from hlrd.smpp.transport import (
    MAX_PDUS_PER_TURN,
    Handler,
    LinkConfig,
    SmppConnection,
    connect,
    serve,
)
from simulator.controller import Simulator

from .daemon_harness import SMPP_SERVER, running_daemon
from .esme import ReceiptCollector, bound_client, lookup

TIMEOUT = 10.0  # upper bound on any wait for the daemon; a pass never comes near it
TRUNCATED_SUBMIT = struct.pack(">IIII", 16, CommandId.SUBMIT_SM, 0, 1)  # no body at all
PROBES = 0x7FFF0000  # enquire_link sequences from here up: never a test's own request


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def server_section(**changes: Any) -> dict[str, Any]:
    section = copy.deepcopy(SMPP_SERVER)
    section.update(changes)
    return section


def smpp_port(daemon: Any) -> int:
    return frontend(daemon).port


def frontend(daemon: Daemon) -> SmppFrontend:
    assert daemon.smpp_server is not None
    return daemon.smpp_server


def metric(daemon: Any, series: str) -> float:
    """The value of one exposition line (`name{labels}`), 0 when absent."""
    for line in daemon.metrics.render().decode().splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


class RawPeer:
    """A bare socket on the test's loop: sends any bytes, reads PDUs until told."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.framer = codec.Framer()
        self.got: list[Pdu | PduError] = []
        self.closed = False
        self.probes = PROBES

    @classmethod
    async def open(cls, port: int, source: str = "127.0.0.1") -> RawPeer:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
        return cls(reader, writer)

    def send(self, data: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(data)

    async def read_until(self, done: Callable[[], bool]) -> bool:
        """Read until `done()` or the server closes the link; True when it closed."""
        async with asyncio.timeout(TIMEOUT):
            while not done():
                try:
                    data = await self.reader.read(65536)
                except ConnectionResetError:
                    data = b""
                if not data:
                    self.closed = True
                    return True
                self.got += self.framer.feed(data)
        return False

    def answer_to(self, seq: int) -> Pdu | None:
        for p in self.got:
            if isinstance(p, Pdu) and p.sequence == seq and p.command_id & 0x80000000:
                return p
        return None

    async def answer(self, seq: int) -> Pdu | None:
        """The response to request `seq`, or None if the server closed first."""
        await self.read_until(lambda: self.answer_to(seq) is not None)
        return self.answer_to(seq)

    async def bind(self, system_id: str = "cc", password: str = "ccpass", seq: int = 1) -> Pdu:
        self.send(
            codec.encode(BindTransceiver(sequence=seq, system_id=system_id, password=password))
        )
        resp = await self.answer(seq)
        assert resp is not None, "closed instead of answering the bind"
        return resp

    async def alive(self) -> bool:
        """Whether the link still answers (an enquire_link gets its response)."""
        self.probes += 1
        self.send(codec.encode(EnquireLink(sequence=self.probes)))
        return await self.answer(self.probes) is not None

    async def until_closed(self) -> None:
        await self.read_until(lambda: False)

    def answers(self) -> list[Pdu]:
        return [p for p in self.got if isinstance(p, Pdu) and p.sequence < PROBES]

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


# -- A: a flood of bad PDUs ------------------------------------------------------------


def test_refused_pdus_leave_no_reference_cycles() -> None:
    """Each refused PDU used to keep its traceback (frames -> the framer's locals -> the
    list holding the error): a cycle per PDU that only the cyclic collector frees,
    which the daemon's GC tuning ran seldom: 600,000 of them held 200+ MiB."""
    unknown = struct.pack(">IIII", 16, 0x00000099, 0, 2)
    session = Session(Role.SMSC)
    gc.collect()
    gc.disable()
    try:
        session.receive_data((TRUNCATED_SUBMIT + unknown) * 200)
        events = []
        while (event := session.next_event()) is not None:
            events.append(event)
        assert len(events) == 400
        assert all(isinstance(e, PduRejected) and e.error.__traceback__ is None for e in events)
        del events, event, session
        assert gc.collect() == 0
    finally:
        gc.enable()


async def test_unbound_peer_is_closed_once_its_error_budget_is_spent(sim: Simulator) -> None:
    async with running_daemon(sim, smpp_server=SMPP_SERVER) as (d, _):
        with capture_logs() as logs:
            peer = await RawPeer.open(smpp_port(d))
            peer.send(TRUNCATED_SUBMIT * 1000)
            await peer.until_closed()
            await peer.close()
        closed = metric(d, 'hlrd_client_connections_closed_total{frontend="smpp",reason="errors"}')
    # max_errors_before_bind (3) answered, the one more that spends the budget too.
    assert [(p.command_id, p.status) for p in peer.answers()] == 4 * [
        (CommandId.SUBMIT_SM_RESP, Status.ESME_RINVCMDLEN)
    ]
    assert closed == 1
    events = [e["event"] for e in logs]
    assert events.count("smpp.pdu_rejected") <= 4
    assert events.count("smpp.link_closed") <= 1


async def test_unbound_log_lines_are_a_budget_for_the_process(sim: Simulator) -> None:
    """A peer that reconnects as fast as it is thrown out gets a few lines, not 4 per
    connection."""
    async with running_daemon(sim, smpp_server=SMPP_SERVER) as (d, _):
        with capture_logs() as logs:
            for _ in range(40):
                peer = await RawPeer.open(smpp_port(d))
                peer.send(TRUNCATED_SUBMIT * 10)
                await peer.until_closed()
                await peer.close()
        closed = metric(d, 'hlrd_client_connections_closed_total{frontend="smpp",reason="errors"}')
    assert closed == 40
    events = [e["event"] for e in logs]
    assert events.count("smpp.pdu_rejected") <= 20  # 160 refused PDUs
    assert events.count("smpp.link_closed") <= 20  # 40 connections closed


async def test_bound_client_gets_an_error_rate_not_a_count(sim: Simulator) -> None:
    clock = FakeClock()
    unknown = struct.pack(">IIII", 16, 0x00000099, 0, 7)
    async with running_daemon(sim, smpp_server=server_section(max_errors_per_minute=5)) as (d, _):
        frontend(d).clock = clock
        peer = await RawPeer.open(smpp_port(d))
        assert (await peer.bind()).status == Status.ESME_ROK
        peer.send(unknown * 5)  # the whole bucket at once
        assert await peer.alive()
        clock.now += 12  # a fifth of a minute: one of five back
        peer.send(unknown)
        assert await peer.alive()
        peer.send(unknown)  # none left
        assert not await peer.alive()
        await peer.close()
        closed = metric(d, 'hlrd_client_connections_closed_total{frontend="smpp",reason="errors"}')
    nacks = [p for p in peer.answers() if p.command_id == CommandId.GENERIC_NACK]
    assert len(nacks) == 7
    assert all(p.status == Status.ESME_RINVCMDID for p in nacks)
    assert closed == 1


async def test_the_upstream_role_has_no_error_budget(sim: Simulator) -> None:
    """Our client links (LinkConfig defaults) never drop a provider for odd PDUs."""
    conn, _ = await bound_client(sim.smpp_port)
    assert sim.smsc is not None
    (server_conn,) = sim.smsc.connections
    server_conn.respond(make_response(SubmitSm(sequence=4242)))  # unsolicited, malformed-ish
    for seq in range(100):
        server_conn.transport.write(struct.pack(">IIII", 16, 0x00000099, 0, 5000 + seq))  # type: ignore[union-attr]
    # The link still works: a lookup goes through it.
    resp = await conn.request(SubmitSm(destination_addr="48600000001", registered_delivery=1))
    assert resp.status == Status.ESME_ROK
    assert not conn.closing
    await conn.close()


# -- B: input that makes a handler raise ---------------------------------------------


def _flip_to_superscript(msisdn: str, digit_at: int) -> bytes:
    """A valid submit_sm whose destination digit gets its top bit flipped on the wire:
    '2' (0x32) becomes '²' (0xB2 in latin-1), '3' becomes '³'."""
    wire = bytearray(
        codec.encode(SubmitSm(sequence=5, destination_addr=msisdn, registered_delivery=1))
    )
    at = wire.index(msisdn.encode()) + digit_at
    wire[at] ^= 0x80
    return bytes(wire)


async def test_bit_flipped_destination_gets_a_failure_receipt_and_the_link_lives(
    sim: Simulator,
) -> None:
    async with running_daemon(sim, smpp_server=SMPP_SERVER) as (d, _):
        peer = await RawPeer.open(smpp_port(d))
        await peer.bind()
        peer.send(_flip_to_superscript("48600000003", 10))  # 4860000000³
        resp = await peer.answer(5)
        await peer.read_until(lambda: any(isinstance(p, DeliverSm) for p in peer.got))
        receipt_pdu = next(p for p in peer.got if isinstance(p, DeliverSm))
        peer.send(codec.encode(DeliverSmResp(sequence=receipt_pdu.sequence)))
        alive = await peer.alive()
        await peer.close()
    assert isinstance(resp, SubmitSmResp) and resp.status == Status.ESME_ROK
    receipt = receipt_from_pdu(receipt_pdu)
    assert receipt is not None
    assert (receipt.message_id, receipt.stat, receipt.err) == (resp.message_id, "REJECTD", "901")
    assert alive


async def test_bit_flipped_destination_is_rinvdstadr_when_the_account_says_so(
    sim: Simulator,
) -> None:
    server = copy.deepcopy(SMPP_SERVER)
    server["accounts"][0]["reject_invalid"] = True
    async with running_daemon(sim, smpp_server=server) as (d, _):
        peer = await RawPeer.open(smpp_port(d))
        await peer.bind()
        peer.send(_flip_to_superscript("48600000002", 2))  # 48¶00000002: not a digit at all
        peer.send(_flip_to_superscript("48600000002", 10))  # 4860000000²
        resp = await peer.answer(5)
        alive = await peer.alive()
        await peer.close()
    assert resp is not None and resp.status == Status.ESME_RINVDSTADR
    assert [p.status for p in peer.answers() if p.sequence == 5] == 2 * [Status.ESME_RINVDSTADR]
    assert alive


class _Raising(Handler):
    """A handler with a bug reachable from client input, as normalisation once was."""

    def handle_request(self, conn: SmppConnection, pdu: Pdu) -> Pdu | None:
        if isinstance(pdu, SubmitSm) and pdu.destination_addr == "48600000001":
            raise ValueError(f"cannot read {pdu.destination_addr}")
        if isinstance(pdu, SubmitSm) and pdu.destination_addr == "48600000002":
            conn.respond(SubmitSmResp(sequence=pdu.sequence, message_id="1"))
            raise RuntimeError("failed after answering")
        return (
            make_response(pdu, message_id="2") if isinstance(pdu, SubmitSm) else make_response(pdu)
        )


async def test_a_handler_that_raises_costs_one_rsyserr_answer_not_the_link() -> None:
    server = await serve(_Raising, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with capture_logs() as logs:
            peer = await RawPeer.open(port)
            await peer.bind()
            for seq, number in ((2, "48600000001"), (3, "48600000002"), (4, "48600000009")):
                peer.send(codec.encode(SubmitSm(sequence=seq, destination_addr=number)))
            await peer.read_until(lambda: peer.answer_to(4) is not None)
            alive = await peer.alive()
            await peer.close()
    finally:
        server.close()
        await server.wait_closed()
    by_seq = [(p.sequence, p.status) for p in peer.answers() if p.sequence in (2, 3, 4)]
    # One answer each: the one answered before raising is not answered twice.
    assert by_seq == [(2, Status.ESME_RSYSERR), (3, Status.ESME_ROK), (4, Status.ESME_ROK)]
    assert alive
    failed = [e for e in logs if e["event"] == "smpp.handler_failed"]
    assert [e["error"] for e in failed] == ["ValueError", "RuntimeError"]
    assert all("48600000001" not in repr(e) for e in logs)


# -- C: connections without limits -----------------------------------------------------


async def test_a_connection_that_never_binds_is_closed_at_the_bind_deadline(
    sim: Simulator,
) -> None:
    async with running_daemon(sim, smpp_server=server_section(bind_timeout_s=0.2)) as (d, _):
        bound, _ = await bound_client(smpp_port(d), "cc", "ccpass")
        peer = await RawPeer.open(smpp_port(d))
        assert await peer.alive()  # enquire_link is answered, but does not keep it open
        await peer.until_closed()
        await peer.close()
        closed = metric(
            d, 'hlrd_client_connections_closed_total{frontend="smpp",reason="bind_timeout"}'
        )
        # The bound client connected first, so its deadline has passed too: it is kept.
        answer = await bound.send_request_nowait(EnquireLink())
        await bound.close()
    assert closed == 1
    assert answer.command_id == CommandId.ENQUIRE_LINK_RESP


async def test_connections_are_capped_in_total_and_per_address(sim: Simulator) -> None:
    section = server_section(max_connections=3, max_connections_per_ip=2)
    async with running_daemon(sim, smpp_server=section) as (d, _):
        port = smpp_port(d)
        a = await RawPeer.open(port, "127.0.0.1")
        b = await RawPeer.open(port, "127.0.0.1")
        assert await a.alive() and await b.alive()
        third_same_ip = await RawPeer.open(port, "127.0.0.1")
        await third_same_ip.until_closed()
        c = await RawPeer.open(port, "127.0.0.2")
        assert await c.alive()
        over_total = await RawPeer.open(port, "127.0.0.3")
        await over_total.until_closed()
        gauge = metric(d, 'hlrd_client_connections{frontend="smpp"}')
        a.send(TRUNCATED_SUBMIT * 4)  # thrown out for errors: its place is free again
        await a.until_closed()
        await a.close()
        assert frontend(d).limiter.total == 2  # released before the close reached us
        again = await RawPeer.open(port, "127.0.0.1")
        assert await again.alive()
        for p in (b, c, again, third_same_ip, over_total):
            await p.close()
        per_ip = metric(d, 'hlrd_client_connections_refused_total{frontend="smpp",reason="per_ip"}')
        total = metric(d, 'hlrd_client_connections_refused_total{frontend="smpp",reason="total"}')
    assert third_same_ip.got == [] and over_total.got == []
    assert (per_ip, total, gauge) == (1, 1, 3)


# -- D: receipts nobody acknowledges ---------------------------------------------------


class _Hoarder(ReceiptCollector):
    """Takes receipts and answers none of them until told to."""

    def __init__(self) -> None:
        super().__init__()
        self.held: list[tuple[SmppConnection, DeliverSm]] = []
        self.acking = False
        self.arrived = asyncio.Event()

    def handle_request(self, conn: SmppConnection, pdu: Pdu) -> Pdu | None:
        if isinstance(pdu, DeliverSm) and not self.acking:
            self.held.append((conn, pdu))
            self.arrived.set()
            return None
        return super().handle_request(conn, pdu)

    async def wait_held(self, n: int) -> None:
        async with asyncio.timeout(TIMEOUT):
            while len(self.held) < n:
                self.arrived.clear()
                await self.arrived.wait()

    def start_acking(self) -> None:
        self.acking = True
        held, self.held = self.held, []
        for conn, pdu in held:
            super().handle_request(conn, pdu)  # collected for expect()
            conn.respond(DeliverSmResp(sequence=pdu.sequence))


async def _submit(conn: SmppConnection, number: str) -> Pdu:
    return await conn.request(SubmitSm(destination_addr=number, registered_delivery=1))


NUMBERS = ["48600000001", "48600000003", "48600000005"]


async def test_client_that_never_acks_gets_msgqful_then_is_served_once_it_acks(
    sim: Simulator,
) -> None:
    async with running_daemon(sim, smpp_server=server_section(max_pending_receipts=3)) as (d, _):
        handler = _Hoarder()
        conn = await connect("127.0.0.1", smpp_port(d), handler)
        await conn.bind(BindTransceiver(system_id="cc", password="ccpass"))
        ids = [(await _submit(conn, n)).message_id for n in NUMBERS]  # type: ignore[attr-defined]
        refused = [(await _submit(conn, "48600000002")).status for _ in range(5)]
        await handler.wait_held(3)
        refused.append((await _submit(conn, "48600000002")).status)
        outbox = frontend(d).outbox
        assert outbox is not None
        pending = outbox.pending("cc")
        waiting = [handler.expect(i) for i in ids]
        handler.start_acking()
        receipts = [r for r, _ in await asyncio.gather(*waiting)]
        served = await _submit(conn, "48600000002")
        assert isinstance(served, SubmitSmResp)
        roaming, _ = await handler.expect(served.message_id)
        await conn.close()
    assert refused == 6 * [Status.ESME_RMSGQFUL]
    assert pending == 3
    assert [(r.stat, r.err) for r in receipts] == [
        ("DELIVRD", "000"),
        ("DELIVRD", "000"),
        ("UNDELIV", "027"),
    ]
    assert receipts[1].extra["roaming_country"] == "EG"
    assert served.status == Status.ESME_ROK and roaming.extra["roaming_country"] == "DE"


async def test_client_that_rebinds_and_acks_gets_its_receipts_and_is_served(
    sim: Simulator,
) -> None:
    async with running_daemon(sim, smpp_server=server_section(max_pending_receipts=2)) as (d, _):
        hoarder = _Hoarder()
        first = await connect("127.0.0.1", smpp_port(d), hoarder)
        await first.bind(BindTransceiver(system_id="cc", password="ccpass"))
        ids = [(await _submit(first, n)).message_id for n in NUMBERS[:2]]  # type: ignore[attr-defined]
        assert (await _submit(first, NUMBERS[2])).status == Status.ESME_RMSGQFUL
        await hoarder.wait_held(2)
        first.abort()  # gone without acknowledging anything
        await first.wait_closed()
        second, handler = await bound_client(smpp_port(d), "cc", "ccpass")
        receipts = [r for r, _ in await asyncio.gather(*(handler.expect(i) for i in ids))]
        receipt, _ = await lookup(second, handler, NUMBERS[2])
        await second.close()
    assert [r.stat for r in receipts] == ["DELIVRD", "DELIVRD"]
    assert (receipt.stat, receipt.err) == ("UNDELIV", "027")


class _Silent(Handler):
    """Binds and never answers a deliver_sm."""

    def handle_request(self, conn: SmppConnection, pdu: Pdu) -> Pdu | None:
        return None


class _AcceptAll(Handler):
    def __init__(self, conns: list[SmppConnection]) -> None:
        self.conns = conns

    def connection_made(self, conn: SmppConnection) -> None:
        self.conns.append(conn)

    def handle_request(self, conn: SmppConnection, pdu: Pdu) -> Pdu | None:
        return make_response(pdu)


async def test_a_links_receipt_backlog_is_bounded() -> None:
    """Receipts waiting for a window slot of a link that never acknowledges are
    bounded per link like those parked for an unbound account."""
    conns: list[SmppConnection] = []
    server = await serve(lambda: _AcceptAll(conns), "127.0.0.1", 0, LinkConfig(window=1))
    outbox = ReceiptOutbox(max_pending=5, retry_delay_s=3600)
    try:
        client = await connect("127.0.0.1", server.sockets[0].getsockname()[1], _Silent())
        await client.bind(BindTransceiver(system_id="x", password="x"))
        (server_conn,) = conns
        outbox.attach("x", server_conn)
        for _ in range(20):
            outbox.send("x", DeliverSm(short_message=b"id:1 stat:DELIVRD"))
        pending = outbox.pending("x")
        overflowed = outbox.stats.overflowed
        client.abort()
        await server_conn.wait_closed()
    finally:
        await outbox.close()
        server.close()
        await server.wait_closed()
    assert (pending, overflowed) == (6, 14)  # one in the window, five in the backlog


# -- E: password guessing ----------------------------------------------------------------


async def _bind_status(port: int, password: str, system_id: str = "cc") -> int:
    conn = await connect("127.0.0.1", port)
    try:
        await conn.bind(BindTransceiver(system_id=system_id, password=password))
    except ResponseError as exc:
        return exc.status
    finally:
        await conn.close()
    return Status.ESME_ROK


async def test_repeated_failed_binds_lock_the_address_out_for_the_window(
    sim: Simulator,
) -> None:
    clock = FakeClock()
    section = server_section(max_bind_failures=3, bind_failure_window_s=60)
    async with running_daemon(sim, smpp_server=section) as (d, _):
        frontend(d).clock = clock
        port = smpp_port(d)
        guesses = [await _bind_status(port, f"guess{i}") for i in range(2)]
        guesses.append(await _bind_status(port, "guess", system_id="nobody"))
        # Locked out: even the right password is refused, and tells nothing.
        locked = [await _bind_status(port, "ccpass"), await _bind_status(port, "guess")]
        clock.now += 59.9
        still = await _bind_status(port, "ccpass")
        clock.now += 0.1
        after = await _bind_status(port, "ccpass")

        def failures(reason: str, account: str = "cc") -> float:
            labels = f'account="{account}",reason="{reason}"'
            return metric(d, f"hlrd_smpp_server_bind_failures_total{{{labels}}}")

        counts = (
            failures("wrong_password"),
            failures("unknown_system_id", "?"),
            failures("locked_out", "?"),
            metric(d, "hlrd_smpp_server_bind_lockouts_total"),
        )
    assert guesses == [Status.ESME_RINVPASWD, Status.ESME_RINVPASWD, Status.ESME_RINVSYSID]
    assert locked == [Status.ESME_RBINDFAIL, Status.ESME_RBINDFAIL]
    assert still == Status.ESME_RBINDFAIL
    assert after == Status.ESME_ROK
    assert counts == (2, 1, 3, 1)


async def test_failed_binds_spend_the_connections_error_budget(sim: Simulator) -> None:
    section = server_section(max_bind_failures=1000)
    async with running_daemon(sim, smpp_server=section) as (d, _):
        peer = await RawPeer.open(smpp_port(d))
        answers = []
        for seq in range(1, 6):
            peer.send(codec.encode(BindTransceiver(sequence=seq, system_id="cc", password="x")))
            answers.append(await peer.answer(seq))
        await peer.close()
    # Three tolerated, the fourth answered and the link closed: no fifth guess on it.
    assert [a.status if a else None for a in answers] == 4 * [Status.ESME_RINVPASWD] + [None]
    assert peer.closed


async def test_too_many_binds_is_not_a_guess(sim: Simulator) -> None:
    """Only wrong credentials count towards a lockout: a platform reconnecting before
    its old bind is gone must not lock itself out."""
    section = server_section(max_bind_failures=1)
    section["accounts"][0]["max_binds"] = 1
    async with running_daemon(sim, smpp_server=section) as (d, _):
        first, _ = await bound_client(smpp_port(d), "cc", "ccpass")
        refused = [await _bind_status(smpp_port(d), "ccpass") for _ in range(3)]
        await first.close()
        await first.wait_closed()
        lockouts = metric(d, "hlrd_smpp_server_bind_lockouts_total")
    assert refused == 3 * [Status.ESME_RBINDFAIL]
    assert lockouts == 0


async def test_guessing_from_new_connections_costs_a_few_log_lines(sim: Simulator) -> None:
    section = server_section(max_bind_failures=1000)
    async with running_daemon(sim, smpp_server=section) as (d, _):
        with capture_logs() as logs:
            statuses = [await _bind_status(smpp_port(d), f"guess{i}") for i in range(50)]
    assert statuses == 50 * [Status.ESME_RINVPASWD]
    assert [e["event"] for e in logs].count("smpp_server.refused") <= 20


# -- a peer that writes and never reads ------------------------------------------------


async def test_a_peer_that_does_not_read_is_not_read_either() -> None:
    """Answers a peer does not read stay in the transport's buffer; past its high-water
    mark (asyncio calls pause_writing) we stop reading the peer, so what we owe it
    stays bounded: a bound client writing enquire_links for 10 s without reading took
    the daemon from 43 to 180 MiB before."""
    conns: list[SmppConnection] = []
    cfg = LinkConfig(pause_reading_when_blocked=True)
    server = await serve(lambda: _AcceptAll(conns), "127.0.0.1", 0, cfg)
    try:
        peer = await RawPeer.open(server.sockets[0].getsockname()[1])
        assert await peer.alive()
        (conn,) = conns
        assert conn.transport is not None
        conn.pause_writing()  # what the transport calls when its buffer is full
        reading_while_blocked = conn.transport.is_reading()
        conn.resume_writing()
        reading_after = conn.transport.is_reading()
        assert await peer.alive()
        await peer.close()
    finally:
        server.close()
        await server.wait_closed()
    assert (reading_while_blocked, reading_after) == (False, True)


class _Recorder(Handler):
    def __init__(
        self, seen: list[int], all_seen: asyncio.Event, total: int, conns: list[SmppConnection]
    ) -> None:
        self.seen = seen
        self.all_seen = all_seen
        self.total = total
        self.conns = conns

    def connection_made(self, conn: SmppConnection) -> None:
        self.conns.append(conn)

    def handle_request(self, conn: SmppConnection, pdu: Pdu) -> Pdu | None:
        if isinstance(pdu, SubmitSm):
            self.seen.append(pdu.sequence)
            if len(self.seen) == self.total:
                self.all_seen.set()
        return make_response(pdu)


async def test_one_read_is_worked_off_a_bounded_number_of_pdus_per_turn() -> None:
    """A read can hold 16,000 PDUs, ~60 ms of work in which no other link is served;
    a link interprets at most MAX_PDUS_PER_TURN per loop turn and reads nothing more
    until it has worked off the rest, in order."""
    seen: list[int] = []
    all_seen = asyncio.Event()
    total = 2 * MAX_PDUS_PER_TURN + 500
    conns: list[SmppConnection] = []

    server = await serve(lambda: _Recorder(seen, all_seen, total, conns), "127.0.0.1", 0)
    try:
        peer = await RawPeer.open(server.sockets[0].getsockname()[1])
        await peer.bind()
        (conn,) = conns
        assert conn.transport is not None
        # One read holding them all, as the transport would hand it over.
        conn.data_received(b"".join(codec.encode(SubmitSm(sequence=s)) for s in range(total)))
        in_first_turn = len(seen)
        reading_meanwhile = conn.transport.is_reading()
        async with asyncio.timeout(TIMEOUT):
            await all_seen.wait()
        assert await peer.alive()
        reading_after = conn.transport.is_reading()
        await peer.close()
    finally:
        server.close()
        await server.wait_closed()
    assert in_first_turn == MAX_PDUS_PER_TURN
    assert (reading_meanwhile, reading_after) == (False, True)
    assert seen == list(range(total))
