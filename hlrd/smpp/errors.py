"""Errors of the SMPP core.

A `PduError` is raised for input we refuse; it carries everything the session needs
to answer the peer correctly (sequence number, command_status, whether to answer
with generic_nack or with the command's own response), so the layer that reads bytes
never has to guess how to reply.
"""

from __future__ import annotations

from .constants import Status, status_name


class SmppError(Exception):
    """Base of every error raised by hlrd.smpp."""


class PduError(SmppError):
    """An incoming PDU that cannot be accepted.

    `fatal` means the byte stream can no longer be framed (a bad command_length):
    the connection must be closed after answering.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        sequence: int = 0,
        command_id: int = 0,
        field: str | None = None,
        fatal: bool = False,
        nack: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.sequence = sequence
        self.command_id = command_id
        self.field = field
        self.fatal = fatal
        # nack: the header itself is unusable (unknown command, bad length), so the
        # answer is generic_nack rather than the command's own *_resp.
        self.nack = nack or fatal

    def __str__(self) -> str:
        return f"{self.args[0]} ({status_name(self.status)}, seq={self.sequence})"


class FramingError(PduError):
    """command_length is impossible: the stream cannot be resynchronised."""

    def __init__(self, message: str, *, sequence: int = 0, command_id: int = 0) -> None:
        super().__init__(
            message,
            status=Status.ESME_RINVCMDLEN,
            sequence=sequence,
            command_id=command_id,
            fatal=True,
        )


class EncodeError(SmppError, ValueError):
    """A PDU we were asked to send violates SMPP limits; names the field."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class StateError(SmppError):
    """We tried to send a PDU the current session state does not allow."""


class RequestTimeout(SmppError, TimeoutError):
    """No response arrived for a request within its expiry time."""


class ConnectionLost(SmppError, ConnectionError):
    """The link dropped while a request was outstanding; the request was not answered."""


class WindowClosed(SmppError):
    """The connection is closing or closed; no new requests are accepted."""


class ResponseError(SmppError):
    """The peer answered a request with a non-zero command_status."""

    def __init__(self, status: int, command_id: int) -> None:
        super().__init__(f"peer answered {status_name(status)}")
        self.status = status
        self.command_id = command_id
