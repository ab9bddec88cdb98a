"""Every row of `biofeedback.exposure.rules.TRANSITIONS`, fired once per actor it names.

For each row (source, trigger, target, by) the session is driven to `source` by documented
inputs, the trigger is sent by each actor in `by`, and exactly that transition must come out
(an acknowledged pause, for the self-loop pause rows). A row added to the table without a
scenario here fails the test, so the table and the behaviour cannot drift apart. The
threshold edges of the timed rows are in test_threshold_edges.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from biofeedback.exposure import (
    TRANSITIONS,
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
    Role,
    SessionEvent,
    SessionOptions,
    SessionState,
    SignalLost,
    Transition,
    Trigger,
    may_send,
    role_table_markdown,
    transition_mermaid,
    transition_table_markdown,
)
from biofeedback.exposure import rules as rules_module
from biofeedback.exposure.protocol import ExposureProtocol
from tests.exposure.helpers import C, T, feed, now, protocol

S = SessionState
SYS = Role.SYSTEM
# upper 70, lower 40, dwell 5 s, recovery 10 s, max_step 300 s, two steps of 60 s


def _proto(auto_offer: bool = False, auto_complete: bool = False, **th: float) -> ExposureProtocol:
    p = protocol(**th)
    return replace(p, options=SessionOptions(auto_offer, auto_complete))


def reach(state: SessionState, p: ExposureProtocol | None = None) -> ExposureSession:
    """A session in `state`, arousal 50 (between lower and upper) flowing, at time s.t."""
    p = p or _proto()
    if state is S.CALIBRATING:
        s = ExposureSession(p, t=0.0, client_id="c-1", needs_calibration=True)
        s.handle(ArousalSample(0.0, 50.0))
        return s
    s = ExposureSession(p, t=0.0, client_id="c-1", needs_calibration=False)
    s.handle(ArousalSample(0.0, 50.0))
    if state is S.READY:
        return s
    if state in (S.DEBRIEF, S.ENDED):
        s.handle(EndSession(1.0, T))
        if state is S.ENDED:
            s.handle(EndSession(2.0, T))
        return s
    s.handle(OfferStep(1.0, T))
    if state is S.STEP_OFFERED:
        return s
    s.handle(ArousalSample(2.0, 50.0))
    s.handle(Consent(2.0, C))
    if state is S.EXPOSING:
        return s
    s.handle(ArousalSample(3.0, 50.0))
    if state is S.STEP_COMPLETE:
        s.handle(CompleteStep(3.0, T))
        return s
    s.handle(Pause(3.0, T))
    if state is S.PAUSED:
        return s
    if state is S.GROUNDING:
        s.handle(ChooseGrounding(3.0, C, GroundingTechnique.PACED_BREATHING))
        return s
    if state is S.RESUME_OFFERED:
        s.handle(OfferStep(3.0, T))
        return s
    assert state is S.RECOVERED
    feed(s, 4.0, 15.0, 20.0)
    s.handle(ArousalSample(15.0, 50.0))
    return s


def _in(state: SessionState, p: ExposureProtocol | None = None) -> ExposureSession:
    s = reach(state, p)
    assert now(s) is state
    return s


def _high(s: ExposureSession) -> list[SessionEvent]:
    """Arousal 80 (above upper) for exactly dwell_s."""
    return feed(s, s.t + 1.0, s.t + 7.0, 80.0)


def _calm(s: ExposureSession) -> list[SessionEvent]:
    """Arousal 20 (below lower) for recovery_s."""
    return feed(s, s.t + 1.0, s.t + 12.0, 20.0)


Fire = Callable[[Role], tuple[ExposureSession, list[SessionEvent]]]


def _cmd(state: SessionState, make: Callable[[float, Role], object]) -> Fire:
    def fire(role: Role) -> tuple[ExposureSession, list[SessionEvent]]:
        s = _in(state)
        return s, s.handle(make(s.t + 0.5, role))  # type: ignore[arg-type]

    return fire


def _after(state: SessionState, go: Callable[[ExposureSession], list[SessionEvent]]) -> Fire:
    def fire(role: Role) -> tuple[ExposureSession, list[SessionEvent]]:
        del role
        s = _in(state)
        return s, go(s)

    return fire


def _offer_other(t: float, role: Role) -> OfferStep:
    return OfferStep(t, role, 1)


def _pause(t: float, role: Role) -> Pause:
    return Pause(t, role)


def _complete(t: float, role: Role) -> CompleteStep:
    return CompleteStep(t, role)


def _end(t: float, role: Role) -> EndSession:
    return EndSession(t, role)


def _calibration_failed_then_offer(role: Role) -> tuple[ExposureSession, list[SessionEvent]]:
    s = _in(S.CALIBRATING)
    s.handle(CalibrationDone(1.0, ok=False, detail="noisy"))
    return s, s.handle(OfferStep(2.0, role))


def _auto_first_offer(role: Role) -> tuple[ExposureSession, list[SessionEvent]]:
    assert role is SYS
    s = _in(S.CALIBRATING, _proto(auto_offer=True))
    return s, s.handle(CalibrationDone(1.0, ok=True))


def _arousal_pause(role: Role) -> tuple[ExposureSession, list[SessionEvent]]:
    s = _in(S.EXPOSING)
    return s, _high(s)


def _step_too_long(role: Role) -> tuple[ExposureSession, list[SessionEvent]]:
    s = _in(S.EXPOSING, _proto(max_step_s=20))
    return s, feed(s, 3.0, 23.0, 50.0)


def _planned_time(role: Role) -> tuple[ExposureSession, list[SessionEvent]]:
    s = _in(S.EXPOSING, _proto(auto_complete=True))
    return s, feed(s, 3.0, 63.0, 50.0)


def _arousal_recovery(role: Role) -> tuple[ExposureSession, list[SessionEvent]]:
    s = _in(S.EXPOSING)
    _high(s)
    assert now(s) is S.GROUNDING
    return s, _calm(s)


def _system_resume_offer(role: Role) -> tuple[ExposureSession, list[SessionEvent]]:
    s = _in(S.EXPOSING, _proto(auto_offer=True))
    _high(s)
    return s, _calm(s)


def _system_step_reoffer(role: Role) -> tuple[ExposureSession, list[SessionEvent]]:
    s = _in(S.CALIBRATING, _proto(auto_offer=True))
    s.handle(CalibrationDone(1.0, ok=True))
    assert now(s) is S.STEP_OFFERED  # the system's first offer
    _high(s)  # withdrawn on arousal
    assert now(s) is S.GROUNDING
    return s, _calm(s)


def _system_next_step(role: Role) -> tuple[ExposureSession, list[SessionEvent]]:
    s = _in(S.EXPOSING, _proto(auto_offer=True))
    s.handle(ArousalSample(4.0, 20.0))
    return s, s.handle(CompleteStep(4.0, T))


def _all_steps_done(role: Role) -> tuple[ExposureSession, list[SessionEvent]]:
    s = _in(S.EXPOSING, _proto(auto_offer=True))
    s.handle(CompleteStep(4.0, T))
    s.handle(OfferStep(5.0, T, 1))
    s.handle(ArousalSample(5.0, 50.0))
    s.handle(Consent(6.0, C))
    return s, s.handle(CompleteStep(7.0, T))


def _pause_after_system_pause(grounding: bool) -> Fire:
    """A pause while paused by the system (it makes the reason the sender's, so it is news)."""

    def fire(role: Role) -> tuple[ExposureSession, list[SessionEvent]]:
        s = _in(S.EXPOSING)
        if grounding:
            _high(s)
        else:
            s.handle(SignalLost(3.0))
        assert now(s) is (S.GROUNDING if grounding else S.PAUSED)
        return s, s.handle(Pause(s.t + 0.5, role))

    return fire


def _recovered_arousal(role: Role) -> tuple[ExposureSession, list[SessionEvent]]:
    s = _in(S.RECOVERED)
    return s, _high(s)


SCENARIOS: dict[tuple[SessionState, Trigger], Fire] = {
    (S.CALIBRATING, Trigger.CALIBRATION_OK): _cmd(
        S.CALIBRATING, lambda t, r: CalibrationDone(t, ok=True)
    ),
    (S.CALIBRATING, Trigger.OFFER_STEP): _calibration_failed_then_offer,
    (S.READY, Trigger.OFFER_STEP): _cmd(S.READY, lambda t, r: OfferStep(t, r)),
    (S.STEP_OFFERED, Trigger.OFFER_STEP): _cmd(S.STEP_OFFERED, _offer_other),
    (S.STEP_OFFERED, Trigger.CONSENT): _cmd(S.STEP_OFFERED, lambda t, r: Consent(t, r)),
    (S.STEP_OFFERED, Trigger.DECLINE): _cmd(S.STEP_OFFERED, lambda t, r: Decline(t, r)),
    (S.STEP_OFFERED, Trigger.AROUSAL_HIGH): _after(S.STEP_OFFERED, _high),
    (S.EXPOSING, Trigger.AROUSAL_HIGH): _arousal_pause,
    (S.EXPOSING, Trigger.SIGNAL_LOST): _cmd(S.EXPOSING, lambda t, r: SignalLost(t)),
    (S.EXPOSING, Trigger.STEP_TOO_LONG): _step_too_long,
    (S.EXPOSING, Trigger.PLANNED_TIME_REACHED): _planned_time,
    (S.PAUSED, Trigger.OFFER_STEP): _cmd(S.PAUSED, _offer_other),
    (S.PAUSED, Trigger.OFFER_RESUME): _cmd(S.PAUSED, lambda t, r: OfferStep(t, r)),
    (S.PAUSED, Trigger.START_GROUNDING): _arousal_pause,
    (S.PAUSED, Trigger.CHOOSE_GROUNDING): _cmd(
        S.PAUSED, lambda t, r: ChooseGrounding(t, r, GroundingTechnique.SENSORY_54321)
    ),
    (S.PAUSED, Trigger.RECOVERY): _after(S.PAUSED, _calm),
    (S.PAUSED, Trigger.PAUSE): _pause_after_system_pause(grounding=False),
    (S.GROUNDING, Trigger.PAUSE): _pause_after_system_pause(grounding=True),
    (S.GROUNDING, Trigger.OFFER_STEP): _cmd(S.GROUNDING, _offer_other),
    (S.GROUNDING, Trigger.OFFER_RESUME): _cmd(S.GROUNDING, lambda t, r: OfferStep(t, r)),
    (S.GROUNDING, Trigger.CHOOSE_GROUNDING): _cmd(
        S.GROUNDING, lambda t, r: ChooseGrounding(t, r, GroundingTechnique.SELF_COMPASSION)
    ),
    (S.GROUNDING, Trigger.RECOVERY): _arousal_recovery,
    (S.RECOVERED, Trigger.OFFER_RESUME): _cmd(S.RECOVERED, lambda t, r: OfferStep(t, r)),
    (S.RECOVERED, Trigger.OFFER_STEP): _cmd(S.RECOVERED, _offer_other),
    (S.RECOVERED, Trigger.AROUSAL_HIGH): _recovered_arousal,
    (S.RESUME_OFFERED, Trigger.OFFER_STEP): _cmd(S.RESUME_OFFERED, _offer_other),
    (S.RESUME_OFFERED, Trigger.OFFER_RESUME): _cmd(S.RESUME_OFFERED, lambda t, r: OfferStep(t, r)),
    (S.RESUME_OFFERED, Trigger.CONSENT): _cmd(S.RESUME_OFFERED, lambda t, r: Consent(t, r)),
    (S.RESUME_OFFERED, Trigger.DECLINE): _cmd(S.RESUME_OFFERED, lambda t, r: Decline(t, r)),
    (S.RESUME_OFFERED, Trigger.AROUSAL_HIGH): _after(S.RESUME_OFFERED, _high),
    (S.STEP_COMPLETE, Trigger.OFFER_STEP): _cmd(S.STEP_COMPLETE, lambda t, r: OfferStep(t, r)),
    (S.STEP_COMPLETE, Trigger.ALL_STEPS_DONE): _all_steps_done,
    (S.DEBRIEF, Trigger.END): _cmd(S.DEBRIEF, _end),
}
# The system's own offers, where a row names both the therapist and the system.
SYSTEM_SCENARIOS: dict[tuple[SessionState, Trigger], Fire] = {
    (S.READY, Trigger.OFFER_STEP): _auto_first_offer,
    (S.RECOVERED, Trigger.OFFER_RESUME): _system_resume_offer,
    (S.RECOVERED, Trigger.OFFER_STEP): _system_step_reoffer,
    (S.STEP_COMPLETE, Trigger.OFFER_STEP): _system_next_step,
}


def _scenario(tr: Transition, role: Role) -> Fire:
    key = (tr.source, tr.trigger)
    if role is SYS and key in SYSTEM_SCENARIOS:
        return SYSTEM_SCENARIOS[key]
    if key in SCENARIOS:
        return SCENARIOS[key]
    if tr.trigger is Trigger.PAUSE:
        return _cmd(tr.source, _pause)
    if tr.trigger is Trigger.COMPLETE_STEP:
        return _cmd(tr.source, _complete)
    if tr.trigger is Trigger.END:
        return _cmd(tr.source, _end)
    raise AssertionError(f"no scenario for the row {tr} (add one to SCENARIOS)")


ROLES = {"client": C, "therapist": T, "system": SYS}
CASES = [
    pytest.param(tr, ROLES[who], id=f"{tr.source}-{tr.trigger}-{who}")
    for tr in TRANSITIONS
    for who in tr.by.split("|")
]


@pytest.mark.parametrize(("tr", "role"), CASES)
def test_every_row_fires_as_the_table_says(tr: Transition, role: Role) -> None:
    s, events = _scenario(tr, role)(role)
    if tr.trigger is Trigger.PAUSE and tr.source is tr.target:
        # Nothing to pause, or already paused: acknowledged in the same state, not a transition.
        assert [(e.kind, e.from_state, e.to_state, e.actor) for e in events[:1]] == [
            ("pause_acknowledged", tr.source, tr.source, role)
        ]
        assert now(s) is tr.source
        return
    fired = [
        e
        for e in events
        if e.kind == "transition"
        and e.from_state is tr.source
        and e.reason.startswith(f"{tr.trigger}:")
    ]
    assert len(fired) == 1, [(e.kind, e.from_state, e.reason) for e in events]
    (e,) = fired
    assert e.to_state is tr.target
    assert e.actor is role


def test_every_row_has_a_case_and_every_case_a_row() -> None:
    rows = {(tr.source, tr.trigger) for tr in TRANSITIONS}
    assert set(SCENARIOS) <= rows
    assert set(SYSTEM_SCENARIOS) <= {
        (tr.source, tr.trigger) for tr in TRANSITIONS if "system" in tr.by
    }
    assert len(CASES) == sum(len(tr.by.split("|")) for tr in TRANSITIONS)


# ---- the rules module's helpers ------------------------------------------------------------------


def test_may_send_is_false_for_observations_and_unknown_roles() -> None:
    assert not may_send("client", ArousalSample)  # an observation: nobody sends it as a command
    assert not may_send("system", CalibrationDone)
    assert not may_send("nurse", Pause)
    assert may_send(Role.THERAPIST, EndSession)


def test_a_pipe_in_a_condition_never_breaks_the_markdown_table(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    row = Transition(S.READY, Trigger.PAUSE, S.READY, "client|therapist", "a|b")
    monkeypatch.setattr(rules_module, "TRANSITIONS", (row,))
    table = transition_table_markdown().splitlines()
    assert table[2] == "| ready | pause | ready | client or therapist | a/b |"
    assert all(line.count("|") == 6 for line in table)


def test_generated_tables_cover_every_row_and_command() -> None:
    table = transition_table_markdown().splitlines()
    assert len(table) == 2 + len(TRANSITIONS)
    diagram = transition_mermaid()
    for tr in TRANSITIONS:
        if tr.source is not tr.target:
            assert f"    {tr.source} --> {tr.target}: " in diagram
    assert role_table_markdown().count("\n") == 1 + len(rules_module.ROLE_RULES)
