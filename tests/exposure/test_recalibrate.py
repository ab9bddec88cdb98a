"""The therapist's fresh calibration (`Recalibrate`): what it does in every state, as the rules
table says, and how it ends (docs/session.md, "Recalibration")."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from biofeedback.errors import CommandError
from biofeedback.exposure import (
    RECALIBRATION,
    ArousalSample,
    CalibrationDone,
    ChooseGrounding,
    CompleteStep,
    Consent,
    EndSession,
    ExposureSession,
    GroundingTechnique,
    OfferStep,
    Pause,
    Recalibrate,
    SessionState,
    SignalLost,
    may_send,
)
from tests.exposure.helpers import C, T, exposing, feed, now, protocol

S = SessionState
SENSORY = GroundingTechnique.SENSORY_54321


def _ready() -> ExposureSession:
    s = ExposureSession(protocol(), t=0.0, client_id="c-1", needs_calibration=True)
    s.handle(ArousalSample(0.0, 30.0))
    s.handle(CalibrationDone(0.5, ok=True))
    return s


def _paused() -> ExposureSession:
    s = exposing()
    s.handle(Pause(3.0, T))
    return s


def _recovered() -> ExposureSession:
    s = _paused()
    feed(s, 4.0, 16.0, 30.0)  # below lower (40) for recovery_s (10)
    return s


BUILD: dict[SessionState, Callable[[], ExposureSession]] = {
    S.CALIBRATING: lambda: _calibrating(),
    S.READY: _ready,
    S.STEP_OFFERED: lambda: _then(_ready(), OfferStep(1.0, T)),
    S.EXPOSING: exposing,
    S.PAUSED: _paused,
    S.GROUNDING: lambda: _then(_paused(), ChooseGrounding(4.0, C, SENSORY)),
    S.RECOVERED: _recovered,
    S.RESUME_OFFERED: lambda: _then(_paused(), OfferStep(4.0, T)),
    S.STEP_COMPLETE: lambda: _then(exposing(), CompleteStep(3.0, T)),
    S.DEBRIEF: lambda: _then(exposing(), EndSession(3.0, T)),
    S.ENDED: lambda: _then(_then(exposing(), EndSession(3.0, T)), EndSession(4.0, T)),
}


def _calibrating() -> ExposureSession:
    s = ExposureSession(protocol(), t=0.0, client_id="c-1", needs_calibration=True)
    s.handle(ArousalSample(0.0, None))
    return s


def _then(s: ExposureSession, *inputs: object) -> ExposureSession:
    for i in inputs:
        s.handle(i)  # type: ignore[arg-type]
    return s


def test_only_the_therapist_may_recalibrate() -> None:
    assert may_send("therapist", Recalibrate)
    assert not may_send("client", Recalibrate)
    s = _ready()
    with pytest.raises(CommandError, match="may only be sent by therapist"):
        s.handle(Recalibrate(5.0, C))


@pytest.mark.parametrize("state", list(SessionState))
def test_each_state_does_what_the_rules_table_says(state: SessionState) -> None:
    s = BUILD[state]()
    assert s.state is state
    t = s.t + 1.0
    if state is not S.ENDED:
        s.handle(ArousalSample(t - 0.5, 30.0))  # monitoring ok right now
    before = s.snapshot()
    rule = RECALIBRATION[state]
    if not rule.allowed:
        with pytest.raises(CommandError) as exc:
            s.handle(Recalibrate(t, T, "calm now"))
        if state is not S.ENDED:  # ended refuses every command with its own message
            assert rule.effect in str(exc.value)
        assert s.snapshot() == before  # a refused command changes nothing
        return
    events = s.handle(Recalibrate(t, T, "calm now", command_id="th-9"))
    assert now(s) is state  # never a state change
    [ev] = [e for e in events if e.kind == "calibration"]
    assert ev.actor.value == "therapist"
    assert ev.t == t
    assert ev.values["reason"] == "calm now"
    assert ev.values["started"] is True
    assert ev.values["restart"] is (state is S.CALIBRATING)
    assert "calm now" in ev.reason
    assert s.calibration_request_t == t
    snap = s.snapshot()
    assert snap.recalibrating is True
    assert snap.calibration_reason == "calm now"


def test_refused_during_exposure_with_a_clear_reply() -> None:
    s = exposing()
    with pytest.raises(CommandError, match="never exposure"):
        s.handle(Recalibrate(3.0, T))
    assert s.calibration_request_t is None


def test_refused_without_a_heart_signal() -> None:
    s = _ready()
    s.handle(SignalLost(2.0, "strap off"))
    with pytest.raises(CommandError, match="no heart signal"):
        s.handle(Recalibrate(3.0, T))


def test_a_reason_must_be_short_text() -> None:
    s = _ready()
    with pytest.raises(CommandError, match="reason"):
        s.handle(Recalibrate(1.0, T, 17))  # type: ignore[arg-type]
    with pytest.raises(CommandError, match="reason"):
        s.handle(Recalibrate(1.0, T, "x" * 501))


def test_fresh_calibration_done_replaces_the_baseline_and_tells_what_was_unusual() -> None:
    s = _ready()
    s.handle(ArousalSample(10.0, 30.0))
    s.handle(Recalibrate(10.0, T, "after the stairs"))
    with pytest.raises(CommandError, match="fresh calibration is running"):
        s.handle(OfferStep(11.0, T))
    note = "heart rate fell 9 bpm across the calibration (80 -> 71 bpm)"
    events = s.handle(CalibrationDone(40.0, ok=True, detail="baseline ready", notes=(note,)))
    kinds = [e.kind for e in events]
    assert kinds[:2] == ["calibration", "calibration_notice"]
    assert events[0].values["fresh"] is True
    assert "new baseline is in use" in events[0].reason
    assert note in events[1].reason
    assert events[1].values["notes"] == [note]
    snap = s.snapshot()
    assert (snap.recalibrating, snap.calibration_notes, snap.calibrated) == (False, (note,), True)
    assert s.calibration_request_t is None
    s.handle(ArousalSample(41.0, 30.0))
    s.handle(OfferStep(42.0, T))  # offers work again
    assert s.state is S.STEP_OFFERED


def test_failed_fresh_calibration_keeps_the_previous_baseline() -> None:
    s = _ready()
    s.handle(ArousalSample(10.0, 30.0))
    s.handle(Recalibrate(10.0, T))
    events = s.handle(CalibrationDone(40.0, ok=False, detail="only 12 clean beats"))
    [ev] = [e for e in events if e.kind == "calibration"]
    assert "previous baseline stays in use" in ev.reason
    snap = s.snapshot()
    assert snap.calibrated
    assert not snap.calibration_failed
    assert snap.arousal_pausing
    assert not snap.recalibrating


def test_grounding_cancels_a_fresh_calibration() -> None:
    s = _ready()
    s.handle(ArousalSample(10.0, 30.0))
    s.handle(Recalibrate(10.0, T))
    events = s.handle(ChooseGrounding(12.0, C, GroundingTechnique.PACED_BREATHING))
    cancelled = [e for e in events if e.kind == "calibration"]
    assert cancelled
    assert cancelled[0].values["cancelled"] is True
    assert "grounding" in cancelled[0].reason
    assert s.calibration_request_t is None
    assert not s.snapshot().recalibrating


def test_a_pause_does_not_cancel_it() -> None:
    s = _paused()
    s.handle(ArousalSample(5.0, 30.0))
    s.handle(Recalibrate(5.0, T))
    s.handle(Pause(6.0, C))
    assert s.calibration_request_t == 5.0


def test_automatic_offers_wait_for_the_fresh_calibration() -> None:
    auto = protocol("\n[session]\nauto_offer = true\n")
    s = ExposureSession(auto, t=0.0, client_id="c-1", needs_calibration=True)
    s.handle(ArousalSample(0.0, 30.0))
    s.handle(CalibrationDone(0.5, ok=True))  # auto offer of step 0
    s.handle(Consent(1.0, C))
    s.handle(Pause(2.0, T))
    s.handle(ArousalSample(3.0, 30.0))
    s.handle(Recalibrate(3.0, T))
    events = s.handle(CompleteStep(4.0, T))
    assert now(s) is S.STEP_COMPLETE  # the next step is not put in front of a calibrating client
    waiting = [e for e in events if e.kind == "offer_waiting"]
    assert waiting
    assert waiting[0].values["calibrating"] is True
    feed(s, 5.0, 30.0, 30.0)
    assert now(s) is S.STEP_COMPLETE
    s.handle(CalibrationDone(30.0, ok=True))
    assert now(s) is S.STEP_OFFERED  # made once the calibration ended, the client being calm
    assert s.snapshot().step_index == 1


def test_restart_in_calibrating_needs_no_signal_and_changes_no_state() -> None:
    s = ExposureSession(protocol(), t=0.0, client_id="c-1", needs_calibration=True)
    events = s.handle(Recalibrate(1.0, T, "client was talking"))
    assert "restarted" in events[0].reason
    assert s.state is S.CALIBRATING
    assert s.calibration_request_t == 1.0
    s.handle(CalibrationDone(31.0, ok=True))
    assert s.state is S.READY
    assert s.calibration_request_t is None


def test_recalibrate_is_recorded_and_read_back() -> None:
    from biofeedback.recording.inputs import InputDecoder, encode_input
    from biofeedback.recording.schema import INPUTS

    cmd = Recalibrate(12.5, T, "calm", command_id="th-3")
    row = dict(zip((c.name for c in INPUTS.columns), encode_input(cmd, 7), strict=True))
    assert InputDecoder().decode(row) == cmd
