"""The asyncio transport: window, expiry, keepalive, link loss, orderly close."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from hlrd.smpp.constants import CommandId
from hlrd.smpp.errors import ConnectionLost, RequestTimeout, WindowClosed
from hlrd.smpp.pdu import BindTransceiver, EnquireLink, Pdu, SubmitSm, SubmitSmResp, make_response
from hlrd.smpp.session import State
from hlrd.smpp.transport import Handler, LinkConfig, SmppConnection, connect, serve


class HoldingSmsc(Handler):
    """Accepts any bind, and holds submit_sm answers until the test releases them."""

    def __init__(self, shared: HoldingState) -> None:
        self.shared = shared

    def connection_made(self, conn: SmppConnection) -> None:
        self.shared.conns.append(conn)

    def handle_request(self, conn: SmppConnection, pdu: Pdu) -> Pdu | None:
        self.shared.seen.append(pdu.command_name)
        if isinstance(pdu, SubmitSm):
            self.shared.held.append((conn, pdu))
            if len(self.shared.held) == self.shared.notify_at:
                self.shared.reached.set()
            return None
        return make_response(pdu)


class HoldingState:
    def __init__(self) -> None:
        self.held: list[tuple[SmppConnection, SubmitSm]] = []
        self.seen: list[str] = []
        self.conns: list[SmppConnection] = []
        self.reached = asyncio.Event()
        self.notify_at = 0

    def release_all(self) -> None:
        held, self.held = self.held, []
        for conn, pdu in held:
            conn.respond(SubmitSmResp(sequence=pdu.sequence, message_id="1"))


@pytest.fixture
async def holding() -> AsyncIterator[tuple[HoldingState, int]]:
    state = HoldingState()
    server = await serve(lambda: HoldingSmsc(state), "127.0.0.1", 0)
    yield state, server.sockets[0].getsockname()[1]
    server.close()
    for c in state.conns:
        c.abort()
    await server.wait_closed()


async def _client(port: int, **cfg: float) -> SmppConnection:
    conn = await connect("127.0.0.1", port, config=LinkConfig(**cfg))  # type: ignore[arg-type]
    await conn.bind(BindTransceiver(system_id="t", password="t"))
    return conn


async def test_window_bounds_outstanding_requests(holding: tuple[HoldingState, int]) -> None:
    state, port = holding
    conn = await _client(port, window=2)
    tasks = [asyncio.create_task(conn.request(SubmitSm())) for _ in range(5)]
    for batch, next_batch in ((2, 2), (2, 1), (1, 0)):
        state.notify_at = batch
        await state.reached.wait()
        state.reached.clear()
        # enquire_link bypasses the window; its answer proves the server has seen
        # everything sent before it, so nothing beyond the window is on its way.
        await conn.send_request_nowait(EnquireLink())
        assert len(state.held) == batch
        assert conn.in_flight == batch
        state.notify_at = next_batch
        state.release_all()
    results = await asyncio.gather(*tasks)
    assert [r.command_id for r in results] == [CommandId.SUBMIT_SM_RESP] * 5
    assert conn.in_flight == 0
    await conn.close()


async def test_expired_request_fails_and_frees_its_slot(holding: tuple[HoldingState, int]) -> None:
    state, port = holding
    conn = await _client(port, window=1, request_timeout=0.05)
    with pytest.raises(RequestTimeout):
        await conn.request(SubmitSm())
    assert conn.in_flight == 0
    assert conn.session.outstanding == {}
    # The single slot is free again: the next request goes out and is answered.
    state.notify_at = 2
    task = asyncio.create_task(conn.request(SubmitSm(), timeout=5))
    await state.reached.wait()
    state.release_all()
    assert (await task).command_id == CommandId.SUBMIT_SM_RESP
    await conn.close()


async def test_link_drop_fails_every_outstanding_request(
    holding: tuple[HoldingState, int],
) -> None:
    state, port = holding
    state.notify_at = 3
    conn = await _client(port, window=8)
    tasks = [asyncio.create_task(conn.request(SubmitSm())) for _ in range(3)]
    await state.reached.wait()
    state.conns[0].abort()  # the server side drops the TCP link
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, ConnectionLost) for r in results)
    await conn.wait_closed()
    with pytest.raises(WindowClosed):
        await conn.request(SubmitSm())


async def test_close_unbinds_before_dropping_the_link(holding: tuple[HoldingState, int]) -> None:
    state, port = holding
    conn = await _client(port)
    await conn.close()
    assert conn.session.state is State.CLOSED
    server_side = state.conns[0]
    await server_side.wait_closed()
    assert state.seen == ["bind_transceiver"]  # unbind is answered by the session itself
    assert server_side.session.state is State.CLOSED


async def test_dead_link_is_detected_by_unanswered_enquire_link() -> None:
    """The far end reads and never answers: the link must be declared dead."""
    received: list[bytes] = []
    finished = asyncio.Event()

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            received.append(data)
        writer.close()
        finished.set()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    cfg = LinkConfig(enquire_link_interval=0.05, keepalive_timeout=0.05, request_timeout=30)
    conn = await connect("127.0.0.1", port, config=cfg)
    pending = asyncio.create_task(conn.request(BindTransceiver()))  # never answered
    with pytest.raises(ConnectionLost):
        await pending  # failed by the keepalive, long before its own 30 s expiry
    await conn.wait_closed()
    await finished.wait()
    server.close()
    await server.wait_closed()
    assert any(b"\x00\x00\x00\x15" in chunk for chunk in received)  # enquire_link went out


async def test_enquire_link_is_not_sent_while_traffic_flows(
    holding: tuple[HoldingState, int],
) -> None:
    state, port = holding
    conn = await _client(port, enquire_link_interval=3600)
    for _ in range(3):
        state.notify_at = len(state.held) + 1
        state.reached.clear()
        task = asyncio.create_task(conn.request(SubmitSm()))
        await state.reached.wait()
        state.release_all()
        await task
    await conn.close()
    assert "enquire_link" not in state.seen
