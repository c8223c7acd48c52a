"""Kannel (bearerbox + smsbox) as an independent SMPP ESME peer for tests.

Our own client and smpplib were written knowing the simulator; Kannel is a deployed
gateway written by other people, so a receipt it can match to its submit and hand
back as a DLR is evidence that the simulator speaks SMPP the way real ESMEs expect.

The harness only *runs* Kannel. CI installs it (`apt-get install -y kannel`); tests
skip when the boxes cannot be found (see `find_kannel`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import xml.etree.ElementTree as ET
from asyncio.subprocess import Process
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import aiohttp
from aiohttp import web

APT_PACKAGE = "kannel"
SMSC_ID = "sim"
ADMIN_PASSWORD = "admin-secret"
SENDSMS_USER = "tester"
SENDSMS_PASSWORD = "tester-secret"
SENDER = "HLRD"

# DLR types (Kannel's %d) and dlr-mask bits share one numbering.
DLR_DELIVERED = 1
DLR_FAILED = 2
DLR_BUFFERED = 4
DLR_SMSC_ACK = 8
DLR_SMSC_NACK = 16

# Debian installs the boxes in /usr/sbin, which a non-root PATH usually lacks.
_EXTRA_DIRS = ("/usr/sbin", "/usr/local/sbin")
_REF = re.compile(r"[A-Za-z0-9_.-]+")


@dataclass(frozen=True, slots=True)
class KannelBinaries:
    bearerbox: str
    smsbox: str


def find_kannel() -> KannelBinaries | None:
    """Both boxes, or None so that a machine without Kannel skips instead of failing."""
    path = os.pathsep.join([os.environ.get("PATH", os.defpath), *_EXTRA_DIRS])
    bearerbox = shutil.which("bearerbox", path=path)
    smsbox = shutil.which("smsbox", path=path)
    if bearerbox is None or smsbox is None:
        return None
    return KannelBinaries(bearerbox, smsbox)


@dataclass(frozen=True, slots=True)
class Dlr:
    """One DLR callback, with the dlr-url escapes as smsbox expanded them."""

    ref: str  # our own query parameter: pairs a DLR with its send()
    type: int  # %d, one of the DLR_* values
    answer: str  # %A: the receipt text the SMSC sent, verbatim
    smsc_id: str  # %i
    foreign_id: str  # %F: the SMSC's message id as Kannel stored it (see msg_id_type)
    phone: str  # %p


@dataclass(frozen=True, slots=True)
class KannelSettings:
    smpp_port: int
    system_id: str
    password: str
    # Kannel's msg-id-type (gw/smsc/smsc_smpp.c): bit 0 (0x01) set = submit_sm_resp
    # message_id is hex, bit 1 (0x02) set = the receipt's id (receipted_message_id TLV,
    # else `id:` in the text) is hex; a clear bit means decimal, but an id holding a
    # non-digit is read as hex regardless. With any value both ids are rewritten as
    # decimal integers before the DLR lookup, so they must agree *as numbers*. None
    # leaves it unset: both ids are compared verbatim, as C strings.
    msg_id_type: int | None = 0x03
    enquire_link_interval: int = 30  # seconds; Kannel sends enquire_link this often
    reconnect_delay: int = 1  # seconds between attempts to (re)bind
    system_type: str = ""
    startup_timeout: float = 15.0
    stop_timeout: float = 5.0


def free_port() -> int:
    """A port for a Kannel listener: Kannel cannot bind port 0 and report what it got.

    The port is released before Kannel binds it, so another process could take it in
    between; on a test machine that race is rare enough to accept.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def render_config(
    settings: KannelSettings,
    workdir: Path,
    *,
    admin_port: int,
    smsbox_port: int,
    sendsms_port: int,
) -> str:
    core = [
        "group = core",
        "admin-interface = 127.0.0.1",
        f"admin-port = {admin_port}",
        f'admin-password = "{ADMIN_PASSWORD}"',
        'admin-deny-ip = "*.*.*.*"',
        'admin-allow-ip = "127.0.0.1"',
        "smsbox-interface = 127.0.0.1",
        f"smsbox-port = {smsbox_port}",
        'box-deny-ip = "*.*.*.*"',
        'box-allow-ip = "127.0.0.1"',
        "dlr-storage = internal",
        f'log-file = "{workdir / "bearerbox.log"}"',
        "log-level = 0",  # debug: the log then dumps every SMPP PDU sent and received
        f'access-log = "{workdir / "access.log"}"',
    ]
    smsc = [
        "group = smsc",
        "smsc = smpp",
        f"smsc-id = {SMSC_ID}",
        "host = 127.0.0.1",
        f"port = {settings.smpp_port}",
        "transceiver-mode = true",
        # smsc-username is the SMPP system_id; Kannel calls `system-id` obsolete.
        f'smsc-username = "{settings.system_id}"',
        f'smsc-password = "{settings.password}"',
        # Kannel refuses an smpp group without system-type; "" binds with an empty one.
        f'system-type = "{settings.system_type}"',
        f"enquire-link-interval = {settings.enquire_link_interval}",
        f"reconnect-delay = {settings.reconnect_delay}",
    ]
    if settings.msg_id_type is not None:
        smsc.append(f"msg-id-type = {settings.msg_id_type}")
    smsbox = [
        "group = smsbox",
        "bearerbox-host = 127.0.0.1",
        f"bearerbox-port = {smsbox_port}",
        "sendsms-interface = 127.0.0.1",
        f"sendsms-port = {sendsms_port}",
        f'log-file = "{workdir / "smsbox.log"}"',
        "log-level = 0",
    ]
    user = [
        "group = sendsms-user",
        f'username = "{SENDSMS_USER}"',
        f'password = "{SENDSMS_PASSWORD}"',
        'user-deny-ip = "*.*.*.*"',
        'user-allow-ip = "127.0.0.1"',
    ]
    return "\n\n".join("\n".join(g) for g in (core, smsc, smsbox, user)) + "\n"


