"""Hostile peers for the abuse scenario, each bounded in volume and in time.

Run as a process of its own, so that an attacker's busy loop never delays the good
client's event loop in the bench process: `python -m bench.attacks KIND SMPP_PORT
HTTP_PORT SECONDS [SIZE]`; prints a JSON object with what it sent and saw. Standard
library only (raw PDUs built by hand), so it does not depend on the hlrd under test.
Everything goes to 127.0.0.1; every loop stops at SIZE or at SECONDS, whichever
comes first (and a little after, to let go of its connections).

Kinds:
- `bad_pdus`: one connection that never binds and writes SIZE MB of 16-byte PDUs with
  an unknown command_id (0x00000099), without reading the generic_nacks until it has
  written them all (then it reads and discards them until the daemon closes or time
  is up, so what it sent is not thrown away by a reset).
- `no_ack`: binds as account `noack` and submits SIZE lookups at 1,000/s, reads
  what comes back and never answers a deliver_sm (receipts stay unacknowledged).
- `idle`: SIZE idle HTTP connections that send a request head one byte a second
  (slowloris), and SIZE TCP connections to the SMPP port that never send anything.
- `wrong_password`: up to SIZE bind_transceiver attempts as account `bench` with a
  wrong password, a new connection each, 4 at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import select
import socket
import struct
import sys
import time
from typing import Any

HOST = "127.0.0.1"
GENERIC_NACK = 0x80000000
SUBMIT_SM_RESP = 0x80000004
BIND_TRANSCEIVER = 0x00000009
DELIVER_SM = 0x00000005
SUBMIT_SM = 0x00000004


def pdu(command_id: int, sequence: int, body: bytes = b"", status: int = 0) -> bytes:
    return struct.pack(">IIII", 16 + len(body), command_id, status, sequence) + body


def cstr(text: str) -> bytes:
    return text.encode() + b"\0"


def bind_body(system_id: str, password: str) -> bytes:
    return cstr(system_id) + cstr(password) + cstr("") + bytes([0x34, 0, 0]) + cstr("")


def submit_body(number: str) -> bytes:
    return (
        cstr("")  # service_type
        + bytes([0, 0])
        + cstr("abuse")
        + bytes([1, 1])
        + cstr(number)
        + bytes([0, 0, 0])  # esm_class, protocol_id, priority_flag
        + cstr("")
        + cstr("")
        + bytes([1, 0, 0, 0])  # registered_delivery=1, replace, data_coding, default_msg
        + bytes([3])
        + b"HLR"
    )


def split_pdus(buf: bytearray) -> list[tuple[int, int, int]]:
    """Complete PDUs at the head of `buf` as (command_id, status, sequence); consumed."""
    out = []
    pos = 0
    while len(buf) - pos >= 16:
        length, command_id, status, seq = struct.unpack_from(">IIII", buf, pos)
        if length < 16 or len(buf) - pos < length:
            break
        out.append((command_id, status, seq))
        pos += length
    del buf[:pos]
    return out


def bad_pdus(smpp_port: int, seconds: float, megabytes: float) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    goal = int(megabytes * 1024 * 1024)
    chunk = b"".join(pdu(0x99, seq) for seq in range(1, 4097))  # 64 KiB
    sock = socket.create_connection((HOST, smpp_port), timeout=5)
    sock.setblocking(False)
    sent = 0
    closed_by_daemon = False
    view = memoryview(chunk)
    offset = 0
    while sent < goal and time.monotonic() < deadline:
        _, writable, _ = select.select([], [sock], [], 0.1)
        if not writable:
            continue
        try:
            n = sock.send(view[offset : offset + min(len(chunk) - offset, goal - sent)])
        except (BrokenPipeError, ConnectionResetError):
            closed_by_daemon = True
            break
        sent += n
        offset = (offset + n) % len(chunk)
    wrote_for = time.monotonic() - (deadline - seconds)
    received = 0
    if not closed_by_daemon:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)
        # Read (and drop) the answers until the daemon closes, so what was sent is
        # not discarded by a reset; at most until the deadline plus a few seconds.
        end = max(deadline, time.monotonic()) + 3
        while time.monotonic() < end:
            readable, _, _ = select.select([sock], [], [], 0.1)
            if not readable:
                continue
            try:
                data = sock.recv(1 << 16)
            except ConnectionResetError:
                closed_by_daemon = True
                break
            if not data:
                closed_by_daemon = True
                break
            received += len(data)
    sock.close()
    return {
        "hostile_bytes": sent,
        "write_seconds": wrote_for,
        "bytes_back": received,
        "closed_by_daemon": int(closed_by_daemon),
    }


def no_ack(smpp_port: int, seconds: float, lookups: float) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    sock = socket.create_connection((HOST, smpp_port), timeout=5)
    sent = sock.send(pdu(BIND_TRANSCEIVER, 1, bind_body("noack", "noack")))
    buf = bytearray()
    answers: list[tuple[int, int, int]] = []
    with contextlib.suppress(OSError):
        while not (answers := split_pdus(buf)) and (data := sock.recv(4096)):
            buf += data
    if not answers or answers[0][1] != 0:
        sock.close()
        return {"hostile_bytes": sent, "bind_refused": 1}
    sock.setblocking(False)
    submits = resps = refused = receipts = 0
    closed_by_daemon = False
    out = bytearray()
    start = time.monotonic()
    while time.monotonic() < deadline:
        due = min(int(lookups), int((time.monotonic() - start) * 1000))
        while submits < due:
            out += pdu(SUBMIT_SM, submits + 2, submit_body(f"4869{submits:07d}"))
            submits += 1
        readable, writable, _ = select.select([sock], [sock] if out else [], [], 0.01)
        try:
            if writable:
                n = sock.send(out)
                sent += n
                del out[:n]
            if readable:
                data = sock.recv(1 << 16)
                if not data:
                    closed_by_daemon = True
                    break
                buf += data
        except (BrokenPipeError, ConnectionResetError):
            closed_by_daemon = True
            break
        for command_id, status, _ in split_pdus(buf):
            if command_id == SUBMIT_SM_RESP:
                resps += 1
                refused += status != 0
            elif command_id == DELIVER_SM:
                receipts += 1  # never answered: that is the attack
    sock.close()
    return {
        "hostile_bytes": sent,
        "bind_refused": 0,
        "submits": submits,
        "submit_resps": resps,
        "submits_refused": refused,
        "receipts_unacked": receipts,
        "closed_by_daemon": int(closed_by_daemon),
    }


async def _open(
    port: int, stats: dict[str, int]
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
    """A connection for one attacker, counted as opened or refused."""
    try:
        link = await asyncio.wait_for(asyncio.open_connection(HOST, port), 5)
    except (OSError, TimeoutError):
        stats["refused"] += 1
        return None
    stats["opened"] += 1
    return link


async def _slow_http(port: int, deadline: float, stats: dict[str, int]) -> None:
    if (link := await _open(port, stats)) is None:
        return
    reader, writer = link
    head = b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 10_000
    try:
        for i in range(len(head)):
            writer.write(head[i : i + 1])
            stats["hostile_bytes"] += 1
            left = deadline - time.monotonic()
            if left <= 0:
                stats["held_to_end"] += 1
                return
            with contextlib.suppress(TimeoutError):
                if not await asyncio.wait_for(reader.read(4096), min(1.0, left)):
                    stats["closed_by_daemon"] += 1
                    return
    except OSError:
        stats["closed_by_daemon"] += 1
    finally:
        writer.transport.abort()


async def _idle_smpp(port: int, deadline: float, stats: dict[str, int]) -> None:
    if (link := await _open(port, stats)) is None:
        return
    reader, writer = link
    try:
        left = deadline - time.monotonic()
        data = b"x"
        while data and left > 0:
            with contextlib.suppress(TimeoutError):
                data = await asyncio.wait_for(reader.read(4096), left)
            left = deadline - time.monotonic()
        if data:
            stats["held_to_end"] += 1
        else:
            stats["closed_by_daemon"] += 1
    except OSError:
        stats["closed_by_daemon"] += 1
    finally:
        writer.transport.abort()


async def _idle(smpp_port: int, http_port: int, seconds: float, count: int) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    keys = ("opened", "refused", "closed_by_daemon", "held_to_end", "hostile_bytes")
    http = dict.fromkeys(keys, 0)
    smpp = dict.fromkeys(keys, 0)
    tasks = []
    for _ in range(count):  # open them in turns, as an attacker's script would
        tasks.append(asyncio.create_task(_slow_http(http_port, deadline, http)))
        tasks.append(asyncio.create_task(_idle_smpp(smpp_port, deadline, smpp)))
        await asyncio.sleep(0.002)
    await asyncio.gather(*tasks)
    out: dict[str, Any] = {"hostile_bytes": http["hostile_bytes"]}
    out.update({f"http_{k}": v for k, v in http.items() if k != "hostile_bytes"})
    out.update({f"smpp_{k}": v for k, v in smpp.items() if k != "hostile_bytes"})
    return out


async def _wrong_password(smpp_port: int, seconds: float, attempts: int) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    stats: dict[str, int] = {"hostile_bytes": 0, "attempts": 0, "refused_connection": 0}
    # bind answers by command_status: 0xe ESME_RINVPASWD (the password was checked),
    # 0xd ESME_RBINDFAIL (refused before checking, e.g. locked out), anything else
    answers = {"answered_invalid_password": 0, "answered_bind_failed": 0, "answered_other": 0}
    names = {0x0E: "answered_invalid_password", 0x0D: "answered_bind_failed"}
    no_answer = 0

    async def worker() -> None:
        nonlocal no_answer
        while stats["attempts"] < attempts and time.monotonic() < deadline:
            n = stats["attempts"] = stats["attempts"] + 1
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, smpp_port), 2)
            except (OSError, TimeoutError):
                stats["refused_connection"] += 1
                await asyncio.sleep(0.01)
                continue
            # 8 characters: a password field holds at most 9 octets with its NUL, and
            # a longer one is a malformed PDU, not a password to check.
            bind = pdu(BIND_TRANSCEIVER, 1, bind_body("bench", f"g{n:07d}"[-8:]))
            try:
                writer.write(bind)
                stats["hostile_bytes"] += len(bind)
                head = await asyncio.wait_for(reader.readexactly(16), 2)
                status = struct.unpack(">IIII", head)[2]
                answers[names.get(status, "answered_other")] += 1
            except (OSError, TimeoutError, asyncio.IncompleteReadError):
                no_answer += 1
            finally:
                writer.transport.abort()

    await asyncio.gather(*(worker() for _ in range(4)))
    return {**stats, **answers, "no_answer": no_answer}


def main(argv: list[str]) -> int:
    kind, smpp_port, http_port, seconds = argv[0], int(argv[1]), int(argv[2]), float(argv[3])
    size = float(argv[4]) if len(argv) > 4 else 0.0
    if kind == "bad_pdus":
        result = bad_pdus(smpp_port, seconds, size or 4)
    elif kind == "no_ack":
        result = no_ack(smpp_port, seconds, size or 3000)
    elif kind == "idle":
        result = asyncio.run(_idle(smpp_port, http_port, seconds, int(size or 400)))
    elif kind == "wrong_password":
        result = asyncio.run(_wrong_password(smpp_port, seconds, int(size or 2000)))
    else:
        raise SystemExit(f"unknown attack {kind!r}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
