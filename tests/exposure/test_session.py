"""One test (or a few) per rule of the exposure session state machine."""

from __future__ import annotations

import math

import pytest

from biofeedback.errors import CommandError, ParseError
from biofeedback.exposure import (
    AdjustThresholds,
    ArousalSample,
    CalibrationDone,
    ChooseGrounding,
    CompleteStep,
    Consent,
    Decline,
    EndSession,
    ExposureSession,
    GroundingTechnique,
    OfferStep,
    Pause,
    PauseReason,
    Role,
    SessionState,
    SignalLost,
    SignalRestored,
    SudsAnswer,
    Tick,
    may_send,
)
from tests.exposure.helpers import C, T, exposing, feed, now, protocol, transitions

S = SessionState


def test_start_state_depends_on_calibration() -> None:
    p = protocol()
    assert ExposureSession(p, t=0.0, client_id="a").state is S.CALIBRATING
    assert ExposureSession(p, t=0.0, client_id="a", needs_calibration=False).state is S.READY


def test_happy_path_through_every_main_state() -> None:
    s = exposing()
    ev = feed(s, 3, 10, 75.0)  # above upper from t=3; dwell 5 s -> pause at t=8
    assert transitions(ev) == [("exposing", "paused"), ("paused", "grounding")]
    ev = feed(s, 10, 30, 30.0)  # below lower from t=10; recovery 10 s -> recovered at t=20
    assert transitions(ev) == [("grounding", "recovered")]
    assert now(s) is S.RECOVERED  # auto_offer is off: nothing more happens on its own
    s.handle(OfferStep(31, T))
    assert now(s) is S.RESUME_OFFERED
    s.handle(Consent(32, C))
    assert now(s) is S.EXPOSING
    feed(s, 32, 41, 50.0)
    s.handle(CompleteStep(40, T))
    s.handle(OfferStep(41, T))
    assert now(s) is S.STEP_OFFERED
    assert s.snapshot().step_index == 1
    s.handle(Consent(42, C))
    s.handle(CompleteStep(50, T))
    s.handle(EndSession(51, T))
    assert now(s) is S.DEBRIEF
    s.handle(EndSession(52, T))
    assert now(s) is S.ENDED


# ---- dwell: one odd beat pauses nothing ----------------------------------------------------------


def test_one_odd_beat_pauses_nothing() -> None:
    s = exposing()
    for t in range(3, 60):
        s.handle(ArousalSample(float(t), 95.0 if t % 7 == 0 else 50.0))
        s.handle(Tick(t + 0.5))
    assert now(s) is S.EXPOSING


def test_pause_needs_upper_held_for_dwell() -> None:
    s = exposing()
    feed(s, 3, 7, 75.0)  # held 3..6: 3 s < dwell 5 s
    assert now(s) is S.EXPOSING
    s.handle(ArousalSample(7.0, 75.0))
    assert now(s) is S.EXPOSING  # 4 s
    ev = s.handle(ArousalSample(8.0, 75.0))  # 5 s
    pause = ev[0]
    assert pause.to_state is S.PAUSED
    assert pause.actor is Role.SYSTEM
    assert pause.values["pause_reason"] == "arousal"
    assert pause.values["arousal"] == 75.0
    assert pause.values["above_since"] == 3.0
    assert s.snapshot().pause_reason is PauseReason.AROUSAL


def test_ticks_complete_the_dwell_between_samples() -> None:
    s = exposing()
    s.handle(ArousalSample(3.0, 80.0))
    s.handle(ArousalSample(4.0, 80.0))
    assert s.handle(Tick(7.9)) == []
    ev = s.handle(Tick(8.0))
    assert ev[0].values["pause_reason"] == "arousal"


def test_a_dip_below_upper_restarts_the_dwell() -> None:
    s = exposing()
    feed(s, 3, 7, 75.0)
    s.handle(ArousalSample(7.0, 69.9))
    feed(s, 8, 12, 75.0)  # 8..11 is 3 s
    assert now(s) is S.EXPOSING
    feed(s, 12, 14, 75.0)
    assert now(s) is S.GROUNDING


