"""High arousal while an offer is open, while recovered, and between steps (docs/session.md).

- arousal held at/above upper for dwell_s withdraws an open step or resume offer, and ends a
  `recovered` hold, into paused (reason arousal) and the preferred grounding;
- a consent while arousal is above upper but the dwell is not yet reached still starts exposure;
  once the dwell is reached a consent is refused (nothing starts);
- after recovery the withdrawn offer is made again (auto_offer) or the therapist re-offers;
- the automatic offer of the next step waits for a fresh arousal value below lower.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from biofeedback.errors import CommandError
from biofeedback.exposure import (
    ArousalSample,
    CalibrationDone,
    CompleteStep,
    Consent,
    ExposureSession,
    GroundingTechnique,
    OfferStep,
    Pause,
    PauseReason,
    SessionEvent,
    SessionOptions,
    SessionState,
    Tick,
)
from biofeedback.exposure.protocol import ExposureProtocol
from tests.exposure.helpers import C, T, exposing, feed, now, protocol, transitions

S = SessionState
# upper 70, lower 40, dwell 5 s, recovery 10 s (tests/exposure/helpers.py)


def _auto(auto_complete: bool = False) -> ExposureProtocol:
    return replace(protocol(), options=SessionOptions(auto_offer=True, auto_complete=auto_complete))


def _offered(p: ExposureProtocol | None = None) -> ExposureSession:
    """A calibrated session with step 0 offered by the therapist at t=1, arousal 50 flowing."""
    s = ExposureSession(p or protocol(), t=0.0, client_id="c-1", needs_calibration=True)
    s.handle(ArousalSample(0.0, 50.0))
    s.handle(CalibrationDone(0.0, ok=True))
    if now(s) is not S.STEP_OFFERED:
        s.handle(OfferStep(1.0, T))
    assert now(s) is S.STEP_OFFERED
    return s


def _withdrawal(events: list[SessionEvent]) -> SessionEvent:
    found = [e for e in events if e.kind == "transition" and e.reason.startswith("arousal_high")]
    assert len(found) == 1, events
    return found[0]


# ---- withdrawing an open offer ---------------------------------------------------------------


def test_step_offer_is_withdrawn_after_the_dwell_and_grounding_starts() -> None:
    s = _offered()
    ev = feed(s, 2, 7, 80.0)  # 2..6: held 4 s, dwell is 5 s
    assert now(s) is S.STEP_OFFERED
    assert not transitions(ev)
    ev = s.handle(ArousalSample(7.0, 80.0))  # held 5 s
    w = _withdrawal(ev)
    assert (w.from_state, w.to_state) == (S.STEP_OFFERED, S.PAUSED)
    assert w.actor == "system"
    assert "offer withdrawn" in w.reason
    assert "arousal" in w.reason
    assert w.values["pause_reason"] == "arousal"
    assert w.values["arousal"] == 80.0
    assert w.values["upper"] == 70.0
    assert w.values["above_since"] == 2.0
    assert w.values["withdrawn_offer"] == "step"
    assert transitions(ev) == [("step_offered", "paused"), ("paused", "grounding")]
    snap = s.snapshot()
    assert snap.state is S.GROUNDING
    assert snap.pause_reason is PauseReason.AROUSAL
    assert snap.offer is None
    assert snap.consent_needed is None
    assert snap.guidance is not None
    assert snap.guidance.technique is GroundingTechnique.PACED_BREATHING
    assert snap.guidance.start_t == 7.0
    with pytest.raises(CommandError, match="nothing to consent to"):
        s.handle(Consent(8.0, C))
    # Nothing was exposed and no exposure pause is counted for the step.
    assert s.progress()[0].pauses == 0
    assert s.progress()[0].exposed_s == 0.0


def test_ticks_complete_the_withdrawal_dwell_between_samples() -> None:
    s = _offered()
    s.handle(ArousalSample(2.0, 80.0))
    s.handle(ArousalSample(5.0, 80.0))
    assert now(s) is S.STEP_OFFERED
    ev = s.handle(Tick(7.0))
    assert _withdrawal(ev).t == 7.0


def test_one_high_value_or_an_interrupted_run_withdraws_nothing() -> None:
    s = _offered()
    feed(s, 2, 6, 80.0)
    s.handle(ArousalSample(6.0, 60.0))  # below upper: the run restarts
    feed(s, 7, 11, 80.0)
    s.handle(ArousalSample(11.0, None))  # unknown: the run restarts
    feed(s, 12, 16, 90.0)
    assert now(s) is S.STEP_OFFERED


def test_resume_offer_is_withdrawn_and_made_again_after_recovery() -> None:
    s = exposing(_auto())
    feed(s, 3, 9, 80.0)  # held from 3: paused on arousal at 8
    assert now(s) is S.GROUNDING
    feed(s, 9, 20, 20.0)  # below lower from 9: recovered at 19, resume offered
    assert now(s) is S.RESUME_OFFERED
    assert s.progress()[0].recovery_times_s == (11.0,)
    ev = feed(s, 20, 26, 80.0)  # held from 20: withdrawn at 25
    w = _withdrawal(ev)
    assert w.t == 25.0
    assert (w.from_state, w.to_state) == (S.RESUME_OFFERED, S.PAUSED)
    assert w.values["withdrawn_offer"] == "resume"
    assert now(s) is S.GROUNDING
    ev = feed(s, 26, 37, 20.0)  # recovered at 36: the resume offer is made again
    assert ("grounding", "recovered") in transitions(ev)
    assert ("recovered", "resume_offered") in transitions(ev)
    assert s.snapshot().offer == "resume"
    p = s.progress()[0]
    assert p.pauses == 1  # the withdrawal is not an exposure pause
    assert p.recovery_times_s == (11.0,)
    s.handle(Consent(37.0, C))
    assert now(s) is S.EXPOSING


def test_withdrawn_step_offer_is_made_again_as_a_step_offer() -> None:
    s = _offered(_auto())  # auto-offered at calibration
    feed(s, 1, 7, 85.0)
    assert now(s) is S.GROUNDING
    assert s.snapshot().step_index == 0
    ev = feed(s, 7, 18, 20.0)
    assert transitions(ev)[-2:] == [("grounding", "recovered"), ("recovered", "step_offered")]
    snap = s.snapshot()
    assert snap.offer == "step"
    assert snap.consent_needed is not None
    assert "begin" in snap.consent_needed
    ev = s.handle(Consent(18.0, C))
    assert "started" in ev[0].reason


def test_therapist_resume_offer_while_still_high_keeps_the_original_pause_time() -> None:
    s = exposing(_auto())
    feed(s, 3, 9, 80.0)  # paused on arousal at 8
    assert now(s) is S.GROUNDING
    ev = s.handle(OfferStep(9.0, T))  # still above upper, held since 3: withdrawn at once
    assert transitions(ev) == [
        ("grounding", "resume_offered"),
        ("resume_offered", "paused"),
        ("paused", "grounding"),
    ]
    feed(s, 10, 21, 20.0)  # recovered at 20
    assert now(s) is S.RESUME_OFFERED
    # Time to recover is measured from the exposure pause at 8, not from the withdrawal.
    assert s.progress()[0].recovery_times_s == (12.0,)


# ---- recovered --------------------------------------------------------------------------------


def test_recovered_goes_back_to_grounding_when_arousal_holds_high() -> None:
    s = exposing()  # auto_offer off: recovered waits for the therapist
    feed(s, 3, 9, 80.0)
    feed(s, 9, 20, 20.0)
    assert now(s) is S.RECOVERED
    ev = feed(s, 20, 26, 80.0)
    w = _withdrawal(ev)
    assert (w.from_state, w.to_state) == (S.RECOVERED, S.PAUSED)
    assert w.values["withdrawn_offer"] is None
    assert "recovery no longer holds" in w.reason
    assert now(s) is S.GROUNDING
    assert s.snapshot().pause_reason is PauseReason.AROUSAL
    feed(s, 26, 37, 20.0)
    assert now(s) is S.RECOVERED  # still no automatic offer


def test_after_a_client_pause_a_withdrawal_never_turns_into_an_automatic_offer() -> None:
    s = exposing(_auto())
    s.handle(Pause(3.0, C))
    feed(s, 3, 14, 20.0)
    assert now(s) is S.RECOVERED
    feed(s, 14, 20, 80.0)
    assert now(s) is S.GROUNDING
    feed(s, 20, 40, 20.0)
    assert now(s) is S.RECOVERED  # the client asked to stop: only the therapist re-offers


# ---- consent -----------------------------------------------------------------------------------


def test_consent_while_above_upper_before_the_dwell_starts_exposure() -> None:
    s = _offered()
    feed(s, 2, 5, 80.0)  # held 2 s of 5
    ev = s.handle(Consent(4.0, C))
    assert transitions(ev) == [("step_offered", "exposing")]
    assert ev[0].values["arousal"] == 80.0
    # The normal dwell rule then applies, from the start of the run.
    ev = feed(s, 5, 8, 80.0)
    assert now(s) is S.PAUSED or now(s) is S.GROUNDING
    assert _withdrawal(ev).t == 7.0
    assert s.progress()[0].exposed_s == 3.0


def test_consent_once_the_dwell_is_reached_is_refused_and_changes_nothing() -> None:
    s = _offered()
    feed(s, 2, 6, 80.0)  # last sample at 5; the dwell is reached at 7 with no input yet
    before = s.snapshot()
    with pytest.raises(CommandError, match="withdrawn so the client can ground first"):
        s.handle(Consent(7.5, C))
    assert s.snapshot() == before
    ev = s.handle(Tick(7.5))
    assert _withdrawal(ev).from_state is S.STEP_OFFERED


# ---- the next step waits for calm --------------------------------------------------------------


def _completed_with(value: float | None) -> ExposureSession:
    s = exposing(_auto())
    feed(s, 3, 10, 50.0)
    s.handle(ArousalSample(10.0, value))
    ev = s.handle(CompleteStep(10.0, T))
    assert transitions(ev)[0] == ("exposing", "step_complete")
    return s


def test_next_step_is_offered_at_once_when_arousal_is_below_lower() -> None:
    s = _completed_with(30.0)
    assert now(s) is S.STEP_OFFERED
    assert s.snapshot().step_index == 1


def test_next_step_waits_while_arousal_is_not_below_lower() -> None:
    s = exposing(_auto())
    feed(s, 3, 10, 65.0)
    ev = s.handle(CompleteStep(10.0, T))
    assert now(s) is S.STEP_COMPLETE
    waiting = [e for e in ev if e.kind == "offer_waiting"]
    assert len(waiting) == 1
    assert waiting[0].values == {"step": 1, "arousal": 65.0, "lower": 40.0}
    feed(s, 11, 30, 50.0)
    assert now(s) is S.STEP_COMPLETE
    ev = s.handle(ArousalSample(30.0, 39.0))
    assert transitions(ev) == [("step_complete", "step_offered")]
    assert ev[0].actor == "system"


def test_unknown_or_stale_arousal_is_not_calm() -> None:
    s = exposing(_auto())
    s.handle(ArousalSample(3.0, 30.0))
    s.handle(CompleteStep(9.0, T))  # 30 is 6 s old: stale (stale_s 5), monitoring still ok
    assert now(s) is S.STEP_COMPLETE
    feed(s, 10, 20, None)
    assert now(s) is S.STEP_COMPLETE
    s.handle(ArousalSample(20.0, 30.0))
    assert now(s) is S.STEP_OFFERED


def test_a_pause_between_steps_cancels_the_automatic_offer() -> None:
    s = exposing(_auto())
    feed(s, 3, 10, 65.0)
    s.handle(CompleteStep(10.0, T))
    ev = s.handle(Pause(11.0, C))
    assert ev[0].kind == "pause_acknowledged"
    assert ev[0].values["auto_offer_cancelled"] is True
    feed(s, 12, 30, 20.0)
    assert now(s) is S.STEP_COMPLETE
    s.handle(OfferStep(30.0, T))  # the therapist can always offer
    assert now(s) is S.STEP_OFFERED


def test_therapist_can_offer_the_next_step_while_arousal_is_between_thresholds() -> None:
    s = exposing()
    feed(s, 3, 10, 65.0)
    s.handle(CompleteStep(10.0, T))
    s.handle(OfferStep(11.0, T))
    assert now(s) is S.STEP_OFFERED
    s.handle(Consent(12.0, C))
    assert now(s) is S.EXPOSING


def test_therapist_offer_while_arousal_is_held_high_is_withdrawn_at_once() -> None:
    s = exposing()
    feed(s, 3, 7, 65.0)
    s.handle(CompleteStep(7.0, T))
    feed(s, 7, 15, 80.0)  # no exposure: nothing pauses, the run keeps growing
    assert now(s) is S.STEP_COMPLETE
    ev = s.handle(OfferStep(15.0, T))
    assert transitions(ev) == [
        ("step_complete", "step_offered"),
        ("step_offered", "paused"),
        ("paused", "grounding"),
    ]
    assert s.snapshot().step_index == 1


def test_withdrawn_offer_of_another_step_does_not_inherit_the_pending_recovery() -> None:
    s = exposing()
    feed(s, 3, 9, 80.0)  # step 0 paused on arousal at 8, not yet recovered
    ev = s.handle(OfferStep(9.0, T, step=1))  # still held high: withdrawn at once
    assert _withdrawal(ev).values["withdrawn_offer"] == "step"
    feed(s, 10, 21, 20.0)
    assert now(s) is S.RECOVERED
    p0, p1 = s.progress()
    assert p0.pauses == 1
    assert p0.recovery_times_s == ()  # step 0 was left before it recovered
    assert p1.pauses == 0
    assert p1.recovery_times_s == ()
