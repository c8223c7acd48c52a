"""The machine's raw ceiling: length-prefixed frames echoed over one asyncio connection.

No SMPP, no lookups: just what two Python processes can exchange over loopback with
the same window and the same write coalescing (one write per loop turn) as hlrd. A
lookup is two request/response exchanges (submit_sm/resp, deliver_sm/resp), so the
ceiling in lookups/s is half the echo rate.

Server: `python -m bench.echo PORT` (prints the port it bound on stdout).
"""

from __future__ import annotations

import asyncio
import struct
import sys
import time

FRAME = struct.pack(">I", 64) + bytes(60)  # about the size of a submit_sm


class _Framed(asyncio.Protocol):
    def __init__(self) -> None:
        self.buf = bytearray()
        self.out: list[bytes] = []
        self.transport: asyncio.Transport | None = None
        self.loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        # Frame by frame, as a protocol must: one slice and one callback per frame.
        self.buf += data
        pos = 0
        while len(self.buf) - pos >= 4:
            size = struct.unpack_from(">I", self.buf, pos)[0]
            if len(self.buf) - pos < size:
                break
            self.frame(bytes(self.buf[pos : pos + size]))
            pos += size
        del self.buf[:pos]

    def frame(self, data: bytes) -> None:
        raise NotImplementedError

    def send(self, data: bytes) -> None:
        if not self.out:
            self.loop.call_soon(self.flush)
        self.out.append(data)

    def flush(self) -> None:
        assert self.transport is not None
        self.transport.write(b"".join(self.out))
        self.out.clear()


class _Echo(_Framed):
    def frame(self, data: bytes) -> None:
        self.send(data)


class _Client(_Framed):
    def __init__(self, total: int, window: int) -> None:
        super().__init__()
        self.total = total
        self.window = window
        self.sent = 0
        self.received = 0
        self.done: asyncio.Future[None] = self.loop.create_future()

    def start(self) -> None:
        for _ in range(min(self.window, self.total)):
            self.sent += 1
            self.send(FRAME)

    def frame(self, data: bytes) -> None:
        self.received += 1
        if self.sent < self.total:
            self.sent += 1
            self.send(FRAME)
        elif self.received >= self.total and not self.done.done():
            self.done.set_result(None)


async def echo_rate(port: int, window: int, total: int) -> float:
    """Frames per second echoed with `window` frames outstanding."""
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(lambda: _Client(total, window), "127.0.0.1", port)
    start = time.perf_counter()
    client.start()
    await client.done
    elapsed = time.perf_counter() - start
    assert client.transport is not None
    client.transport.close()
    return total / elapsed


async def _serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Echo, "127.0.0.1", port)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(_serve(int(sys.argv[1]) if len(sys.argv) > 1 else 0))
