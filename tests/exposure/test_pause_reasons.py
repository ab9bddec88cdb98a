"""A pause keeps every reason it has had: "arousal, then client", never just "client" (issue 12)."""

from __future__ import annotations

from biofeedback.exposure import Consent, OfferStep, Pause, PauseReason, SessionState
from biofeedback.service import payloads
from tests.exposure.helpers import C, T, exposing, feed, now

A = PauseReason.AROUSAL


def test_a_client_pause_on_top_of_an_arousal_pause_keeps_both_reasons() -> None:
    s = exposing()
    feed(s, 3, 12, 80.0)  # held above upper (70) for the dwell (5 s): arousal pause, grounding
    assert now(s) is SessionState.GROUNDING
    assert s.snapshot().pause_reasons == (A,)
    events = s.handle(Pause(13, C))
    snap = s.snapshot()
    assert snap.pause_reason is PauseReason.CLIENT  # the client's pause wins ...
    assert snap.pause_reasons == (A, PauseReason.CLIENT)  # ... and the arousal is not forgotten
    (ack,) = [e for e in events if e.kind == "pause_acknowledged"]
    assert ack.values["earlier_reason"] == "arousal"
    # what the dashboard reads on MQTT
    body = payloads.session_snapshot("c-1", snap)
    assert body["pause_reason"] == "client"
    assert body["pause_reasons"] == ["arousal", "client"]


def test_a_therapist_pause_never_hides_the_clients_and_repeats_add_nothing() -> None:
    s = exposing()
    s.handle(Pause(3, C))
    s.handle(Pause(4, T))  # a therapist pause never overrides a client's
    s.handle(Pause(5, C))
    assert s.snapshot().pause_reasons == (PauseReason.CLIENT,)


def test_a_pause_from_recovered_is_still_the_same_paused_step() -> None:
    s = exposing()
    feed(s, 3, 12, 80.0)
    feed(s, 12, 30, 20.0)  # below lower (40) for recovery_s (10 s)
    assert now(s) is SessionState.RECOVERED
    s.handle(Pause(31, C))
    assert now(s) is SessionState.PAUSED
    assert s.snapshot().pause_reasons == (A, PauseReason.CLIENT)


def test_reasons_end_with_the_pause() -> None:
    s = exposing()
    feed(s, 3, 12, 80.0)
    s.handle(Pause(13, C))
    feed(s, 13, 30, 20.0)
    s.handle(OfferStep(31, T))  # offer to resume step 1
    assert now(s) is SessionState.RESUME_OFFERED
    assert s.snapshot().pause_reasons == (A, PauseReason.CLIENT)

    s.handle(Consent(32, C))
    assert now(s) is SessionState.EXPOSING
    assert s.snapshot().pause_reasons == ()
    assert s.snapshot().pause_reason is None
    # a new pause starts a new list
    s.handle(Pause(33, T))
    assert s.snapshot().pause_reasons == (PauseReason.THERAPIST,)


def test_event_texts_number_steps_from_one() -> None:
    s = exposing()  # step index 0 was offered and consented
    s.handle(Pause(3, T))
    (ev,) = [e for e in s.handle(OfferStep(4, T, step=1)) if e.kind == "transition"]
    assert ev.values["step"] == 1  # the index in values stays 0-based (docs/mqtt.md)
    assert "step 2 'Two'" in ev.reason