def test_unknown_values_neither_pause_nor_count() -> None:
    s = exposing()
    for t in range(3, 30):
        s.handle(ArousalSample(float(t), 90.0 if t % 2 else None))
    assert now(s) is S.EXPOSING  # never held for 5 s of known values
    for t in range(3, 30):
        s.handle(ArousalSample(float(30 + t), math.nan))
    assert now(s) is S.EXPOSING
    s2 = exposing()
    s2.handle(ArousalSample(3.0, 90.0, confidence=0.0))
    # Past the dwell (5 s) but within signal_timeout_s (10 s) of that sample: no pause at all.
    assert s2.handle(Tick(12.0)) == []
    assert now(s2) is S.EXPOSING
    # Then the only pause is for lost monitoring (no sample for 10 s), never for arousal.
    ev = s2.handle(Tick(20.0))
    assert transitions(ev) == [("exposing", "paused")]
    assert ev[-1].values["pause_reason"] == "signal_lost"
    snap = s2.snapshot()
    assert snap.state is S.PAUSED
    assert snap.pause_reason is PauseReason.SIGNAL_LOST
    assert snap.progress[0].pause_reasons == ("signal_lost",)
    # ... and unknown values never count towards recovery
    s3 = exposing()
    feed(s3, 3, 9, 80.0)
    assert now(s3) is S.GROUNDING
    for t in range(9, 60):
        s3.handle(ArousalSample(float(t), 20.0 if t % 3 else None))
    assert now(s3) is S.GROUNDING


def test_stale_values_do_not_hold_a_dwell() -> None:
    s = exposing()
    s.handle(ArousalSample(3.0, 90.0))
    # no more samples: after stale_s the value is unknown, after signal_timeout_s monitoring is lost
    ev = s.handle(Tick(9.0))
    assert ev == []
    assert now(s) is S.EXPOSING
    ev = s.handle(Tick(13.5))
    assert now(s) is S.PAUSED
    assert s.snapshot().pause_reason is PauseReason.SIGNAL_LOST
    assert any(e.kind == "monitoring" for e in ev)


# ---- recovery -----------------------------------------------------------------------------------


def test_recovery_needs_continuous_time_below_lower() -> None:
    s = exposing()
    feed(s, 3, 9, 80.0)
    assert now(s) is S.GROUNDING
    feed(s, 9, 18, 30.0)  # 9..17: 8 s
    s.handle(ArousalSample(18.0, 45.0))  # back above lower: restarts
    feed(s, 19, 28, 30.0)  # 19..27: 8 s
    assert now(s) is S.GROUNDING
    ev = feed(s, 28, 30, 30.0)
    assert transitions(ev) == [("grounding", "recovered")]
    rec = next(e for e in ev if e.kind == "transition")
    assert rec.values["time_to_recover_s"] == pytest.approx(29.0 - 8.0)
    (took,) = s.progress()[0].recovery_times_s
    assert took == pytest.approx(21.0)


def test_recovery_counts_only_from_the_pause() -> None:
    s = exposing()
    feed(s, 3, 20, 30.0)  # calm during exposure
    s.handle(Pause(20.0, C))
    feed(s, 20, 29, 30.0)
    assert now(s) is S.PAUSED
    feed(s, 29, 31, 30.0)
    assert now(s) is S.RECOVERED


# ---- consent ------------------------------------------------------------------------------------


def test_never_resumes_without_consent_even_with_auto_offer() -> None:
    p = protocol("\n[session]\nauto_offer = true\n".join(["", ""]) and "")
    p = protocol()
    from dataclasses import replace

    from biofeedback.exposure import SessionOptions

    p = replace(p, options=SessionOptions(auto_offer=True))
    s = exposing(p)
    feed(s, 3, 9, 80.0)
    feed(s, 9, 200, 20.0)
    assert now(s) is S.RESUME_OFFERED  # offered, waiting
    assert "continue step 1" in (s.snapshot().consent_needed or "")
    s.handle(Consent(200.0, C))
    assert now(s) is S.EXPOSING