class Kannel:
    """bearerbox + smsbox bound to one SMSC, and the HTTP sink for their DLRs.

    `async with Kannel(...)` returns once the SMPP link is bound and smsbox takes
    sendsms requests; leaving it stops both boxes, on error too.
    """

    def __init__(self, binaries: KannelBinaries, settings: KannelSettings, workdir: Path) -> None:
        self.binaries = binaries
        self.settings = settings
        self.workdir = workdir
        self.dlrs: asyncio.Queue[Dlr] = asyncio.Queue()
        self.admin_port = 0
        self.smsbox_port = 0
        self.sendsms_port = 0
        self.callback_port = 0
        self._stack = AsyncExitStack()
        self._http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Kannel:
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stack.aclose()

    # -- what tests use ----------------------------------------------------------------

    async def send(self, number: str, ref: str, text: str = "HLR") -> None:
        """Queue one MT that asks for delivered and failed DLRs, tagged with `ref`."""
        if not _REF.fullmatch(ref):
            # Kannel expands every `%x` in dlr-url, so a percent-encoded ref would be mangled.
            raise ValueError(f"ref must match {_REF.pattern}: {ref!r}")
        dlr_url = (
            f"http://127.0.0.1:{self.callback_port}/dlr?ref={ref}"
            "&type=%d&answer=%A&smsc=%i&fid=%F&phone=%p"
        )
        params = {
            "username": SENDSMS_USER,
            "password": SENDSMS_PASSWORD,
            "from": SENDER,
            "to": number,
            "text": text,
            "dlr-mask": str(DLR_DELIVERED | DLR_FAILED),
            "dlr-url": dlr_url,
        }
        url = f"http://127.0.0.1:{self.sendsms_port}/cgi-bin/sendsms"
        async with self._client().get(url, params=params) as resp:
            body = await resp.text()
            if resp.status != 202:  # smsbox answers 202 "Accepted for delivery"
                raise RuntimeError(f"sendsms refused {number}: HTTP {resp.status} {body!r}")

    async def collect_dlrs(self, count: int, timeout: float = 10.0) -> dict[str, Dlr]:
        """The next `count` DLRs by ref; a receipt Kannel could not match fails in bounded time."""
        got: dict[str, Dlr] = {}
        try:
            async with asyncio.timeout(timeout):
                while len(got) < count:
                    dlr = await self.dlrs.get()
                    got[dlr.ref] = dlr
        except TimeoutError:
            raise TimeoutError(
                f"{len(got)} of {count} DLRs within {timeout}s: {sorted(got)}\n{self.log_tail()}"
            ) from None
        return got

    async def status(self) -> ET.Element:
        url = f"http://127.0.0.1:{self.admin_port}/status.xml"
        async with self._client().get(url, params={"password": ADMIN_PASSWORD}) as resp:
            return ET.fromstring(await resp.text())

    def log_tail(self, lines: int = 40) -> str:
        """Where an unmatched receipt shows: "got DLR but could not find message"."""
        out = []
        for name in ("bearerbox.log", "bearerbox.stderr", "smsbox.log", "smsbox.stderr"):
            path = self.workdir / name
            if path.exists():
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- {name} ---\n" + "\n".join(tail))
        return "\n".join(out)

    # -- start and stop ----------------------------------------------------------------

    def _client(self) -> aiohttp.ClientSession:
        assert self._http is not None, "Kannel not started"
        return self._http

    async def _start(self) -> None:
        self.admin_port = free_port()
        self.smsbox_port = free_port()
        self.sendsms_port = free_port()
        conf = self.workdir / "kannel.conf"
        conf.write_text(
            render_config(
                self.settings,
                self.workdir,
                admin_port=self.admin_port,
                smsbox_port=self.smsbox_port,
                sendsms_port=self.sendsms_port,
            )
        )
        self._http = await self._stack.enter_async_context(
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        )
        await self._start_callback_server()
        # The stack unwinds in reverse, so smsbox stops before bearerbox.
        bearerbox = await self._spawn(self.binaries.bearerbox, "bearerbox", conf)
        await self._wait_until("SMPP link online", self._smsc_online, [bearerbox])
        # smsbox exits at once if bearerbox is not listening for it yet.
        await self._wait_until("bearerbox smsbox port", self._smsbox_port_open, [bearerbox])
        smsbox = await self._spawn(self.binaries.smsbox, "smsbox", conf)
        await self._wait_until("smsbox attached", self._smsbox_ready, [bearerbox, smsbox])

    async def _start_callback_server(self) -> None:
        app = web.Application()
        app.router.add_get("/dlr", self._on_dlr)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        self._stack.push_async_callback(runner.cleanup)
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        self.callback_port = runner.addresses[0][1]

    async def _on_dlr(self, request: web.Request) -> web.Response:
        q = request.query
        self.dlrs.put_nowait(
            Dlr(
                ref=q.get("ref", ""),
                type=int(q.get("type") or 0),
                answer=q.get("answer", ""),
                smsc_id=q.get("smsc", ""),
                foreign_id=q.get("fid", ""),
                phone=q.get("phone", ""),
            )
        )
        return web.Response(text="ok")

    async def _spawn(self, binary: str, name: str, conf: Path) -> Process:
        out = self._stack.enter_context((self.workdir / f"{name}.stderr").open("wb"))
        # Without -d the boxes stay in the foreground; -v 1 keeps their stderr to info+.
        proc = await asyncio.create_subprocess_exec(
            binary,
            "-v",
            "1",
            str(conf),
            cwd=self.workdir,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=out,
        )
        self._stack.push_async_callback(self._stop_process, proc)
        return proc

    async def _stop_process(self, proc: Process) -> None:
        """SIGTERM lets bearerbox unbind from the SMSC; SIGKILL bounds the wait."""
        if proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(self.settings.stop_timeout):
                await proc.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()

    async def _wait_until(
        self, what: str, check: Callable[[], Awaitable[bool]], procs: list[Process]
    ) -> None:
        """Poll `check` until it holds, as Kannel has no readiness notification.

        Short sleeps between polls, the whole wait bounded by `startup_timeout`; a box
        that exits meanwhile fails at once, with the log lines that say why.
        """
        try:
            async with asyncio.timeout(self.settings.startup_timeout):
                while not await check():
                    for proc in procs:
                        if proc.returncode is not None:
                            raise RuntimeError(
                                f"Kannel exited ({proc.returncode}) waiting for {what}\n"
                                f"{self.log_tail()}"
                            )
                    await asyncio.sleep(0.05)
        except TimeoutError:
            raise TimeoutError(f"Kannel: no {what}\n{self.log_tail()}") from None

    async def _smsc_online(self) -> bool:
        try:
            status = await self.status()
        except (aiohttp.ClientError, ET.ParseError):
            return False
        return any(
            smsc.findtext("id") == SMSC_ID and (smsc.findtext("status") or "").startswith("online")
            for smsc in status.iter("smsc")
        )

    async def _smsbox_port_open(self) -> bool:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", self.smsbox_port)
        except OSError:
            return False
        writer.close()
        await writer.wait_closed()
        return True

    async def _smsbox_ready(self) -> bool:
        try:
            status = await self.status()
            if not any(box.findtext("type") == "smsbox" for box in status.iter("box")):
                return False
            async with self._client().get(f"http://127.0.0.1:{self.sendsms_port}/") as resp:
                await resp.read()
        except (aiohttp.ClientError, ET.ParseError):
            return False
        return True
