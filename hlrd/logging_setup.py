"""structlog setup: JSON lines in production, readable console on a terminal.

Three guards apply to every line, whoever logs it (our code, aiohttp, asyncio):
digit runs that could be a phone number or an IMSI are masked to their last three
digits wherever they appear (an exception's message, a path, a peer's input); an API
token written as `access_token=...` (a dialer's URL) or `Bearer ...` is replaced by
`***`; and no line is longer than `max_line_bytes`. Code still masks what it knows to
be a number and logs no URL or header; this is the net under it.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import re
import sys
import time
from collections.abc import Callable, MutableMapping
from typing import Any, TextIO

import orjson
import structlog
import structlog._config

_STRUCTLOG_CONFIG = getattr(structlog._config, "_CONFIG", None)

# 7+ digits, possibly with a leading + and single spaces or dashes between them.
_DIGIT_RUN = re.compile(r"\+?\d(?:[ \-]?\d){6,}")  # \d: any script's decimal digits
# Keys whose values are ids or addresses we generate or need for tracing, never numbers.
_NOT_SCRUBBED = frozenset(
    {"event", "timestamp", "level", "lookup_id", "joined_lookup_id", "message_id", "peer"}
)
# An API token in a query string or an Authorization header, up to where a URL or
# header value ends; the name is kept so a reader sees that one was sent.
_SECRET = re.compile(r"(access_token=|[Bb]earer\s+)[^\s&#;,'\"]+")
MAX_VALUE_CHARS = 256
MAX_TRACEBACK_CHARS = 1024


def _mask_run(m: re.Match[str]) -> str:
    digits = [c for c in m.group(0) if c.isdigit()]
    return "*" * (len(digits) - 3) + "".join(digits[-3:])


def redact_secrets(text: str) -> str:
    """`text` with tokens replaced by `***`; the substring tests keep the usual line
    (no token in it) from paying for a regex search."""
    if "access_token=" in text or "earer" in text or "EARER" in text:
        return _SECRET.sub(r"\1***", text)
    return text


def scrub(text: str) -> str:
    """`text` with every run of 7+ digits masked and tokens redacted, its value cut to
    MAX_VALUE_CHARS."""
    if len(text) > MAX_VALUE_CHARS:
        text = text[:MAX_VALUE_CHARS] + "..."
    return _DIGIT_RUN.sub(_mask_run, redact_secrets(text))


def scrub_personal_data(
    _: Any, __: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key, value in event_dict.items():
        if key in _NOT_SCRUBBED:
            continue
        if key == "exception" and isinstance(value, str):  # a traceback: its end matters
            event_dict[key] = _DIGIT_RUN.sub(
                _mask_run, redact_secrets(value[-MAX_TRACEBACK_CHARS:])
            )
        elif isinstance(value, str):
            if len(value) >= 7:  # shorter cannot hold a 7-digit run: the common case
                event_dict[key] = scrub(value)
        elif isinstance(value, list | tuple):
            event_dict[key] = [scrub(v) if isinstance(v, str) else v for v in value]
    event = event_dict.get("event")
    if isinstance(event, str) and len(event) > 64:  # stdlib records' messages land here
        event_dict["event"] = scrub(event)
    return event_dict


def _bounded(
    renderer: Callable[[Any, str, MutableMapping[str, Any]], str], max_bytes: int
) -> Callable[[Any, str, MutableMapping[str, Any]], str]:
    def render(logger: Any, name: str, event_dict: MutableMapping[str, Any]) -> str:
        line = renderer(logger, name, event_dict)
        if len(line) <= max_bytes:
            return line
        keep = {k: event_dict.get(k) for k in ("timestamp", "level", "event", "lookup_id")}
        return json.dumps({**keep, "truncated": len(line)})

    return render


FLUSH_INTERVAL_S = 0.05
MAX_PENDING_LINES = 1_000


class BatchedLines:
    """Log lines written together, at most FLUSH_INTERVAL_S after the first of them.

    structlog's PrintLogger writes and flushes every line: a system call per lookup,
    measured at ~9% of the daemon's CPU at 1,300 lookups/s with stderr on a pipe
    (as under systemd or Docker). Written once per loop turn, the writes still cost
    ~5 µs per cached answer at 7,000 answers/s; every 50 ms they are one write of a
    few hundred lines. At most MAX_PENDING_LINES wait (each at most max_line_bytes):
    a burst goes out at once. Without a running loop (CLI, start-up) each line is
    written at once; whatever is pending is written at exit (a SIGKILL loses at
    most the last 50 ms).
    """

    def __init__(self, file: TextIO, interval_s: float = FLUSH_INTERVAL_S) -> None:
        self._file = file
        self._interval_s = interval_s
        self._lines: list[str | _Deferred] = []
        self._timer: asyncio.TimerHandle | None = None
        self._timer_loop: asyncio.AbstractEventLoop | None = None
        atexit.register(self.flush)

    def msg(self, message: str | _Deferred) -> None:
        """A rendered line, or one to render when written (see _HotLines)."""
        lines = self._lines
        lines.append(message)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        if self._timer_loop is loop:  # a flush is due on this loop
            if len(lines) >= MAX_PENDING_LINES:
                self.flush()
            return
        self._timer = loop.call_later(self._interval_s, self.flush)
        self._timer_loop = loop  # not the timer's: one of a loop since closed never fires

    log = debug = info = warn = warning = msg
    fatal = failure = err = error = critical = exception = msg

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = self._timer_loop = None
        if not self._lines:
            return
        lines, self._lines = self._lines, []
        try:
            self._file.write("\n".join(map(_rendered, lines)) + "\n")
            self._file.flush()
        except (OSError, ValueError):  # stderr closed or gone: nothing to report it on
            pass


# A line kept as its parts until written: (render, time logged, fields).
_Deferred = tuple[Callable[[float, dict[str, Any]], str], float, dict[str, Any]]


def _rendered(line: str | _Deferred) -> str:
    if isinstance(line, str):
        return line
    render, when, fields = line
    try:
        return render(when, fields)
    except Exception as exc:  # one bad value must not cost the other lines
        return _json({"event": "log.unrenderable", "error": type(exc).__name__})


class _Timestamp:
    """ISO 8601 UTC with microseconds, the date and time formatted once a second:
    structlog's TimeStamper builds a datetime per line (~5 µs), a fifth of a cached
    answer's whole cost."""

    __slots__ = ("_prefix", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(
        self, _: Any, __: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        event_dict["timestamp"] = self.stamp(time.time())
        return event_dict

    def stamp(self, now: float) -> str:
        second = int(now)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._prefix}.{int((now - second) * 1e6):06d}Z"


def _json(obj: Any, **_: Any) -> str:
    """orjson: a line's JSON in ~1 µs instead of json.dumps's ~8; anything it cannot
    serialize is written as its str()."""
    return orjson.dumps(obj, default=str).decode()


class _HotLines:
    """The JSON path of structlog's chain, for the lines logged on every lookup.

    A cached answer costs tens of µs; structlog's bound-logger machinery (method
    proxy, context copy, processor loop) cost ~7 µs of its ~20 for `lookup.done`.
    Same guards, same order, same writer: fields scrubbed, a timestamp, bounded.
    Used only while structlog still runs the chain configure_logging() installed
    (its renderer last): a test's capture_logs() or reset_defaults() takes over.
    """

    __slots__ = ("_render", "_timestamp", "_writer")

    def __init__(self, writer: BatchedLines, max_line_bytes: int) -> None:
        self._writer = writer
        self._timestamp = _Timestamp()
        self._render = _bounded(lambda _, __, fields: _json(fields), max_line_bytes)

    @property
    def renderer(self) -> Callable[[Any, str, MutableMapping[str, Any]], str]:
        return self._render

    def __call__(self, event: str, fields: dict[str, Any]) -> None:
        """The line is rendered when the batch is written: the moment it is logged
        costs a tuple; rendering a few hundred lines in a row later is cheaper than
        one by one between requests (cached check: 154 -> 146 µs of CPU, best of six)."""
        fields["event"] = event
        fields["level"] = "info"
        self._writer.msg((self._render_at, time.time(), fields))

    def _render_at(self, when: float, fields: dict[str, Any]) -> str:
        scrub_personal_data(None, "", fields)
        fields["timestamp"] = self._timestamp.stamp(when)
        return self._render(None, "", fields)


_hot: _HotLines | None = None


_writer: BatchedLines | None = None


def flush_logs() -> None:
    """Write what is pending now (tests reading the log; a daemon about to exit)."""
    if _writer is not None:
        _writer.flush()


def log_info(logger: Any, event: str, fields: dict[str, Any]) -> None:
    """`logger.info(event, **fields)`, cheaper when the output is JSON at INFO or below
    (production); console output, filtered levels and any other structlog set-up keep
    structlog's own path. `fields` is taken over (the caller passes a fresh dict)."""
    hot = _hot
    if hot is not None and _still_ours(hot):
        hot(event, fields)
    else:
        logger.info(event, **fields)


def _still_ours(hot: _HotLines) -> bool:
    """Whether structlog still ends in our renderer. Read off structlog's config object
    (get_config() builds a dict per call, ~1.5 µs in the daemon); test_log_safety
    fails if a structlog upgrade moves it, and then the public way is taken."""
    processors = getattr(_STRUCTLOG_CONFIG, "default_processors", None)
    if processors is None:
        processors = structlog.get_config()["processors"]
    return bool(processors) and processors[-1] is hot.renderer


def configure_logging(
    fmt: str = "auto",
    level: str = "INFO",
    file: TextIO | None = None,
    max_line_bytes: int = 2048,
    cache: bool = True,
) -> None:
    """`fmt`: "json", "console", or "auto" (console when stderr is a terminal).

    `cache=False` (tests) keeps module loggers from binding for good to this
    configuration on their first use, so a later configuration still reaches them.
    """
    out = file or sys.stderr
    if fmt == "auto":
        fmt = "console" if out.isatty() else "json"
    global _hot, _writer
    if _writer is not None:
        _writer.flush()  # lines of the previous configuration go where they were headed
    writer = _writer = BatchedLines(out)
    _hot = (
        _HotLines(writer, max_line_bytes)
        if fmt == "json" and logging.getLevelName(level) <= logging.INFO
        else None
    )
    renderer: Any = (
        structlog.dev.ConsoleRenderer()
        if fmt == "console"
        else structlog.processors.JSONRenderer(serializer=_json)
    )
    last = _bounded(renderer, max_line_bytes) if _hot is None else _hot.renderer
    # No contextvars: nothing binds them, and the hot lines above could not carry them.
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.format_exc_info,
            scrub_personal_data,
            _Timestamp(),
            last,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=lambda *_: writer,  # one writer for all: lines keep their order
        cache_logger_on_first_use=cache,
    )
    _route_stdlib(level)


class _ToStructlog(logging.Handler):
    """Records of stdlib loggers (aiohttp, asyncio) go through the same processors,
    so they are masked, bounded and in the same format as ours."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            logger = structlog.get_logger(record.name)
            kw: dict[str, Any] = {"logger": record.name}
            if record.exc_info:
                kw["exc_info"] = record.exc_info
            logger.log(record.levelno, scrub(record.getMessage()), **kw)
        except Exception:  # logging must never raise into the caller
            pass


def _route_stdlib(level: str) -> None:
    root = logging.getLogger()
    for h in list(root.handlers):
        if isinstance(h, _ToStructlog):
            root.removeHandler(h)
    root.addHandler(_ToStructlog())
    root.setLevel(logging.getLevelName(level))