def test_consent_needs_an_open_offer() -> None:
    s = exposing()
    with pytest.raises(CommandError, match="nothing to consent to"):
        s.handle(Consent(5.0, C))
    s.handle(Pause(6.0, T))
    with pytest.raises(CommandError, match="nothing to consent to"):
        s.handle(Consent(7.0, C))


def test_an_offer_made_before_a_pause_does_not_survive_it() -> None:
    s = exposing()
    s.handle(Pause(5.0, T))
    s.handle(OfferStep(6.0, T))
    assert now(s) is S.RESUME_OFFERED
    s.handle(Pause(7.0, C))
    assert now(s) is S.PAUSED
    assert s.snapshot().consent_needed is None
    with pytest.raises(CommandError):
        s.handle(Consent(8.0, C))


def test_decline_keeps_the_session_safe() -> None:
    s = ExposureSession(protocol(), t=0.0, client_id="a", needs_calibration=False)
    s.handle(ArousalSample(0.0, 50.0))
    s.handle(OfferStep(1.0, T))
    ev = s.handle(Decline(2.0, C))
    assert now(s) is S.READY
    assert ev[0].reason.startswith("decline")
    s2 = exposing()
    s2.handle(Pause(4.0, C))
    s2.handle(OfferStep(5.0, T))
    s2.handle(Decline(6.0, C))
    assert now(s2) is S.PAUSED
    with pytest.raises(CommandError, match="nothing offered"):
        s2.handle(Decline(7.0, C))


# ---- the client's pause always wins -------------------------------------------------------------


def _session_in(state: SessionState) -> ExposureSession:
    p = protocol()
    if state is S.CALIBRATING:
        return ExposureSession(p, t=0.0, client_id="a")
    s = ExposureSession(p, t=0.0, client_id="a", needs_calibration=False)
    s.handle(ArousalSample(0.0, 50.0))
    if state is S.READY:
        return s
    s.handle(OfferStep(1.0, T))
    if state is S.STEP_OFFERED:
        return s
    s.handle(Consent(2.0, C))
    if state is S.EXPOSING:
        return s
    if state is S.STEP_COMPLETE:
        s.handle(CompleteStep(3.0, T))
        return s
    if state in (S.DEBRIEF, S.ENDED):
        s.handle(EndSession(3.0, T))
        if state is S.ENDED:
            s.handle(EndSession(4.0, T))
        return s
    s.handle(Pause(3.0, T))
    if state is S.PAUSED:
        return s
    if state is S.GROUNDING:
        s.handle(ChooseGrounding(4.0, C, GroundingTechnique.SENSORY_54321))
        return s
    feed(s, 3, 15, 20.0)
    if state is S.RECOVERED:
        return s
    s.handle(OfferStep(16.0, T))
    assert state is S.RESUME_OFFERED
    return s


@pytest.mark.parametrize("state", list(SessionState))
def test_client_pause_is_honoured_in_every_state(state: SessionState) -> None:
    s = _session_in(state)
    assert now(s) is state
    ev = s.handle(Pause(100.0, C, note="I need a moment"))
    assert ev, "a client pause always leaves a trace"
    snap = s.snapshot()
    assert snap.state is not S.EXPOSING
    assert snap.consent_needed is None
    if state in (S.EXPOSING, S.STEP_OFFERED, S.RESUME_OFFERED, S.RECOVERED, S.PAUSED):
        assert snap.state is S.PAUSED
        assert snap.pause_reason is PauseReason.CLIENT
    elif state is S.GROUNDING:
        assert snap.state is S.GROUNDING
        assert snap.pause_reason is PauseReason.CLIENT
    else:
        assert snap.state is state
        assert ev[0].kind == "pause_acknowledged"


