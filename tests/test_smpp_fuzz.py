"""A seeded fuzz of hlrd's SMPP server, with a well-behaved client beside it.

Hypothesis (derandomized: the same examples every run) sends mutated PDUs over raw
sockets, before and after a bind: bit flips of valid PDUs, truncated bodies, bogus
command ids and lengths, bogus TLVs, non-ASCII addresses, plain junk. The daemon
must answer with well-formed PDUs or close the link, never hang, never let a handler
raise, and the client making real lookups beside it must get every receipt, right.
"""

from __future__ import annotations

import asyncio
import copy
import socket
import struct
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from hlrd.smpp import codec
from hlrd.smpp.hlr_fields import hlr_fields_from
from hlrd.smpp.pdu import (
    BindTransceiver,
    DataSm,
    DeliverSmResp,
    EnquireLink,
    GenericNack,
    Pdu,
    QuerySm,
    SubmitSm,
    Unbind,
)
from simulator.controller import Simulator

from .daemon_harness import ACCOUNT, SMPP_SERVER, running_daemon
from .esme import bound_client, lookup
from .test_smpp_hostile import smpp_port

TIMEOUT = 10.0  # upper bound on any read from the daemon; a pass never comes near it

# What the demo scenario answers, as the good client must read it from receipts:
# number -> (stat, err, roaming, serving MCC/MNC)
EXPECTED: dict[str, tuple[str, str, bool | None, str | None]] = {
    "48600000001": ("DELIVRD", "000", False, "26001"),
    "48600000002": ("DELIVRD", "000", True, "26201"),
    "48600000003": ("DELIVRD", "000", True, "60201"),
    "48600000005": ("UNDELIV", "027", None, None),
}
FUZZ_ACCOUNT = dict(ACCOUNT, system_id="fuzz", password="fuzzpass", max_binds=50)
# Latin-1 look-alikes of digits and the separators people type: what a bit flip or a
# badly converted CSV puts in destination_addr.
ODD_ADDRESS = "0123456789²³¹¼½¾+-() \xa0\xb2\xb3\xb9\u00d7"

seqs = st.integers(1, 0x7FFFFFFF)


def _encode(pdu: Pdu) -> bytes:
    return codec.encode(pdu)


def _odd_submit(seq: int, address: str) -> bytes:
    return _encode(SubmitSm(sequence=seq, destination_addr=address, registered_delivery=1))


templates = st.one_of(
    st.builds(
        lambda seq, number, dc: _encode(
            SubmitSm(sequence=seq, destination_addr=number, registered_delivery=1, data_coding=dc)
        ),
        seqs,
        st.sampled_from(sorted(EXPECTED)),
        st.integers(0, 255),
    ),
    st.builds(_odd_submit, seqs, st.text(alphabet=ODD_ADDRESS, max_size=20)),
    st.builds(lambda seq: _encode(EnquireLink(sequence=seq)), seqs),
    st.builds(
        lambda seq, pw: _encode(BindTransceiver(sequence=seq, system_id="fuzz", password=pw)),
        seqs,
        st.sampled_from(["fuzzpass", "wrong"]),
    ),
    st.builds(
        lambda seq, mid: _encode(QuerySm(sequence=seq, message_id=mid)),
        seqs,
        st.text(alphabet="0123456789ABCDEF", max_size=20),
    ),
    st.builds(lambda seq: _encode(DeliverSmResp(sequence=seq)), seqs),
    st.builds(lambda seq: _encode(GenericNack(sequence=seq)), seqs),
    st.builds(lambda seq: _encode(DataSm(sequence=seq, destination_addr="48600000001")), seqs),
    st.builds(lambda seq: _encode(Unbind(sequence=seq)), seqs),
    st.builds(
        lambda cid, seq, body: struct.pack(">IIII", 16 + len(body), cid, 0, seq) + body,
        st.integers(0, 0xFFFFFFFF),
        seqs,
        st.binary(max_size=40),
    ),
    st.binary(min_size=1, max_size=64),
)


