"""Sans-io SMPP session (SMPP 3.4 §2.3): bytes in, events out; PDUs in, bytes out.

No sockets and no clock: the transport (or a test) feeds received bytes, reads the
bytes to send, and decides when a request has waited too long. Two sessions wired
together in memory make a complete SMPP link, which is how the state machine is
tested.

The session answers by itself what never needs the application: enquire_link,
unbind, PDUs that fail to decode, and PDUs not allowed in the current state.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from . import codec
from .constants import CommandId, Status
from .errors import PduError, StateError
from .pdu import (
    BIND_CLASSES,
    BindReceiver,
    BindTransceiver,
    BindTransmitter,
    EnquireLinkResp,
    GenericNack,
    Pdu,
    UnbindResp,
    make_response,
    response_class,
)

MAX_SEQUENCE = 0x7FFFFFFF


class Role(Enum):
    ESME = "esme"  # binds, submits; receives deliver_sm
    SMSC = "smsc"  # accepts binds; delivers


class State(Enum):
    OPEN = "open"
    BOUND_TX = "bound_tx"
    BOUND_RX = "bound_rx"
    BOUND_TRX = "bound_trx"
    UNBOUND = "unbound"
    CLOSED = "closed"

    @property
    def bound(self) -> bool:
        return self in (State.BOUND_TX, State.BOUND_RX, State.BOUND_TRX)


_BIND_STATE: dict[int, State] = {
    CommandId.BIND_TRANSMITTER: State.BOUND_TX,
    CommandId.BIND_RECEIVER: State.BOUND_RX,
    CommandId.BIND_TRANSCEIVER: State.BOUND_TRX,
    CommandId.BIND_TRANSMITTER_RESP: State.BOUND_TX,
    CommandId.BIND_RECEIVER_RESP: State.BOUND_RX,
    CommandId.BIND_TRANSCEIVER_RESP: State.BOUND_TRX,
}

_BOUND = frozenset({State.BOUND_TX, State.BOUND_RX, State.BOUND_TRX})
_SENDING = frozenset({State.BOUND_TX, State.BOUND_TRX})  # ESME may submit
_RECEIVING = frozenset({State.BOUND_RX, State.BOUND_TRX})  # SMSC may deliver
_ANY_LIVE = frozenset({State.OPEN, *_BOUND})

# Requests each role may send, and the states in which it may send them.
_ALLOWED: dict[Role, dict[int, frozenset[State]]] = {
    Role.ESME: {
        CommandId.BIND_TRANSMITTER: frozenset({State.OPEN}),
        CommandId.BIND_RECEIVER: frozenset({State.OPEN}),
        CommandId.BIND_TRANSCEIVER: frozenset({State.OPEN}),
        CommandId.SUBMIT_SM: _SENDING,
        CommandId.DATA_SM: _SENDING,
        CommandId.QUERY_SM: _SENDING,
        CommandId.UNBIND: _BOUND,
        CommandId.ENQUIRE_LINK: _ANY_LIVE,
        CommandId.GENERIC_NACK: _ANY_LIVE,
    },
    Role.SMSC: {
        CommandId.DELIVER_SM: _RECEIVING,
        CommandId.DATA_SM: _RECEIVING,
        CommandId.UNBIND: _BOUND,
        CommandId.ENQUIRE_LINK: _ANY_LIVE,
        CommandId.GENERIC_NACK: _ANY_LIVE,
    },
}


@dataclass(slots=True)
class RequestReceived:
    """A request the application must answer (submit_sm, deliver_sm, bind, ...)."""

    pdu: Pdu


@dataclass(slots=True)
class ResponseReceived:
    """A response; `request` is the outstanding request it answers, None if unsolicited."""

    pdu: Pdu
    request: Pdu | None


@dataclass(slots=True)
class PduRejected:
    """Input refused; the session has already queued `reply` (if any) to the peer."""

    error: PduError
    reply: Pdu | None


@dataclass(slots=True)
class Unbound:
    """The peer unbound (already answered); the application should close the link."""


Event = RequestReceived | ResponseReceived | PduRejected | Unbound


class Session:
    """One SMPP link's protocol state, for either role."""

    def __init__(self, role: Role, max_pdu_length: int = codec.DEFAULT_MAX_PDU_LENGTH) -> None:
        self.role = role
        self.peer_role = Role.SMSC if role is Role.ESME else Role.ESME
        self.state = State.OPEN
        self.outstanding: dict[int, Pdu] = {}
        self._framer = codec.Framer(max_pdu_length)
        self.pdus_received = 0  # interpreted so far, those answered by the session included
        self._out = bytearray()
        self._next_seq = 1

    # -- output --------------------------------------------------------------

    def data_to_send(self) -> bytes:
        """Bytes queued for the peer since the last call (coalesced writes)."""
        data = bytes(self._out)
        self._out.clear()
        return data

    @property
    def has_data_to_send(self) -> bool:
        return bool(self._out)

    def next_sequence(self) -> int:
        seq = self._next_seq
        while seq in self.outstanding:
            seq = 1 if seq >= MAX_SEQUENCE else seq + 1
        self._next_seq = 1 if seq >= MAX_SEQUENCE else seq + 1
        return seq

    def send(self, pdu: Pdu) -> Pdu:
        """Queue a PDU. Requests get a sequence number and are tracked until answered."""
        if self.state is State.CLOSED:
            raise StateError(f"cannot send {pdu.command_name}: session closed")
        cid = pdu.command_id
        if cid & 0x80000000 and cid != CommandId.GENERIC_NACK:
            self._send_response(pdu)
            return pdu
        allowed = _ALLOWED[self.role].get(cid)
        if allowed is None or self.state not in allowed:
            raise StateError(
                f"{self.role.value} may not send {pdu.command_name} in state {self.state.value}"
            )
        if cid == CommandId.GENERIC_NACK:
            self._out += codec.encode(pdu)
            return pdu
        if not pdu.sequence:
            pdu.sequence = self.next_sequence()
        self._out += codec.encode(pdu)
        self.outstanding[pdu.sequence] = pdu
        return pdu

    def _send_response(self, pdu: Pdu) -> None:
        self._out += codec.encode(pdu)
        cid = pdu.command_id
        if cid in _BIND_STATE and self.role is Role.SMSC and pdu.status == Status.ESME_ROK:
            self.state = _BIND_STATE[cid]
        elif cid == CommandId.UNBIND_RESP and pdu.status == Status.ESME_ROK:
            self.state = State.UNBOUND

    def expire(self, sequence: int) -> Pdu | None:
        """Forget an outstanding request whose answer will no longer be waited for."""
        return self.outstanding.pop(sequence, None)

    def close(self) -> list[Pdu]:
        """Mark the link closed; returns the requests that will now never be answered."""
        self.state = State.CLOSED
        self._framer.clear()
        lost = list(self.outstanding.values())
        self.outstanding.clear()
        return lost

    # -- input ---------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Buffer received bytes; `next_event()` then hands out what they contain.

        PDUs are decoded and interpreted one at a time, when the application asks for
        the next event, so the application's answer to one PDU (a bind_resp, say)
        takes effect before the next PDU of the same read is judged, every answer
        leaves in the order its request came, and an application that stops asking
        (it is closing the link) never pays for decoding the rest.
        """
        if self.state is not State.CLOSED:
            self._framer.push(data)

    def discard_input(self) -> None:
        """Drop received bytes not yet interpreted: the link is being closed."""
        self._framer.clear()

    def next_event(self, max_pdus: int = 0) -> Event | None:
        """The next event, or None when the received bytes hold no more.

        With `max_pdus`, None also once that many PDUs were interpreted without an
        event (enquire_links the session answers itself): a caller sharing its
        thread with other links bounds its work per turn that way, by
        `pdus_received`.
        """
        seen = 0
        while (item := self._framer.pop()) is not None:
            self.pdus_received += 1
            if isinstance(item, PduError):
                return self._reject(item)
            event = self._receive_pdu(item)
            if event is not None:
                return event
            seen += 1
            if seen == max_pdus:
                return None
        return None

    def _reject(self, err: PduError) -> PduRejected:
        reply: Pdu | None = None
        if self.state is not State.CLOSED:
            if err.nack:
                reply = GenericNack(sequence=err.sequence, status=err.status)
            elif not err.command_id & 0x80000000:
                reply = response_class(err.command_id)(sequence=err.sequence, status=err.status)
            if reply is not None:
                self._out += codec.encode(reply)
        if err.fatal:
            self.state = State.CLOSED
        elif err.command_id & 0x80000000:
            # A malformed answer still ends the wait for its request.
            self.outstanding.pop(err.sequence, None)
        return PduRejected(err, reply)

    def _receive_pdu(self, pdu: Pdu) -> Event | None:
        cid = pdu.command_id
        if cid & 0x80000000:
            return self._receive_response(pdu)
        if cid == CommandId.ENQUIRE_LINK:
            self._out += codec.encode(EnquireLinkResp(sequence=pdu.sequence))
            return None
        allowed = _ALLOWED[self.peer_role].get(cid)
        if allowed is None or self.state not in allowed:
            status = (
                Status.ESME_RALYBND
                if isinstance(pdu, BIND_CLASSES) and self.state.bound
                else Status.ESME_RINVBNDSTS
            )
            err = PduError(
                f"{pdu.command_name} not allowed in state {self.state.value}",
                status=status,
                sequence=pdu.sequence,
                command_id=cid,
            )
            reply = make_response(pdu, status)
            self._out += codec.encode(reply)
            return PduRejected(err, reply)
        if cid == CommandId.UNBIND:
            self._out += codec.encode(UnbindResp(sequence=pdu.sequence))
            self.state = State.UNBOUND
            return Unbound()
        return RequestReceived(pdu)

    def _receive_response(self, pdu: Pdu) -> Event:
        request = self.outstanding.pop(pdu.sequence, None)
        if request is not None:
            cid = pdu.command_id
            if cid in _BIND_STATE and self.role is Role.ESME:
                if pdu.status == Status.ESME_ROK:
                    self.state = _BIND_STATE[cid]
            elif cid == CommandId.UNBIND_RESP:
                self.state = State.UNBOUND
        return ResponseReceived(pdu, request)


BIND_REQUESTS: dict[State, type[Pdu]] = {
    State.BOUND_TX: BindTransmitter,
    State.BOUND_RX: BindReceiver,
    State.BOUND_TRX: BindTransceiver,
}