def test_client_pause_with_a_broken_or_late_clock_is_still_honoured() -> None:
    s = exposing()
    feed(s, 3, 20, 50.0)
    ev = s.handle(Pause(math.nan, C))
    assert now(s) is S.PAUSED
    assert ev[0].t == 19.0
    s2 = exposing()
    feed(s2, 3, 20, 50.0)
    ev = s2.handle(Pause(1.0, C))  # stamped before the newest input
    assert now(s2) is S.PAUSED
    assert ev[0].t == 19.0
    assert ev[0].values["input_t"] == 1.0


# ---- roles --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cmd", "role"),
    [
        (Consent(5.0, T), "therapist"),
        (Decline(5.0, T), "therapist"),
        (SudsAnswer(5.0, T, 10), "therapist"),
        (ChooseGrounding(5.0, T, GroundingTechnique.PACED_BREATHING), "therapist"),
        (OfferStep(5.0, C), "client"),
        (CompleteStep(5.0, C), "client"),
        (EndSession(5.0, C), "client"),
        (AdjustThresholds(5.0, C, upper=80), "client"),
        (Pause(5.0, Role.SYSTEM), "system"),
        (Consent(5.0, Role.SYSTEM), "system"),
    ],
)
def test_role_rules_refuse_and_change_nothing(cmd: object, role: str) -> None:
    s = _session_in(S.STEP_OFFERED)
    before = s.snapshot()
    with pytest.raises(CommandError, match=f"not by {role}"):
        s.handle(cmd)  # type: ignore[arg-type]
    assert s.snapshot() == before


def test_unknown_role_is_refused() -> None:
    s = _session_in(S.STEP_OFFERED)
    with pytest.raises(CommandError, match="unknown role"):
        s.handle(Consent(5.0, "nurse"))  # type: ignore[arg-type]


def test_may_send_table() -> None:
    assert may_send("client", Pause)
    assert may_send("therapist", Pause)
    assert may_send(Role.CLIENT, Consent)
    assert not may_send(Role.THERAPIST, Consent)
    assert may_send("therapist", AdjustThresholds)
    assert not may_send("client", AdjustThresholds)
    assert not may_send("system", Pause)
    assert not may_send("nobody", Pause)


def test_invalid_commands_in_state_change_nothing() -> None:
    s = exposing()
    before = s.snapshot()
    for cmd in (
        OfferStep(5.0, T),
        Consent(5.0, C),
        Decline(5.0, C),
        AdjustThresholds(5.0, T, lower=90),
        AdjustThresholds(5.0, T),
        SudsAnswer(5.0, C, 101),
        SudsAnswer(5.0, C, True),
        ChooseGrounding(5.0, C, "yoga"),  # type: ignore[arg-type]
        OfferStep(5.0, T, step=7),
        Consent(math.inf, C),
    ):
        with pytest.raises(CommandError):
            s.handle(cmd)
        assert s.snapshot() == before


def test_observation_with_broken_time_is_a_parse_error() -> None:
    s = exposing()
    with pytest.raises(ParseError):
        s.handle(ArousalSample(math.nan, 50.0))


# ---- signal loss --------------------------------------------------------------------------------


def test_signal_lost_pauses_and_blocks_consent_until_restored() -> None:
    s = exposing()
    feed(s, 3, 6, 50.0)
    ev = s.handle(SignalLost(6.0, "strap out of range"))
    assert now(s) is S.PAUSED
    assert s.snapshot().pause_reason is PauseReason.SIGNAL_LOST
    assert not s.snapshot().monitoring_ok
    assert any(e.kind == "monitoring" and "strap out of range" in e.reason for e in ev)
    s.handle(OfferStep(7.0, T))
    with pytest.raises(CommandError, match="monitoring is lost"):
        s.handle(Consent(8.0, C))
    s.handle(SignalRestored(9.0, gap_s=3.0))
    assert now(s) is S.RESUME_OFFERED  # restoring the signal resumes nothing
    with pytest.raises(CommandError, match="monitoring is lost"):
        s.handle(Consent(9.5, C))  # no fresh sample yet
    s.handle(ArousalSample(10.0, 50.0))
    s.handle(Consent(11.0, C))
    assert now(s) is S.EXPOSING


