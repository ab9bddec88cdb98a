"""The client's "I'm ready to continue" is a request for the therapist, never a resume (issue 12).

The stateful test (test_stateful.py) checks the same after every random input; these are the
cases named in docs/session.md, "Client-led resume".
"""

from __future__ import annotations

import pytest

from biofeedback.errors import CommandError
from biofeedback.exposure import (
    READY_REQUEST,
    ArousalSample,
    Consent,
    Decline,
    EndSession,
    ExposureSession,
    OfferStep,
    Pause,
    PauseReason,
    ReadyToContinue,
    SessionOptions,
    SessionState,
    Tick,
)
from biofeedback.service import payloads
from tests.exposure.helpers import C, T, exposing, feed, now, protocol

S = SessionState


def test_ready_after_a_client_pause_tells_the_therapist_and_changes_nothing() -> None:
    s = exposing()
    s.handle(Pause(3, C))
    before = s.snapshot()
    events = s.handle(ReadyToContinue(4, C, command_id="r1"))
    assert [(e.kind, e.actor, e.from_state, e.to_state) for e in events] == [
        ("client_ready", C, S.PAUSED, S.PAUSED)
    ]
    (ev,) = events
    assert ev.values == {"step": 0, "pause_reason": "client"}
    assert "step 1" in ev.reason  # numbered from 1 for people; the index stays 0-based
    snap = s.snapshot()
    assert (snap.client_ready, snap.client_ready_t) == (True, 4.0)
    assert snap.state is S.PAUSED
    assert snap.offer is None
    assert snap.consent_needed is None
    assert snap.pause_reason is before.pause_reason
    # what the dashboard reads on MQTT
    body = payloads.session_snapshot("c-1", snap)
    assert body["client_ready"] is True
    payloads.validate("event", payloads.session_event("c-1", ev))
    # a repeated request adds nothing
    assert s.handle(ReadyToContinue(5, C)) == []


def test_resuming_still_takes_the_therapists_offer_and_the_clients_consent() -> None:
    s = exposing()
    s.handle(Pause(3, C))
    s.handle(ReadyToContinue(4, C))
    with pytest.raises(CommandError, match="nothing to consent to"):
        s.handle(Consent(5, C))
    assert now(s) is S.PAUSED
    s.handle(OfferStep(6, T))
    assert now(s) is S.RESUME_OFFERED
    assert s.snapshot().client_ready is False  # the offer answers the request
    with pytest.raises(CommandError, match="an offer is open"):
        s.handle(ReadyToContinue(7, C))
    s.handle(Consent(8, C))
    assert now(s) is S.EXPOSING


def test_ready_is_never_an_offer_even_with_auto_offer() -> None:
    from dataclasses import replace

    proto = replace(protocol(), options=SessionOptions(auto_offer=True))
    s = exposing(proto)
    s.handle(Pause(3, C))  # a client pause: only the therapist re-offers
    feed(s, 4, 30, 20.0)  # recovered
    assert now(s) is S.RECOVERED
    events = s.handle(ReadyToContinue(31, C))
    assert [e.kind for e in events] == ["client_ready"]
    events = s.handle(Tick(60))
    assert now(s) is S.RECOVERED
    assert s.snapshot().client_ready is True


@pytest.mark.parametrize("who", ["client", "therapist"])
def test_any_pause_withdraws_the_request(who: str) -> None:
    s = exposing()
    feed(s, 3, 12, 80.0)  # arousal pause, grounding
    assert now(s) is S.GROUNDING
    s.handle(ReadyToContinue(12, C))
    events = s.handle(Pause(13, C if who == "client" else T))
    assert s.snapshot().client_ready is False
    (ack,) = [e for e in events if e.kind == "pause_acknowledged"]
    assert ack.values["ready_withdrawn"] is True


def test_a_new_arousal_pause_withdraws_it() -> None:
    s = exposing()
    s.handle(Pause(3, C))
    feed(s, 4, 20, 20.0)
    assert now(s) is S.RECOVERED
    s.handle(ReadyToContinue(20, C))
    feed(s, 21, 30, 90.0)  # held high again: back to paused, grounding
    assert now(s) is S.GROUNDING
    assert s.snapshot().pause_reason is PauseReason.AROUSAL
    assert s.snapshot().client_ready is False


def test_refused_where_nothing_is_paused_and_only_the_client_may_say_it() -> None:
    s = ExposureSession(protocol(), t=0.0, client_id="c-1", needs_calibration=True)
    with pytest.raises(CommandError, match="calibration is running"):
        s.handle(ReadyToContinue(1, C))
    s = exposing()
    with pytest.raises(CommandError, match="the step is running"):
        s.handle(ReadyToContinue(3, C))
    s.handle(Pause(4, C))
    with pytest.raises(CommandError, match="may only be sent by client"):
        s.handle(ReadyToContinue(5, T))
    s.handle(OfferStep(6, T, 1))
    with pytest.raises(CommandError, match="an offer is open"):
        s.handle(ReadyToContinue(7, C))
    s.handle(Decline(8, C))
    assert now(s) is S.READY
    with pytest.raises(CommandError, match="no step is paused"):
        s.handle(ReadyToContinue(9, C))
    s.handle(ArousalSample(9.5, 50.0))
    s.handle(EndSession(10, T))
    s.handle(EndSession(11, T))
    with pytest.raises(CommandError, match="has ended"):
        s.handle(ReadyToContinue(12, C))


def test_the_rule_table_allows_it_exactly_in_the_paused_states() -> None:
    allowed = {state for state, rule in READY_REQUEST.items() if rule.allowed}
    assert allowed == {S.PAUSED, S.GROUNDING, S.RECOVERED}
    assert set(READY_REQUEST) == set(SessionState)
