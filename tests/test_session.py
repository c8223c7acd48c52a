"""The SMPP session state machine, tested as h11 is: two peers wired in memory."""

from __future__ import annotations

import struct

import pytest

from hlrd.smpp import codec
from hlrd.smpp.constants import CommandId, Status
from hlrd.smpp.errors import StateError
from hlrd.smpp.pdu import (
    BindReceiver,
    BindTransceiver,
    BindTransmitter,
    DeliverSm,
    DeliverSmResp,
    EnquireLink,
    GenericNack,
    Pdu,
    SubmitSm,
    SubmitSmResp,
    Unbind,
    make_response,
)
from hlrd.smpp.session import (
    MAX_SEQUENCE,
    Event,
    PduRejected,
    RequestReceived,
    ResponseReceived,
    Role,
    Session,
    State,
    Unbound,
)


def feed(session: Session, data: bytes) -> list[Event]:
    session.receive_data(data)
    events = []
    while (ev := session.next_event()) is not None:
        events.append(ev)
    return events


def pump(src: Session, dst: Session) -> list[Event]:
    return feed(dst, src.data_to_send())


def bound_pair(bind: Pdu | None = None) -> tuple[Session, Session]:
    esme, smsc = Session(Role.ESME), Session(Role.SMSC)
    esme.send(bind or BindTransceiver(system_id="a", password="b"))
    (ev,) = pump(esme, smsc)
    assert isinstance(ev, RequestReceived)
    smsc.send(make_response(ev.pdu, system_id="smsc"))
    (resp,) = pump(smsc, esme)
    assert isinstance(resp, ResponseReceived)
    return esme, smsc


@pytest.mark.parametrize(
    ("bind", "state"),
    [
        (BindTransmitter(), State.BOUND_TX),
        (BindReceiver(), State.BOUND_RX),
        (BindTransceiver(), State.BOUND_TRX),
    ],
)
def test_bind_moves_both_sides_to_the_bound_state(bind: Pdu, state: State) -> None:
    esme, smsc = bound_pair(bind)
    assert esme.state is state
    assert smsc.state is state


def test_refused_bind_leaves_both_sides_open() -> None:
    esme, smsc = Session(Role.ESME), Session(Role.SMSC)
    esme.send(BindTransceiver())
    (ev,) = pump(esme, smsc)
    assert isinstance(ev, RequestReceived)
    smsc.send(make_response(ev.pdu, Status.ESME_RINVPASWD))
    (resp,) = pump(smsc, esme)
    assert isinstance(resp, ResponseReceived)
    assert resp.pdu.status == Status.ESME_RINVPASWD
    assert esme.state is State.OPEN
    assert smsc.state is State.OPEN


def test_submit_before_bind_is_refused_with_rinvbndsts() -> None:
    smsc = Session(Role.SMSC)
    (ev,) = feed(smsc, codec.encode(SubmitSm(sequence=11)))
    assert isinstance(ev, PduRejected)
    reply = codec.decode(smsc.data_to_send())
    assert isinstance(reply, SubmitSmResp)
    assert (reply.status, reply.sequence) == (Status.ESME_RINVBNDSTS, 11)


def test_receiver_bind_may_not_submit() -> None:
    esme, smsc = bound_pair(BindReceiver())
    with pytest.raises(StateError):
        esme.send(SubmitSm())
    (ev,) = feed(smsc, codec.encode(SubmitSm(sequence=5)))
    assert isinstance(ev, PduRejected)
    assert codec.decode(smsc.data_to_send()).status == Status.ESME_RINVBNDSTS


def test_transmitter_bind_gets_no_deliver_sm() -> None:
    esme, smsc = bound_pair(BindTransmitter())
    with pytest.raises(StateError):
        smsc.send(DeliverSm())
    (ev,) = feed(esme, codec.encode(DeliverSm(sequence=9)))
    assert isinstance(ev, PduRejected)
    reply = codec.decode(esme.data_to_send())
    assert isinstance(reply, DeliverSmResp)
    assert reply.status == Status.ESME_RINVBNDSTS


def test_second_bind_on_a_bound_link_is_ralybnd() -> None:
    _, smsc = bound_pair()
    (ev,) = feed(smsc, codec.encode(BindTransceiver(sequence=99)))
    assert isinstance(ev, PduRejected)
    reply = codec.decode(smsc.data_to_send())
    assert (reply.command_id, reply.status) == (
        CommandId.BIND_TRANSCEIVER_RESP,
        Status.ESME_RALYBND,
    )


