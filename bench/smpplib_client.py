"""What a user would write without hlrd: smpplib's blocking Client, windowed by hand.

Run as a process of its own: `python -m bench.smpplib_client PORT SYSTEM_ID PASSWORD
WINDOW TOTAL [NODELAY]`; prints {"rate": lookups/s, "latencies": [...]} as JSON.

As shipped, smpplib's socket keeps Nagle's algorithm on: a small PDU written while an
earlier one is unacknowledged waits for the peer's delayed ACK (~40 ms on Linux), so
a window-1 client does ~23 lookups/s whatever the server. NODELAY=1 sets TCP_NODELAY
on its socket after connect (one line a user can add), which removes that wait.
"""

from __future__ import annotations

import json
import logging
import socket
import sys
import time
from typing import Any

import smpplib.client


def run(
    port: int, system_id: str, password: str, window: int, total: int, nodelay: bool = False
) -> dict[str, Any]:
    client = smpplib.client.Client("127.0.0.1", port, timeout=30, allow_unknown_opt_params=True)
    sent_at: dict[int, float] = {}
    by_id: dict[str, float] = {}
    latencies: list[float] = []

    def on_sent(pdu: Any) -> None:
        by_id[pdu.message_id.decode()] = sent_at.pop(pdu.sequence)

    def on_receipt(pdu: Any) -> None:
        started = by_id.pop(pdu.receipted_message_id.decode(), None)
        if started is not None:
            latencies.append(time.perf_counter() - started)

    client.set_message_sent_handler(on_sent)
    client.set_message_received_handler(on_receipt)
    client.connect()
    if nodelay:
        client._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client.bind_transceiver(system_id=system_id, password=password)
    start = time.perf_counter()
    sent = 0
    while len(latencies) < total:
        while sent < total and sent - len(latencies) < window:
            pdu = client.send_message(
                source_addr="bench",
                dest_addr_ton=1,
                dest_addr_npi=1,
                destination_addr=f"4860{sent:07d}",
                short_message=b"HLR",
                registered_delivery=1,
            )
            sent_at[pdu.sequence] = time.perf_counter()
            sent += 1
        client.read_once()
    elapsed = time.perf_counter() - start
    client.unbind()
    client.disconnect()
    return {"rate": total / elapsed, "latencies": latencies}


if __name__ == "__main__":
    logging.disable(logging.WARNING)  # smpplib warns once per vendor TLV it skips
    port, system_id, password, window, total = sys.argv[1:6]
    nodelay = len(sys.argv) > 6 and sys.argv[6] == "1"
    print(json.dumps(run(int(port), system_id, password, int(window), int(total), nodelay)))