def test_no_samples_at_start_means_no_exposure() -> None:
    s = ExposureSession(protocol(), t=0.0, client_id="a", needs_calibration=False)
    s.handle(OfferStep(1.0, T))
    assert not s.snapshot().monitoring_ok
    with pytest.raises(CommandError, match="monitoring is lost"):
        s.handle(Consent(2.0, C))


# ---- grounding ----------------------------------------------------------------------------------


def test_arousal_pause_starts_the_preferred_grounding_at_once() -> None:
    text_extra = '\n[guidance]\ngrounding = ["sensory_5_4_3_2_1", "paced_breathing"]\n'
    p = protocol()
    from dataclasses import replace

    from biofeedback.exposure import GuidancePrefs

    p2 = replace(
        p,
        guidance=GuidancePrefs(
            grounding=(GroundingTechnique.SENSORY_54321, GroundingTechnique.PACED_BREATHING)
        ),
    )
    del text_extra
    s = exposing(p)
    feed(s, 3, 9, 80.0)
    g = s.guidance
    assert now(s) is S.GROUNDING
    assert g is not None
    assert g.technique is GroundingTechnique.PACED_BREATHING
    assert g.start_t == 8.0
    assert g.breathing is not None
    assert (g.breathing.inhale_s, g.breathing.exhale_s) == (4.0, 6.0)
    s2 = exposing(p2)
    feed(s2, 3, 9, 80.0)
    assert s2.guidance is not None
    assert s2.guidance.technique is GroundingTechnique.SENSORY_54321
    assert s2.guidance.breathing is None


def test_choose_grounding_switches_and_is_remembered() -> None:
    s = exposing()
    feed(s, 3, 9, 80.0)
    ev = s.handle(ChooseGrounding(10.0, C, GroundingTechnique.SELF_COMPASSION))
    assert transitions(ev) == [("grounding", "grounding")]
    assert s.guidance is not None
    assert s.guidance.technique is GroundingTechnique.SELF_COMPASSION
    assert s.snapshot().preferred_grounding is GroundingTechnique.SELF_COMPASSION


def test_choosing_grounding_during_exposure_is_a_client_pause() -> None:
    s = exposing()
    ev = s.handle(ChooseGrounding(5.0, C, GroundingTechnique.COGNITIVE_CHECK))
    assert transitions(ev) == [("exposing", "paused"), ("paused", "grounding")]
    assert s.snapshot().pause_reason is PauseReason.CLIENT


def test_consent_ends_guidance() -> None:
    s = exposing()
    feed(s, 3, 9, 80.0)
    feed(s, 9, 25, 20.0)
    s.handle(OfferStep(25.0, T))
    s.handle(Consent(26.0, C))
    assert s.guidance is None
    assert now(s) is S.EXPOSING


# ---- calibration --------------------------------------------------------------------------------


def test_failed_calibration_keeps_the_session_safe() -> None:
    s = ExposureSession(protocol(), t=0.0, client_id="a")
    s.handle(ArousalSample(0.0, None))
    with pytest.raises(CommandError, match="calibration is still running"):
        s.handle(OfferStep(1.0, T))
    ev = s.handle(CalibrationDone(30.0, ok=False, detail="too many corrected beats"))
    assert now(s) is S.CALIBRATING
    assert "too many corrected beats" in ev[0].reason
    snap = s.snapshot()
    assert snap.calibration_failed
    assert not snap.arousal_pausing
    # The therapist may proceed explicitly; the client is told, and must still consent.
    s.handle(ArousalSample(31.0, None))
    s.handle(OfferStep(32.0, T))
    assert now(s) is S.STEP_OFFERED
    assert "automatic pausing may not work" in (s.snapshot().consent_needed or "")
    s.handle(Consent(33.0, C))
    assert now(s) is S.EXPOSING
    s.handle(Pause(34.0, C))  # the client's pause and signal loss still work
    assert now(s) is S.PAUSED