def _with_length(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data[4:] if len(data) >= 4 else data


def _flip(data: bytes, bits: list[int]) -> bytes:
    out = bytearray(data)
    for b in bits:
        i = b % (len(out) * 8)
        out[i // 8] ^= 1 << (i % 8)
    return bytes(out)


@st.composite
def frames(draw: Callable[..., Any]) -> bytes:
    """One template, mutated one way (or not at all)."""
    data: bytes = draw(templates)
    how = draw(st.sampled_from(["none", "flip", "truncate", "length", "tlv", "tlv_raw"]))
    if how == "flip":
        return _flip(data, draw(st.lists(st.integers(0, 10**6), min_size=1, max_size=4)))
    if how == "truncate":
        cut = data[: draw(st.integers(0, max(0, len(data) - 1)))]
        return _with_length(cut) if draw(st.booleans()) else cut
    if how == "length":
        return struct.pack(">I", draw(st.integers(0, 0xFFFFFFFF))) + data[4:]
    if how in ("tlv", "tlv_raw"):
        tag = draw(st.one_of(st.integers(0, 0xFFFF), st.sampled_from([0x0427, 0x001E, 0x0423])))
        value = draw(st.binary(max_size=12))
        length = len(value) if how == "tlv" else draw(st.integers(0, 0xFFFF))
        return _with_length(data + struct.pack(">HH", tag, length) + value)
    return data


def exchange(port: int, bind_first: bool, payload: bytes) -> list[Pdu | Exception]:
    """Send everything, half-close, and read what the daemon says until it closes."""
    bind = _encode(BindTransceiver(sequence=1, system_id="fuzz", password="fuzzpass"))
    probe = _encode(EnquireLink(sequence=0x7FFFFFFF))
    framer = codec.Framer()
    got: list[Pdu | Exception] = []
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        try:
            s.sendall((bind if bind_first else b"") + payload + probe)
            s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed while we were still sending: an answer too
        while True:
            try:
                data = s.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            got += framer.feed(data)
    return got


def run_fuzz(port: int) -> int:
    examples = 0

    @settings(
        max_examples=200,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(bind_first=st.booleans(), payload=st.lists(frames(), min_size=1, max_size=6))
    def fuzz(bind_first: bool, payload: list[bytes]) -> None:
        nonlocal examples
        examples += 1
        got = exchange(port, bind_first, b"".join(payload))
        # Whatever came back is well-formed SMPP: no half PDU, nothing undecodable.
        assert all(isinstance(p, Pdu) for p in got), got

    fuzz()
    return examples


async def _good_client(port: int, stop: asyncio.Event) -> list[str]:
    """Lookups of every demo case, one after another; each receipt checked."""
    conn, handler = await bound_client(port, "cc", "ccpass")
    done: list[str] = []
    try:
        while not stop.is_set():
            for number, (stat, err, roaming, serving) in EXPECTED.items():
                receipt, pdu = await lookup(conn, handler, number)
                fields = hlr_fields_from(pdu, receipt.extra)
                assert (receipt.stat, receipt.err) == (stat, err), (number, receipt)
                assert (fields.roaming, fields.serving_mccmnc) == (roaming, serving), number
                if number == "48600000003":
                    assert fields.roaming_country == "EG"
                done.append(number)
    finally:
        await conn.close()
    return done


# The daemon beside the fuzzer draws lookup ids from the global `random` while
# Hypothesis generates examples; Hypothesis takes that for a strategy using it.
@pytest.mark.filterwarnings("ignore:Do not use the `random` module")
async def test_fuzzed_peers_cost_the_good_client_nothing(sim: Simulator) -> None:
    server = copy.deepcopy(SMPP_SERVER)
    server["accounts"].append(FUZZ_ACCOUNT)
    server["max_bind_failures"] = 1_000_000  # fuzz binds must still bind after wrong ones
    async with running_daemon(sim, smpp_server=server) as (d, http):
        port = smpp_port(d)
        with capture_logs() as logs:
            stop = asyncio.Event()
            good = asyncio.create_task(_good_client(port, stop))
            try:
                examples = await asyncio.to_thread(run_fuzz, port)
            finally:
                stop.set()
            looked_up = await asyncio.wait_for(good, TIMEOUT)
        # Still serving afterwards: a new client binds and gets a right answer.
        conn, handler = await bound_client(port, "cc", "ccpass")
        receipt, _ = await lookup(conn, handler, "48600000003")
        await conn.close()
        health = await http.get("/healthz")
    assert examples == 200
    assert len(looked_up) >= len(EXPECTED)
    assert receipt.extra["roaming_country"] == "EG"
    assert health.status == 200
    events = {e["event"] for e in logs}
    assert "smpp.handler_failed" not in events
    assert "smpp_server.receipt_failed" not in events
