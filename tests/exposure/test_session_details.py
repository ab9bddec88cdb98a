"""Details of the session's behaviour that mutation testing found untested (docs/testing.md).

Each test names what it pins; together with the stateful test, the threshold edges, the
transition rows and the golden event log they leave no unexplained surviving mutant in
biofeedback/exposure/session.py.
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace

import pytest

from biofeedback.errors import CommandError, ParseError
from biofeedback.exposure import (
    AdjustThresholds,
    ArousalSample,
    CalibrationDone,
    CheckinCadence,
    ChooseGrounding,
    CompleteStep,
    Consent,
    ExposureSession,
    GroundingTechnique,
    GuidancePrefs,
    OfferStep,
    Pause,
    SessionLogicError,
    SessionState,
    Step,
    SudsAnswer,
    Tick,
)
from biofeedback.exposure import session as session_module
from biofeedback.exposure.messages import ReadyToContinue
from biofeedback.exposure.rules import ALLOWED, Trigger
from tests.exposure.helpers import C, T, exposing, feed, now, protocol

S = SessionState

SESSION_LOG = "biofeedback.exposure.session"


def test_a_technique_not_on_the_clients_menu_is_refused() -> None:
    menu = (GroundingTechnique.PACED_BREATHING, GroundingTechnique.SENSORY_54321)
    s = exposing(replace(protocol(), guidance=GuidancePrefs(grounding=menu)))
    before = s.snapshot()
    with pytest.raises(
        CommandError, match=r"is not on this client's menu \(paced_breathing, sensory"
    ):
        s.handle(ChooseGrounding(5.0, C, GroundingTechnique.SELF_COMPASSION))
    assert s.snapshot() == before
    s.handle(ChooseGrounding(5.0, C, GroundingTechnique.SENSORY_54321))
    assert s.guidance is not None
    assert s.guidance.technique is GroundingTechnique.SENSORY_54321


def test_requests_that_change_nothing_are_logged_not_recorded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A repeated pause or ready request adds no event (docs/session.md); the debug log still
    # says it came, for whoever reads the service log.
    caplog.set_level(logging.DEBUG, logger=SESSION_LOG)
    s = exposing()
    s.handle(Pause(3.0, C))
    caplog.clear()
    assert s.handle(Pause(4.0, C)) == []
    s.handle(ReadyToContinue(5.0, C))
    assert s.handle(ReadyToContinue(6.0, C)) == []
    messages = [r.getMessage() for r in caplog.records if r.name == SESSION_LOG]
    assert "session c-1: repeated client pause in paused, no event" in messages
    assert "session c-1: repeated ready request, no event" in messages
    assert not [r for r in caplog.records if r.levelno > logging.DEBUG]


def test_every_event_is_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=SESSION_LOG)
    s = exposing()
    events = s.handle(Pause(3.0, T))
    logged = [r.getMessage() for r in caplog.records if r.name == SESSION_LOG]
    assert f"session c-1 event {events[-1]}" in logged


def test_a_pause_withdraws_the_clients_ready_request_and_says_so() -> None:
    s = exposing()
    s.handle(Pause(3.0, C))
    s.handle(ReadyToContinue(4.0, C))
    assert s.snapshot().client_ready
    # The pause changes nothing else (already paused by the client), but withdrawing "I'm
    # ready" is news for the therapist.
    (ev,) = s.handle(Pause(5.0, C))
    assert ev.kind == "pause_acknowledged"
    assert ev.values == {"pause_reason": "client", "ready_withdrawn": True}
    assert not s.snapshot().client_ready


def test_the_session_refuses_to_act_outside_its_own_table(monkeypatch: pytest.MonkeyPatch) -> None:
    s = exposing()
    broken = ALLOWED - {(S.EXPOSING, Trigger.PAUSE, S.PAUSED), (S.READY, Trigger.PAUSE, S.READY)}
    monkeypatch.setattr(session_module, "ALLOWED", broken)
    with pytest.raises(
        SessionLogicError,
        match=r"^transition exposing --pause--> paused is not in the transition table$",
    ):
        s.handle(Pause(3.0, T))
    r = ExposureSession(protocol(), t=0.0, client_id="c-1", needs_calibration=False)
    with pytest.raises(SessionLogicError, match=r"^no acknowledging pause row for state ready$"):
        r.handle(Pause(1.0, C))


def test_step_statuses_follow_the_session() -> None:
    s = ExposureSession(protocol(), t=0.0, client_id="c-1", needs_calibration=False)

    def statuses() -> tuple[str, ...]:
        return tuple(i.status for i in s.snapshot().steps)

    s.handle(ArousalSample(0.0, 50.0))
    assert statuses() == ("pending", "pending")
    s.handle(OfferStep(1.0, T))
    assert statuses() == ("offered", "pending")
    s.handle(Consent(2.0, C))
    assert statuses() == ("exposing", "pending")
    s.handle(Pause(3.0, T))
    assert statuses() == ("paused", "pending")
    s.handle(OfferStep(4.0, T, 1))  # a different step: step 0 was started, not completed
    assert statuses() == ("left", "offered")
    s.handle(ArousalSample(4.0, 50.0))
    s.handle(Consent(5.0, C))
    s.handle(CompleteStep(6.0, T))
    assert statuses() == ("left", "completed")


def test_consent_texts_word_for_word() -> None:
    steps = (
        Step("Talk", "Say what you fear.", 120.0, ()),
        Step("Look", "Look at a picture.", 30.0, ()),
    )
    p = replace(protocol(), steps=steps)
    s = ExposureSession(p, t=0.0, client_id="c-1", needs_calibration=True)
    s.handle(ArousalSample(0.0, 50.0))
    s.handle(CalibrationDone(1.0, ok=False, detail="noisy"))
    s.handle(OfferStep(2.0, T))
    assert s.snapshot().consent_needed == (
        "Step 1 of 2: Talk (about 2 min). Say what you fear. Would you like to begin? "
        "Calibration did not succeed, so automatic pausing may not work. "
        "You can pause at any moment."
    )
    s.handle(CalibrationDone(3.0, ok=True))
    s.handle(OfferStep(4.0, T, 1))
    assert s.snapshot().consent_needed == (
        "Step 2 of 2: Look (about 30 s). Look at a picture. Would you like to begin? "
        "You can pause at any moment."
    )
    s.handle(ArousalSample(4.0, 50.0))
    s.handle(Consent(5.0, C))
    s.handle(Pause(6.0, T))
    s.handle(OfferStep(7.0, T))
    assert s.snapshot().consent_needed == (
        "Would you like to continue step 2 of 2: Look? You can pause at any moment."
    )


def test_dwell_progress_is_the_fraction_held_and_stops_at_one() -> None:
    s = exposing()
    s.handle(AdjustThresholds(2.0, T, dwell_s=1.0))
    s.handle(ArousalSample(3.0, 80.0))
    s.handle(Tick(3.5))
    assert s.snapshot().dwell_progress == 0.5
    s.handle(Tick(4.0))
    assert now(s) is S.GROUNDING
    feed(s, 5.0, 8.0, 80.0)  # still high while grounding: 4 s held, dwell 1 s
    assert s.snapshot().dwell_progress == 1.0


def test_recovery_progress_stays_full_once_recovered() -> None:
    s = exposing()
    s.handle(ArousalSample(3.0, 50.0))
    s.handle(Pause(3.0, T))
    feed(s, 4.0, 14.0, 20.0)
    s.handle(ArousalSample(14.0, 20.0))
    assert now(s) is S.RECOVERED
    s.handle(ArousalSample(15.0, 50.0))  # not below lower any more, but still recovered
    assert now(s) is S.RECOVERED
    assert s.snapshot().recovery_progress == 1.0
    s.handle(OfferStep(16.0, T))
    assert now(s) is S.RESUME_OFFERED
    assert s.snapshot().recovery_progress == 1.0


def test_recovery_progress_is_the_fraction_held_since_the_later_of_pause_and_run() -> None:
    s = exposing()
    s.handle(ArousalSample(3.0, 50.0))
    s.handle(Pause(3.0, T))
    feed(s, 4.0, 8.0, 20.0)
    s.handle(Tick(8.0))
    assert s.snapshot().recovery_progress == 0.4  # 4 s of 10, from the run's start
    s2 = exposing()
    feed(s2, 3.0, 5.0, 20.0)  # calm before the pause ...
    s2.handle(Pause(5.0, T))
    s2.handle(ArousalSample(6.0, 20.0))
    s2.handle(Tick(7.0))
    assert s2.snapshot().recovery_progress == 0.2  # ... counts from the pause: 2 s of 10


def test_recovery_progress_with_a_recovery_time_under_a_second() -> None:
    s = exposing()
    s.handle(AdjustThresholds(2.0, T, recovery_s=0.5))
    s.handle(ArousalSample(3.0, 50.0))
    s.handle(Pause(3.0, T))
    s.handle(ArousalSample(4.0, 20.0))
    s.handle(Tick(4.25))
    assert s.snapshot().recovery_progress == 0.5
    s.handle(Tick(4.5))
    assert now(s) is S.RECOVERED


def test_a_consent_to_an_offer_older_than_the_last_pause_is_a_logic_error() -> None:
    # Every pause withdraws any open offer, so this cannot happen; if a change ever let an offer
    # survive a pause, the consent refuses to start exposure instead of acting on it.
    s = ExposureSession(protocol(), t=0.0, client_id="c-1", needs_calibration=False)
    s.handle(ArousalSample(0.0, 50.0))
    s.handle(OfferStep(1.0, T))
    offer = s._offer
    assert offer is not None
    s._last_pause_seq = offer.seq  # as if a pause had been logged with the offer's own seq
    with pytest.raises(SessionLogicError, match=r"^an offer older than the last pause survived"):
        s.handle(Consent(2.0, C))


def test_the_peak_counts_only_known_fresh_values() -> None:
    s = ExposureSession(protocol(), t=0.0, client_id="c-1", needs_calibration=False)
    s.handle(ArousalSample(0.0, 65.0))
    s.handle(OfferStep(1.0, T))
    for t in (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0):
        s.handle(ArousalSample(t, None))  # monitoring stays ok; 65 is superseded and stale
    s.handle(Consent(8.0, C))
    assert s.progress()[0].peak_arousal is None
    s.handle(ArousalSample(9.0, 55.0))
    assert s.progress()[0].peak_arousal == 55.0


@pytest.mark.parametrize("recovery_s", [0.0, 10.0])
def test_recovery_progress_never_exceeds_one_after_the_pause(recovery_s: float) -> None:
    # Offered another step after recovering, the client stays calm: the progress shown stays at
    # one however long the calm lasts (it is a fraction, not a time).
    s = exposing()
    s.handle(AdjustThresholds(2.0, T, recovery_s=recovery_s))
    s.handle(ArousalSample(3.0, 50.0))
    s.handle(Pause(3.0, T))
    feed(s, 4.0, 16.0, 20.0)
    assert now(s) is S.RECOVERED
    s.handle(OfferStep(16.0, T, 1))
    feed(s, 16.0, 40.0, 20.0)
    assert now(s) is S.STEP_OFFERED
    assert s.snapshot().recovery_progress == 1.0


def test_a_consent_long_after_the_last_sample_is_refused_for_lost_monitoring() -> None:
    # Monitoring is judged at the consent's own time, not at the last input's.
    s = ExposureSession(protocol(), t=0.0, client_id="c-1", needs_calibration=False)
    s.handle(ArousalSample(1.0, 50.0))
    s.handle(OfferStep(1.0, T))
    before = s.snapshot()
    with pytest.raises(CommandError, match="monitoring is lost"):
        s.handle(Consent(11.5, C))  # 10.5 s after the last sample, signal_timeout_s is 10
    assert s.snapshot() == before
    s.handle(Consent(11.0, C))  # exactly 10 s: still ok
    assert now(s) is S.EXPOSING


@pytest.mark.parametrize(("value", "ok"), [(0, True), (100, True), (-1, False), (101, False)])
def test_suds_is_a_whole_number_from_0_to_100_inclusive(value: int, ok: bool) -> None:
    s = exposing()
    if ok:
        (ev,) = s.handle(SudsAnswer(5.0, C, value))
        assert ev.values["suds"] == value
    else:
        with pytest.raises(CommandError, match=f"SUDS must be a whole number 0..100, got {value}"):
            s.handle(SudsAnswer(5.0, C, value))


def test_monitoring_ok_at_the_newest_time_or_a_given_one() -> None:
    s = exposing()  # the last sample was at t=0, the newest time is 2
    assert s.monitoring_ok()
    assert s.monitoring_ok(10.0)
    assert not s.monitoring_ok(10.5)
    s.handle(Tick(10.5))
    assert not s.monitoring_ok()


def test_a_session_starts_at_a_finite_time_and_in_its_first_state_since_then() -> None:
    with pytest.raises(ParseError, match=r"^session start time must be a finite number, got nan$"):
        ExposureSession(protocol(), t=math.nan, client_id="c-1")
    s = ExposureSession(protocol(), t=100.0, client_id="c-1")
    snap = s.snapshot()
    assert (snap.started_t, snap.state_since_t, snap.t) == (100.0, 100.0, 100.0)


def test_what_is_not_a_session_input_is_a_parse_error() -> None:
    s = exposing()
    with pytest.raises(ParseError, match=r"^not a session input: object$"):
        s.handle(object())  # type: ignore[arg-type]


def test_a_time_that_is_not_a_number() -> None:
    s = exposing()
    # An observation: a parse error (what the strap or the service sent is broken) ...
    with pytest.raises(
        ParseError, match=r"^ArousalSample\.t must be a number of seconds, got 'x'$"
    ):
        s.handle(ArousalSample("x", 50.0))  # type: ignore[arg-type]
    with pytest.raises(ParseError, match=r"^Tick\.t must be finite, got inf$"):
        s.handle(Tick(math.inf))
    # ... a command: refused ...
    with pytest.raises(CommandError, match=r"^CompleteStep\.t must be a number of seconds"):
        s.handle(CompleteStep("x", T))  # type: ignore[arg-type]
    # ... but the client's pause is taken at the newest time, marked as not on time.
    (ev,) = s.handle(Pause("now", C))  # type: ignore[arg-type]
    assert (ev.t, ev.to_state) == (2.0, S.PAUSED)
    assert ev.values == {"input_t": None, "pause_reason": "client"}


def test_periodic_checkins_every_second() -> None:
    s = exposing(replace(protocol(), checkins=CheckinCadence(every_s=1.0)))
    events = feed(s, 2.5, 6.0, 50.0)
    assert [e.t for e in events if e.kind == "checkin_due"] == [3.5, 4.5, 5.5]


def test_notes_on_the_first_calibration_are_told_to_the_therapist() -> None:
    s = ExposureSession(protocol(), t=0.0, client_id="c-1", needs_calibration=True)
    s.handle(ArousalSample(0.0, 50.0))
    events = s.handle(CalibrationDone(1.0, ok=True, notes=("HR trended down",)))
    assert [(e.kind, e.reason) for e in events] == [
        ("transition", "calibration_ok: calibration done"),
        ("calibration_notice", "calibration looked unusual: HR trended down"),
    ]
    assert events[0].values == {"ok": True, "detail": "", "notes": ["HR trended down"]}