def test_calibration_retry_succeeds() -> None:
    s = ExposureSession(protocol(), t=0.0, client_id="a")
    s.handle(CalibrationDone(30.0, ok=False, detail="noisy"))
    s.handle(CalibrationDone(60.0, ok=True))
    assert now(s) is S.READY
    assert s.snapshot().calibrated


# ---- therapist ----------------------------------------------------------------------------------


def test_adjust_thresholds_is_logged_with_old_and_new_values() -> None:
    s = exposing()
    ev = s.handle(AdjustThresholds(5.0, T, upper=80, dwell_s=8))
    e = ev[0]
    assert e.kind == "thresholds"
    assert e.actor is Role.THERAPIST
    assert e.values["old"]["upper"] == 70.0
    assert e.values["new"]["upper"] == 80.0
    assert e.values["old"]["dwell_s"] == 5.0
    assert e.values["new"]["dwell_s"] == 8.0
    assert s.snapshot().thresholds.upper == 80.0
    feed(s, 6, 20, 75.0)  # under the new upper
    assert now(s) is S.EXPOSING
    with pytest.raises(CommandError, match="lower must be below upper"):
        s.handle(AdjustThresholds(21.0, T, lower=85))


def test_lowering_upper_during_a_high_run_starts_the_dwell_now() -> None:
    s = exposing()
    feed(s, 3, 10, 65.0)
    s.handle(AdjustThresholds(10.0, T, upper=60))
    feed(s, 10, 15, 65.0)
    assert now(s) is S.EXPOSING
    feed(s, 15, 16, 65.0)
    assert now(s) is S.GROUNDING


def test_therapist_pause_offer_and_end() -> None:
    s = exposing()
    ev = s.handle(Pause(5.0, T))
    assert ev[0].actor is Role.THERAPIST
    assert s.snapshot().pause_reason is PauseReason.THERAPIST
    s.handle(OfferStep(6.0, T, step=1))  # a different step instead
    assert now(s) is S.STEP_OFFERED
    assert s.snapshot().step_index == 1
    s.handle(EndSession(7.0, T))
    assert now(s) is S.DEBRIEF
    s.handle(EndSession(8.0, T))
    for cmd in (OfferStep(9.0, T), SudsAnswer(9.0, C, 3), EndSession(9.0, T)):
        with pytest.raises(CommandError, match="ended"):
            s.handle(cmd)


def test_offering_when_every_step_is_complete() -> None:
    s = exposing()
    s.handle(CompleteStep(5.0, T))
    s.handle(OfferStep(6.0, T))
    s.handle(Consent(7.0, C))
    s.handle(CompleteStep(8.0, T))
    with pytest.raises(CommandError, match="every step is complete"):
        s.handle(OfferStep(9.0, T))
    s.handle(OfferStep(9.0, T, step=0))  # repeating a step is fine
    assert now(s) is S.STEP_OFFERED


def test_step_too_long() -> None:
    s = exposing(protocol(max_step_s=20))
    feed(s, 3, 30, 50.0)
    assert now(s) is S.PAUSED
    assert s.snapshot().pause_reason is PauseReason.STEP_TOO_LONG
    assert s.guidance is None  # only an arousal pause starts grounding by itself


# ---- check-ins ----------------------------------------------------------------------------------