def test_request_response_correlates_by_sequence_and_clears_outstanding() -> None:
    esme, smsc = bound_pair()
    a = esme.send(SubmitSm(destination_addr="1"))
    b = esme.send(SubmitSm(destination_addr="2"))
    assert set(esme.outstanding) == {a.sequence, b.sequence}
    reqs = pump(esme, smsc)
    # answer out of order
    for ev in reversed(reqs):
        assert isinstance(ev, RequestReceived)
        smsc.send(SubmitSmResp(sequence=ev.pdu.sequence, message_id=f"m{ev.pdu.sequence}"))
    resps = pump(smsc, esme)
    assert [(r.pdu.sequence, r.request) for r in resps] == [  # type: ignore[union-attr]
        (b.sequence, b),
        (a.sequence, a),
    ]
    assert esme.outstanding == {}


def test_enquire_link_is_answered_by_the_session_itself_even_before_bind() -> None:
    smsc = Session(Role.SMSC)
    assert feed(smsc, codec.encode(EnquireLink(sequence=3))) == []
    reply = codec.decode(smsc.data_to_send())
    assert (reply.command_id, reply.sequence) == (CommandId.ENQUIRE_LINK_RESP, 3)


def test_unbind_from_the_peer_is_answered_and_unbinds() -> None:
    esme, smsc = bound_pair()
    esme.send(Unbind())
    (ev,) = pump(esme, smsc)
    assert isinstance(ev, Unbound)
    assert smsc.state is State.UNBOUND
    (resp,) = pump(smsc, esme)
    assert isinstance(resp, ResponseReceived)
    assert resp.pdu.command_id == CommandId.UNBIND_RESP
    assert esme.state is State.UNBOUND
    with pytest.raises(StateError):
        esme.send(SubmitSm())


def test_unknown_command_gets_generic_nack_and_the_session_survives() -> None:
    _, smsc = bound_pair()
    bad = struct.pack(">IIII", 16, 0x00000042, 0, 17)
    (ev,) = feed(smsc, bad + codec.encode(SubmitSm(sequence=18)))[:1]
    assert isinstance(ev, PduRejected)
    out = codec.Framer().feed(smsc.data_to_send())
    assert out == [GenericNack(sequence=17, status=Status.ESME_RINVCMDID)]
    assert smsc.state is State.BOUND_TRX


def test_bad_command_length_nacks_and_closes() -> None:
    _, smsc = bound_pair()
    (ev,) = feed(smsc, struct.pack(">IIII", 8, CommandId.SUBMIT_SM, 0, 5))
    assert isinstance(ev, PduRejected)
    assert ev.error.fatal
    assert codec.decode(smsc.data_to_send()) == GenericNack(
        sequence=5, status=Status.ESME_RINVCMDLEN
    )
    assert smsc.state is State.CLOSED
    assert feed(smsc, codec.encode(EnquireLink(sequence=1))) == []


def test_sequence_numbers_wrap_at_0x7fffffff_and_skip_outstanding() -> None:
    esme, _ = bound_pair()
    esme._next_seq = MAX_SEQUENCE
    first = esme.send(SubmitSm())
    second = esme.send(SubmitSm())
    assert (first.sequence, second.sequence) == (MAX_SEQUENCE, 1)
    esme._next_seq = MAX_SEQUENCE  # MAX_SEQUENCE and 1 are still outstanding
    assert esme.send(SubmitSm()).sequence == 2


def test_close_hands_back_unanswered_requests() -> None:
    esme, _ = bound_pair()
    sent = [esme.send(SubmitSm()) for _ in range(3)]
    assert esme.close() == sent
    assert esme.state is State.CLOSED
    with pytest.raises(StateError):
        esme.send(SubmitSm())


def test_expired_request_answer_is_reported_unsolicited() -> None:
    esme, smsc = bound_pair()
    req = esme.send(SubmitSm())
    pump(esme, smsc)
    assert esme.expire(req.sequence) is req
    smsc.send(SubmitSmResp(sequence=req.sequence))
    (ev,) = pump(smsc, esme)
    assert isinstance(ev, ResponseReceived)
    assert ev.request is None


def test_pdus_in_one_read_are_judged_after_the_answer_to_the_previous_one() -> None:
    """A bind and a submit pipelined in one TCP read: the submit sees the bound state."""
    smsc = Session(Role.SMSC)
    smsc.receive_data(
        codec.encode(BindTransceiver(sequence=1)) + codec.encode(SubmitSm(sequence=2))
    )
    bind = smsc.next_event()
    assert isinstance(bind, RequestReceived)
    smsc.send(make_response(bind.pdu))
    submit = smsc.next_event()
    assert isinstance(submit, RequestReceived)
    assert submit.pdu.sequence == 2
    assert smsc.next_event() is None
