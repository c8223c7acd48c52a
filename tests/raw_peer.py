"""A bare socket SMPP peer, for sending what no well-behaved client would."""

from __future__ import annotations

import socket

from hlrd.smpp import codec
from hlrd.smpp.pdu import BindTransceiver, EnquireLink


def raw_exchange(
    port: int, payload: bytes, system_id: str, password: str, probe: bool
) -> list[object]:
    """Bind, send raw bytes, and read the answers.

    With `probe`, an enquire_link (sequence 99) follows and reading stops at its
    answer; without, reading stops when the server closes the link.
    """
    bind = codec.encode(BindTransceiver(sequence=1, system_id=system_id, password=password))
    tail = codec.encode(EnquireLink(sequence=99)) if probe else b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(bind + payload + tail)
        framer = codec.Framer()
        got: list[object] = []
        while not any(getattr(p, "sequence", None) == 99 for p in got):
            data = s.recv(65536)
            if not data:
                break
            got += framer.feed(data)
        return got