def test_suds_prompts_and_answers() -> None:
    s = ExposureSession(protocol(), t=0.0, client_id="a", needs_calibration=False)
    s.handle(ArousalSample(0.0, 50.0))
    ev = s.handle(OfferStep(1.0, T))
    assert any(e.kind == "checkin_due" and e.values["prompt"] == "step_start" for e in ev)
    assert s.snapshot().checkin_due == "step_start"
    ev = s.handle(SudsAnswer(1.5, C, 40))
    assert ev[0].kind == "checkin"
    assert ev[0].values["suds"] == 40
    assert ev[0].t == 1.5
    assert s.snapshot().checkin_due is None
    s.handle(Consent(2.0, C))
    feed(s, 3, 9, 80.0)
    feed(s, 9, 20, 20.0)
    assert s.snapshot().checkin_due == "after_recovery"
    s.handle(SudsAnswer(21.0, C, 25))
    s.handle(OfferStep(22.0, T))
    s.handle(Consent(23.0, C))
    s.handle(CompleteStep(30.0, T))
    assert s.snapshot().checkin_due == "step_end"
    s.handle(SudsAnswer(31.0, C, 15))
    p = s.progress()[0]
    assert (p.suds_before, p.suds_after) == (40, 15)
    assert [(r.t, r.value) for r in s.snapshot().suds] == [(1.5, 40), (21.0, 25), (31.0, 15)]


def test_periodic_checkins() -> None:
    p = protocol("\n[checkins]\nevery_s = 10\n".replace("\n[checkins]", "\n[checkins]"))
    del p
    from dataclasses import replace

    from biofeedback.exposure import CheckinCadence

    p = replace(protocol(), checkins=CheckinCadence(every_s=10))
    s = exposing(p)
    ev = feed(s, 3, 25, 50.0)
    due = [e.t for e in ev if e.kind == "checkin_due"]
    assert due == [12.0, 22.0]


# ---- automation for the demo --------------------------------------------------------------------


def test_auto_offer_and_auto_complete_still_need_consent() -> None:
    from dataclasses import replace

    from biofeedback.exposure import SessionOptions

    p = replace(protocol(), options=SessionOptions(auto_offer=True, auto_complete=True))
    s = ExposureSession(p, t=0.0, client_id="a")
    s.handle(ArousalSample(0.0, 50.0))
    s.handle(CalibrationDone(1.0, ok=True))
    assert now(s) is S.STEP_OFFERED
    feed(s, 1, 100, 50.0)
    assert now(s) is S.STEP_OFFERED  # nobody consented: nothing started
    s.handle(Consent(100.0, C))
    ev = feed(s, 100, 170, 50.0)
    assert ("exposing", "step_complete") in transitions(ev)
    # Arousal 50 is not below lower (40): the next offer waits for calm.
    assert now(s) is S.STEP_COMPLETE
    assert any(e.kind == "offer_waiting" for e in ev)
    s.handle(ArousalSample(170.0, 30.0))
    assert now(s) is S.STEP_OFFERED
    assert s.snapshot().step_index == 1
    s.handle(Consent(171.0, C))
    feed(s, 171, 240, 50.0)
    assert now(s) is S.DEBRIEF


def test_client_pause_disables_auto_resume() -> None:
    from dataclasses import replace

    from biofeedback.exposure import SessionOptions

    p = replace(protocol(), options=SessionOptions(auto_offer=True))
    s = exposing(p)
    s.handle(Pause(5.0, C))
    feed(s, 5, 60, 20.0)
    assert now(s) is S.RECOVERED  # the client asked to stop: only the therapist re-offers


# ---- time ---------------------------------------------------------------------------------------


def test_late_inputs_are_handled_at_the_newest_time() -> None:
    s = exposing()
    feed(s, 3, 10, 50.0)
    ev = s.handle(AdjustThresholds(4.0, T, upper=75))
    assert ev[0].t == 9.0
    assert ev[0].values["input_t"] == 4.0
    s.handle(ArousalSample(2.0, 90.0))
    assert s.t == 9.0


def test_samples_during_a_signal_loss_vouch_for_nothing() -> None:
    s = ExposureSession(protocol(), t=0.0, client_id="a", needs_calibration=False)
    s.handle(SignalLost(0.0))
    s.handle(ArousalSample(1.0, 50.0))
    s.handle(OfferStep(2.0, T))
    s.handle(SignalRestored(3.0))
    with pytest.raises(CommandError, match="monitoring is lost"):
        s.handle(Consent(4.0, C))
    s.handle(ArousalSample(5.0, 50.0))
    s.handle(Consent(6.0, C))
    assert now(s) is S.EXPOSING
