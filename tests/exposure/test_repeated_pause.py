"""Repeated pauses: acknowledged without flooding the event log, and never weakening a real pause.

A client link that sends thousands of pauses (a stuck key, a script) must not push the session's
real events out of the dashboard's history: a pause that changes nothing adds no event.
"""

from __future__ import annotations

from biofeedback.exposure import (
    Consent,
    ExposureSession,
    OfferStep,
    Pause,
    PauseReason,
    SessionEvent,
    SessionState,
)
from tests.exposure.helpers import C, T, exposing, feed, now, protocol

S = SessionState


def _acks(events: list[SessionEvent]) -> int:
    return sum(e.kind == "pause_acknowledged" for e in events)


def test_thousands_of_pauses_while_paused_add_no_events() -> None:
    s = exposing()
    first = s.handle(Pause(3.0, C))
    assert now(s) is S.PAUSED
    assert first[0].kind == "transition"
    seq = s.snapshot().seq
    later: list[SessionEvent] = []
    for i in range(3000):
        later += s.handle(Pause(3.0 + i * 0.001, C))
    assert _acks(later) == 0
    assert s.snapshot().seq == seq + len(later)  # nothing but what time itself caused
    assert now(s) is S.PAUSED
    assert s.snapshot().pause_reason is PauseReason.CLIENT


def test_a_pause_that_changes_the_reason_is_still_told() -> None:
    s = exposing()
    feed(s, 3, 12, 90.0)  # held above upper for the dwell: the system pauses and grounds
    assert now(s) in (S.PAUSED, S.GROUNDING)
    assert s.snapshot().pause_reason is PauseReason.AROUSAL
    ev = s.handle(Pause(12.0, C))
    assert _acks(ev) == 1  # arousal -> client: the therapist sees the client asked to stop
    assert ev[0].values["pause_reason"] == "client"
    assert _acks(s.handle(Pause(12.5, C))) == 0
    assert _acks(s.handle(Pause(13.0, T))) == 0  # a therapist pause never overrides the client's
    assert s.snapshot().pause_reason is PauseReason.CLIENT


def test_nothing_running_acknowledges_each_role_once_per_state() -> None:
    s = ExposureSession(protocol(), t=0.0, client_id="c-1", needs_calibration=True)
    assert now(s) is S.CALIBRATING
    assert _acks(s.handle(Pause(1.0, C))) == 1
    assert sum(_acks(s.handle(Pause(1.0 + i * 0.01, C))) for i in range(500)) == 0
    assert _acks(s.handle(Pause(2.0, T))) == 1  # the therapist's own first pause is told
    assert _acks(s.handle(Pause(2.1, T))) == 0


def test_a_real_pause_after_a_flood_of_repeats_still_pauses() -> None:
    s = exposing()
    s.handle(Pause(3.0, C))
    for i in range(200):
        s.handle(Pause(3.0 + i * 0.01, C))
    # the client consents to resume later: the next pause is a real one and must work
    feed(s, 6, 20, 30.0)
    s.handle(OfferStep(20.0, T))
    s.handle(Consent(21.0, C))
    assert now(s) is S.EXPOSING
    ev = s.handle(Pause(22.0, C))
    assert now(s) is S.PAUSED
    assert [(e.from_state, e.to_state) for e in ev if e.kind == "transition"] == [
        (S.EXPOSING, S.PAUSED)
    ]
