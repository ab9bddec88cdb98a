"""Every threshold rule of the session at its exact edge, with the protocol's thresholds and again
after the therapist adjusted them (docs/session.md, "Rules").

The edges, as the docs state them:
- dwell: arousal *at or above* `upper` for `dwell_s` pauses an exposure, withdraws an open offer
  and ends a recovered hold (rows `* --arousal_high--> paused`): exactly `upper` counts, and the
  pause comes at exactly `dwell_s`, not one float step before;
- recovery: arousal *below* `lower` for `recovery_s` recovers (rows `paused|grounding --recovery-->
  recovered`): exactly `lower` does not count; just below it does, at exactly `recovery_s`;
- next step: the system offers it (`step_complete --offer_step--> step_offered`) on a fresh known
  value *below* `lower`: exactly `lower` keeps it waiting;
- a consent at the instant the dwell is reached is refused, one float step earlier it is accepted;
- an adjustment keeps a run only when the newest value still qualifies under the new thresholds;
- unknown values (the newest sample unknown) neither pause, recover nor count as calm;
- the timers reach their limit at exactly the limit: stale_s, signal_timeout_s, max_step_s,
  planned_s (auto_complete) and the periodic check-in.

Times are whole or half seconds, so the arithmetic is exact; "one float step" is math.nextafter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import pytest

from biofeedback.errors import CommandError
from biofeedback.exposure import (
    AdjustThresholds,
    ArousalSample,
    CalibrationDone,
    CheckinCadence,
    CompleteStep,
    Consent,
    ExposureSession,
    OfferStep,
    Pause,
    PauseReason,
    Role,
    SessionEvent,
    SessionOptions,
    SessionState,
    SignalLost,
    SignalRestored,
    Tick,
)
from biofeedback.exposure.protocol import ExposureProtocol
from tests.exposure.helpers import C, T, now, protocol, transitions

S = SessionState
INF = math.inf


def below(x: float) -> float:
    """The largest float below x."""
    return math.nextafter(x, -INF)


def above(x: float) -> float:
    """The smallest float above x."""
    return math.nextafter(x, INF)


@dataclass(frozen=True)
class Edges:
    """The thresholds in force, and whether the therapist set them (AdjustThresholds at t=0)."""

    upper: float
    lower: float
    dwell_s: float
    recovery_s: float
    adjusted: bool

    def proto(self, auto_offer: bool = False, auto_complete: bool = False) -> ExposureProtocol:
        p = protocol()  # upper 70, lower 40, dwell 5 s, recovery 10 s
        if not self.adjusted:
            p = replace(
                p,
                thresholds=replace(
                    p.thresholds,
                    upper=self.upper,
                    lower=self.lower,
                    dwell_s=self.dwell_s,
                    recovery_s=self.recovery_s,
                ),
            )
        return replace(p, options=SessionOptions(auto_offer, auto_complete))

    def ready(self, auto_offer: bool = False, auto_complete: bool = False) -> ExposureSession:
        """Calibrated, ready at t=0 (arousal 50, between lower and upper), thresholds in force."""
        s = ExposureSession(self.proto(auto_offer, auto_complete), t=0.0, client_id="c-1")
        s.handle(ArousalSample(0.0, 50.0))
        if self.adjusted:
            ev = s.handle(
                AdjustThresholds(
                    0.0,
                    T,
                    upper=self.upper,
                    lower=self.lower,
                    dwell_s=self.dwell_s,
                    recovery_s=self.recovery_s,
                )
            )
            assert [e.kind for e in ev] == ["thresholds"]
        s.handle(CalibrationDone(0.0, ok=True))
        th = s.thresholds
        assert (th.upper, th.lower, th.dwell_s, th.recovery_s) == (
            self.upper,
            self.lower,
            self.dwell_s,
            self.recovery_s,
        )
        return s

    def exposing(self, auto_offer: bool = False, auto_complete: bool = False) -> ExposureSession:
        """Exposing step 0 since t=2 (offered at t=1), arousal 50 at t=0..2."""
        s = self.ready(auto_offer, auto_complete)
        s.handle(ArousalSample(1.0, 50.0))
        if now(s) is S.READY:
            s.handle(OfferStep(1.0, T))
        s.handle(ArousalSample(2.0, 50.0))
        s.handle(Consent(2.0, C))
        assert now(s) is S.EXPOSING
        return s


EDGES = [
    pytest.param(Edges(70.0, 40.0, 5.0, 10.0, adjusted=False), id="protocol"),
    # The therapist lowers every threshold (from 70/40/5/10) ...
    pytest.param(Edges(62.5, 37.25, 4.0, 6.0, adjusted=True), id="adjusted-down"),
    # ... or raises them; 50 stays between lower and upper in each set.
    pytest.param(Edges(80.0, 45.5, 7.0, 3.0, adjusted=True), id="adjusted-up"),
]


def hold(s: ExposureSession, value: float | None, t0: float, t1: float) -> list[SessionEvent]:
    """One sample per second at t0, t0 + 1, ..., up to and including t1."""
    out: list[SessionEvent] = []
    t = t0
    while t <= t1:
        out += s.handle(ArousalSample(t, value))
        t += 1.0
    return out


def _only(events: list[SessionEvent], trigger: str) -> SessionEvent:
    found = [e for e in events if e.kind == "transition" and e.reason.startswith(trigger + ":")]
    assert len(found) == 1, events
    return found[0]


def _pause_on_arousal(ev: list[SessionEvent], src: SessionState, e: Edges, since: float) -> None:
    """`ev` is exactly: src --arousal_high--> paused, then paused --start_grounding--> grounding."""
    assert transitions(ev) == [(src.value, "paused"), ("paused", "grounding")]
    p = _only(ev, "arousal_high")
    assert p.actor is Role.SYSTEM
    assert p.values["pause_reason"] == "arousal"
    assert p.values["upper"] == e.upper
    assert p.values["dwell_s"] == e.dwell_s
    assert p.values["above_since"] == since
    assert p.t == since + e.dwell_s
    assert p.values["arousal"] is not None
    assert p.values["arousal"] >= e.upper


# ---- dwell: at or above upper --------------------------------------------------------------------


@pytest.mark.parametrize("e", EDGES)
def test_exactly_upper_for_exactly_dwell_pauses_exposure(e: Edges) -> None:
    s = e.exposing()
    hold(s, 50.0, 3.0, 9.0)
    ev = hold(s, e.upper, 10.0, 10.0 + e.dwell_s - 1.0)
    assert transitions(ev) == []
    assert s.handle(Tick(below(10.0 + e.dwell_s))) == []
    assert now(s) is S.EXPOSING
    assert 0.0 < s.snapshot().dwell_progress < 1.0
    ev = s.handle(ArousalSample(10.0 + e.dwell_s, e.upper))
    _pause_on_arousal(ev, S.EXPOSING, e, since=10.0)
    snap = s.snapshot()
    assert snap.state is S.GROUNDING
    assert snap.pause_reason is PauseReason.AROUSAL
    assert snap.paused_since == 10.0 + e.dwell_s
    assert snap.progress[0].pause_reasons == ("arousal",)


@pytest.mark.parametrize("e", EDGES)
def test_a_tick_completes_the_dwell_at_exactly_dwell_s(e: Edges) -> None:
    s = e.exposing()
    hold(s, e.upper, 3.0, 3.0 + e.dwell_s - 1.0)
    assert s.handle(Tick(below(3.0 + e.dwell_s))) == []
    ev = s.handle(Tick(3.0 + e.dwell_s))
    _pause_on_arousal(ev, S.EXPOSING, e, since=3.0)


@pytest.mark.parametrize("e", EDGES)
def test_one_float_step_below_upper_never_pauses(e: Edges) -> None:
    s = e.exposing()
    ev = hold(s, below(e.upper), 3.0, 100.0)
    assert transitions(ev) == []
    assert now(s) is S.EXPOSING
    assert s.snapshot().dwell_progress == 0.0
    # ... and one such value inside a run at upper restarts the dwell.
    hold(s, e.upper, 101.0, 101.0 + e.dwell_s - 1.0)
    s.handle(ArousalSample(101.0 + e.dwell_s - 0.5, below(e.upper)))
    ev = hold(s, e.upper, 101.0 + e.dwell_s, 101.0 + 2 * e.dwell_s - 1.0)
    assert transitions(ev) == []
    ev = s.handle(ArousalSample(101.0 + 2 * e.dwell_s, e.upper))
    _pause_on_arousal(ev, S.EXPOSING, e, since=101.0 + e.dwell_s)


@pytest.mark.parametrize("e", EDGES)
def test_one_float_step_above_upper_pauses_like_upper(e: Edges) -> None:
    s = e.exposing()
    hold(s, above(e.upper), 3.0, 3.0 + e.dwell_s - 1.0)
    assert now(s) is S.EXPOSING
    ev = s.handle(ArousalSample(3.0 + e.dwell_s, above(e.upper)))
    _pause_on_arousal(ev, S.EXPOSING, e, since=3.0)


def _in_state(e: Edges, state: SessionState) -> tuple[ExposureSession, float]:
    """A session in `state` at time t (returned), arousal 50 just sent at t."""
    if state is S.STEP_OFFERED:
        s = e.ready()
        s.handle(OfferStep(1.0, T))
        s.handle(ArousalSample(1.0, 50.0))
        return s, 1.0
    s = e.exposing()
    s.handle(Pause(3.0, T))
    if state is S.RESUME_OFFERED:
        s.handle(OfferStep(4.0, T))
        s.handle(ArousalSample(4.0, 50.0))
        return s, 4.0
    assert state is S.RECOVERED
    t = 4.0 + e.recovery_s
    hold(s, 20.0, 4.0, t)
    assert now(s) is S.RECOVERED
    s.handle(ArousalSample(t + 1.0, 50.0))
    return s, t + 1.0


@pytest.mark.parametrize("e", EDGES)
@pytest.mark.parametrize("state", [S.STEP_OFFERED, S.RESUME_OFFERED, S.RECOVERED])
def test_exactly_upper_for_exactly_dwell_withdraws_an_offer_or_a_recovered_hold(
    e: Edges, state: SessionState
) -> None:
    s, t = _in_state(e, state)
    t0 = t + 1.0
    ev = hold(s, e.upper, t0, t0 + e.dwell_s - 1.0)
    assert transitions(ev) == []
    assert s.handle(Tick(below(t0 + e.dwell_s))) == []
    assert now(s) is state
    ev = s.handle(ArousalSample(t0 + e.dwell_s, e.upper))
    _pause_on_arousal(ev, state, e, since=t0)
    w = _only(ev, "arousal_high")
    withdrawn = {S.STEP_OFFERED: "step", S.RESUME_OFFERED: "resume", S.RECOVERED: None}
    assert w.values["withdrawn_offer"] == withdrawn[state]
    assert w.values["from"] == state.value
    snap = s.snapshot()
    assert snap.offer is None
    assert snap.consent_needed is None
    assert snap.pause_reason is PauseReason.AROUSAL


@pytest.mark.parametrize("e", EDGES)
@pytest.mark.parametrize("state", [S.STEP_OFFERED, S.RESUME_OFFERED, S.RECOVERED])
def test_one_float_step_below_upper_never_withdraws(e: Edges, state: SessionState) -> None:
    s, t = _in_state(e, state)
    ev = hold(s, below(e.upper), t + 1.0, t + 100.0)
    assert transitions(ev) == []
    assert now(s) is state


@pytest.mark.parametrize("e", EDGES)
def test_consent_one_float_step_before_the_dwell_starts_exposure(e: Edges) -> None:
    s, _ = _in_state(e, S.STEP_OFFERED)
    hold(s, e.upper, 2.0, 2.0 + e.dwell_s - 1.0)
    ev = s.handle(Consent(below(2.0 + e.dwell_s), C))
    assert transitions(ev) == [("step_offered", "exposing")]
    # The dwell counts from the start of the run, not from the consent.
    ev = s.handle(Tick(2.0 + e.dwell_s))
    _pause_on_arousal(ev, S.EXPOSING, e, since=2.0)


@pytest.mark.parametrize("e", EDGES)
def test_consent_at_exactly_the_dwell_is_refused_and_changes_nothing(e: Edges) -> None:
    s, _ = _in_state(e, S.STEP_OFFERED)
    hold(s, e.upper, 2.0, 2.0 + e.dwell_s - 1.0)
    before = s.snapshot()
    with pytest.raises(CommandError, match="being withdrawn"):
        s.handle(Consent(2.0 + e.dwell_s, C))
    assert s.snapshot() == before
    ev = s.handle(Tick(2.0 + e.dwell_s))
    _pause_on_arousal(ev, S.STEP_OFFERED, e, since=2.0)


def test_dwell_zero_pauses_on_one_value_at_exactly_upper() -> None:
    s = Edges(70.0, 40.0, 5.0, 10.0, adjusted=False).exposing()
    s.handle(AdjustThresholds(3.0, T, dwell_s=0))
    ev = hold(s, below(70.0), 4.0, 20.0)
    assert transitions(ev) == []
    ev = s.handle(ArousalSample(21.0, 70.0))
    assert transitions(ev) == [("exposing", "paused"), ("paused", "grounding")]
    assert _only(ev, "arousal_high").values["above_since"] == 21.0
    assert s.snapshot().dwell_progress == 1.0


# ---- recovery: below lower -----------------------------------------------------------------------


def _paused(e: Edges, how: str) -> ExposureSession:
    """Paused at t=3 + dwell at the latest: by the therapist (paused) or on arousal (grounding)."""
    s = e.exposing()
    if how == "therapist":
        s.handle(ArousalSample(3.0, 50.0))
        s.handle(Pause(3.0, T))
        assert now(s) is S.PAUSED
    else:
        hold(s, e.upper, 3.0, 3.0 + e.dwell_s)
        assert now(s) is S.GROUNDING
    return s


PAUSES = ["therapist", "arousal"]


@pytest.mark.parametrize("e", EDGES)
@pytest.mark.parametrize("how", PAUSES)
def test_exactly_lower_never_counts_as_recovered(e: Edges, how: str) -> None:
    s = _paused(e, how)
    state = now(s)
    t0 = s.t + 1.0
    ev = hold(s, e.lower, t0, t0 + 10 * e.recovery_s + 30.0)
    assert transitions(ev) == []
    snap = s.snapshot()
    assert snap.state is state
    assert snap.recovery_progress == 0.0
    assert snap.progress[0].recovery_times_s == ()


@pytest.mark.parametrize("e", EDGES)
@pytest.mark.parametrize("how", PAUSES)
def test_one_float_step_below_lower_for_exactly_recovery_recovers(e: Edges, how: str) -> None:
    s = _paused(e, how)
    state = now(s)
    paused_at = s.snapshot().paused_since
    assert paused_at is not None
    t0 = s.t + 1.0
    v = below(e.lower)
    ev = hold(s, v, t0, t0 + e.recovery_s - 1.0)
    assert transitions(ev) == []
    assert s.handle(Tick(below(t0 + e.recovery_s))) == []
    assert now(s) is state
    ev = s.handle(ArousalSample(t0 + e.recovery_s, v))
    assert transitions(ev) == [(state.value, "recovered")]
    r = _only(ev, "recovery")
    assert r.t == t0 + e.recovery_s
    assert r.actor is Role.SYSTEM
    assert r.values["lower"] == e.lower
    assert r.values["recovery_s"] == e.recovery_s
    assert r.values["paused_at"] == paused_at
    assert r.values["time_to_recover_s"] == t0 + e.recovery_s - paused_at
    assert s.snapshot().recovery_progress == 1.0
    assert s.progress()[0].recovery_times_s == (t0 + e.recovery_s - paused_at,)


@pytest.mark.parametrize("e", EDGES)
def test_one_value_at_exactly_lower_restarts_the_recovery(e: Edges) -> None:
    s = _paused(e, "therapist")
    v = below(e.lower)
    hold(s, v, 4.0, 4.0 + e.recovery_s - 1.0)
    s.handle(ArousalSample(4.0 + e.recovery_s - 0.5, e.lower))
    t1 = 4.0 + e.recovery_s
    ev = hold(s, v, t1, t1 + e.recovery_s - 1.0)
    assert transitions(ev) == []
    ev = s.handle(Tick(t1 + e.recovery_s))
    assert transitions(ev) == [("paused", "recovered")]


@pytest.mark.parametrize("e", EDGES)
def test_recovery_counts_from_the_pause_at_exactly_recovery_s(e: Edges) -> None:
    s = e.exposing()
    v = below(e.lower)
    hold(s, v, 3.0, 20.0)  # calm all along: the run below lower began long before the pause
    s.handle(Pause(20.0, T))
    ev = hold(s, v, 21.0, 20.0 + e.recovery_s - 1.0)
    assert transitions(ev) == []
    assert s.handle(Tick(below(20.0 + e.recovery_s))) == []
    ev = s.handle(Tick(20.0 + e.recovery_s))
    assert transitions(ev) == [("paused", "recovered")]
    assert _only(ev, "recovery").values["time_to_recover_s"] == e.recovery_s


def test_recovery_zero_recovers_on_one_value_below_lower_but_not_at_lower() -> None:
    e = Edges(70.0, 40.0, 5.0, 10.0, adjusted=False)
    s = _paused(e, "therapist")
    s.handle(AdjustThresholds(4.0, T, recovery_s=0))
    ev = hold(s, 40.0, 5.0, 30.0)
    assert transitions(ev) == []
    ev = s.handle(ArousalSample(31.0, below(40.0)))
    assert transitions(ev) == [("paused", "recovered")]
    assert _only(ev, "recovery").values["time_to_recover_s"] == 31.0 - 3.0


# ---- the next step waits for a value below lower ----------------------------------------------


@pytest.mark.parametrize("e", EDGES)
def test_next_step_waits_at_exactly_lower_and_is_offered_just_below(e: Edges) -> None:
    s = e.exposing(auto_offer=True)
    s.handle(ArousalSample(5.0, e.lower))
    ev = s.handle(CompleteStep(5.0, T))
    assert transitions(ev) == [("exposing", "step_complete")]
    waiting = [x for x in ev if x.kind == "offer_waiting"]
    assert len(waiting) == 1
    assert waiting[0].values == {"step": 1, "arousal": e.lower, "lower": e.lower}
    ev = hold(s, e.lower, 6.0, 30.0)
    assert transitions(ev) == []
    assert now(s) is S.STEP_COMPLETE
    ev = s.handle(ArousalSample(31.0, below(e.lower)))
    assert transitions(ev) == [("step_complete", "step_offered")]
    assert ev[0].actor is Role.SYSTEM
    assert s.snapshot().step_index == 1


@pytest.mark.parametrize("e", EDGES)
def test_next_step_is_offered_at_once_when_the_value_is_just_below_lower(e: Edges) -> None:
    s = e.exposing(auto_offer=True)
    s.handle(ArousalSample(5.0, below(e.lower)))
    ev = s.handle(CompleteStep(5.0, T))
    assert transitions(ev) == [("exposing", "step_complete"), ("step_complete", "step_offered")]
    assert not [x for x in ev if x.kind == "offer_waiting"]


# ---- an adjustment keeps a run only when the newest value still qualifies ---------------------

BASE = Edges(70.0, 40.0, 5.0, 10.0, adjusted=False)


def test_raising_upper_to_exactly_the_running_value_keeps_the_dwell() -> None:
    s = BASE.exposing()
    hold(s, 75.0, 3.0, 5.0)
    s.handle(AdjustThresholds(5.5, T, upper=75.0))
    hold(s, 75.0, 6.0, 7.0)
    assert now(s) is S.EXPOSING
    ev = s.handle(ArousalSample(8.0, 75.0))
    assert transitions(ev) == [("exposing", "paused"), ("paused", "grounding")]
    assert _only(ev, "arousal_high").values["above_since"] == 3.0


def test_raising_upper_one_float_step_above_the_running_value_breaks_the_dwell() -> None:
    s = BASE.exposing()
    hold(s, 75.0, 3.0, 5.0)
    s.handle(AdjustThresholds(5.5, T, upper=above(75.0)))
    ev = hold(s, 75.0, 6.0, 60.0)
    assert transitions(ev) == []
    assert now(s) is S.EXPOSING


def test_lowering_upper_to_exactly_the_running_value_starts_the_dwell_at_the_adjustment() -> None:
    s = BASE.exposing()
    hold(s, 65.0, 3.0, 5.0)
    s.handle(AdjustThresholds(5.5, T, upper=65.0))
    hold(s, 65.0, 6.0, 10.0)
    assert s.handle(Tick(below(10.5))) == []
    ev = s.handle(Tick(10.5))
    assert transitions(ev) == [("exposing", "paused"), ("paused", "grounding")]
    assert _only(ev, "arousal_high").values["above_since"] == 5.5


def test_lowering_lower_to_exactly_the_running_value_breaks_the_recovery() -> None:
    s = _paused(BASE, "therapist")
    hold(s, 35.0, 4.0, 6.0)
    s.handle(AdjustThresholds(6.5, T, lower=35.0))
    ev = hold(s, 35.0, 7.0, 60.0)
    assert transitions(ev) == []
    assert now(s) is S.PAUSED


def test_lowering_lower_one_float_step_above_the_running_value_keeps_the_recovery() -> None:
    s = _paused(BASE, "therapist")
    hold(s, 35.0, 4.0, 6.0)
    s.handle(AdjustThresholds(6.5, T, lower=above(35.0)))
    hold(s, 35.0, 7.0, 13.0)
    assert now(s) is S.PAUSED
    ev = s.handle(ArousalSample(14.0, 35.0))
    assert transitions(ev) == [("paused", "recovered")]


def test_raising_lower_above_the_running_value_starts_the_recovery_at_the_adjustment() -> None:
    s = _paused(BASE, "therapist")
    hold(s, 45.0, 4.0, 6.0)
    s.handle(AdjustThresholds(6.5, T, lower=above(45.0)))
    hold(s, 45.0, 7.0, 16.0)
    assert s.handle(Tick(below(16.5))) == []
    ev = s.handle(Tick(16.5))
    assert transitions(ev) == [("paused", "recovered")]


def test_an_adjustment_with_a_stale_value_starts_no_run() -> None:
    s = _paused(BASE, "therapist")
    s.handle(ArousalSample(4.0, 45.0))
    s.handle(AdjustThresholds(9.5, T, lower=50.0, recovery_s=0.0))  # 45 is 5.5 s old: unknown
    assert now(s) is S.PAUSED
    s2 = BASE.exposing()
    s2.handle(ArousalSample(3.0, 65.0))
    s2.handle(AdjustThresholds(8.5, T, upper=60.0, dwell_s=0.0))
    assert now(s2) is S.EXPOSING


# ---- unknown values: the newest sample decides ------------------------------------------------


def test_an_adjustment_after_an_unknown_sample_does_not_recover_on_the_older_value() -> None:
    s = _paused(BASE, "therapist")
    s.handle(ArousalSample(4.0, 45.0))
    s.handle(ArousalSample(5.0, None))  # unknown: both runs restart
    ev = s.handle(AdjustThresholds(5.5, T, lower=50.0, recovery_s=2.0))
    ev += s.handle(Tick(7.5))
    ev += s.handle(Tick(9.0))
    assert transitions(ev) == []
    assert now(s) is S.PAUSED
    assert s.snapshot().recovery_progress == 0.0


def test_an_adjustment_after_an_unknown_sample_does_not_start_a_dwell_on_the_older_value() -> None:
    s = BASE.exposing()
    s.handle(ArousalSample(3.0, 65.0))
    s.handle(ArousalSample(4.0, math.nan))
    ev = s.handle(AdjustThresholds(4.5, T, upper=60.0, dwell_s=1.0))
    ev += s.handle(Tick(6.0))
    assert transitions(ev) == []
    assert now(s) is S.EXPOSING
    assert s.snapshot().dwell_progress == 0.0


def test_next_step_is_not_offered_when_the_newest_sample_is_unknown() -> None:
    s = BASE.exposing(auto_offer=True)
    s.handle(ArousalSample(3.0, 20.0))  # calm ...
    s.handle(ArousalSample(4.0, 20.0, confidence=0.0))  # ... then unknown
    ev = s.handle(CompleteStep(5.0, T))
    assert transitions(ev) == [("exposing", "step_complete")]
    (waiting,) = [x for x in ev if x.kind == "offer_waiting"]
    assert waiting.values["arousal"] is None
    ev = s.handle(ArousalSample(6.0, 20.0))
    assert transitions(ev) == [("step_complete", "step_offered")]


def test_a_zero_confidence_value_above_upper_pauses_nothing() -> None:
    # (the loose check once at tests/exposure/test_session.py:124, made concrete)
    s = BASE.exposing()
    s.handle(ArousalSample(3.0, 90.0, confidence=0.0))
    ev = s.handle(Tick(9.0))
    assert ev == []
    snap = s.snapshot()
    assert snap.state is S.EXPOSING
    assert snap.pause_reason is None
    assert snap.dwell_progress == 0.0
    assert snap.last_arousal == 50.0  # the unknown value is not shown as arousal


# ---- timers at their exact limit --------------------------------------------------------------


def test_a_value_exactly_stale_s_old_still_completes_the_dwell() -> None:
    s = BASE.exposing()  # stale_s 5, dwell 5
    s.handle(ArousalSample(3.0, 70.0))
    ev = s.handle(Tick(8.0))  # the value is exactly 5 s old: still known
    assert transitions(ev) == [("exposing", "paused"), ("paused", "grounding")]


def test_a_value_one_float_step_older_than_stale_s_is_unknown() -> None:
    s = BASE.exposing()
    s.handle(ArousalSample(3.0, 70.0))
    assert s.handle(Tick(below(8.0))) == []
    ev = s.handle(Tick(above(8.0)))
    assert transitions(ev) == []
    assert now(s) is S.EXPOSING
    assert s.snapshot().dwell_progress == 0.0


def test_monitoring_holds_for_exactly_signal_timeout_s() -> None:
    s = BASE.exposing()  # signal_timeout_s 10; the last sample was at t=2
    assert s.handle(Tick(12.0)) == []
    assert s.snapshot().monitoring_ok
    ev = s.handle(Tick(above(12.0)))
    assert transitions(ev) == [("exposing", "paused")]
    assert ev[0].kind == "monitoring"
    assert ev[0].values == {"since_s": above(12.0) - 2.0}
    assert s.snapshot().pause_reason is PauseReason.SIGNAL_LOST


def test_continuous_exposure_pauses_at_exactly_max_step_s() -> None:
    s = ExposureSession(protocol(max_step_s=20), t=0.0, client_id="c-1", needs_calibration=False)
    s.handle(ArousalSample(0.0, 50.0))
    s.handle(OfferStep(0.0, T))
    s.handle(Consent(2.0, C))
    hold(s, 50.0, 3.0, 21.0)
    assert s.handle(Tick(below(22.0))) == []
    ev = s.handle(Tick(22.0))
    assert transitions(ev) == [("exposing", "paused")]
    assert ev[0].values["pause_reason"] == "step_too_long"
    assert ev[0].values["segment_s"] == 20.0
    assert ev[0].values["max_step_s"] == 20.0


def test_auto_complete_at_exactly_planned_s() -> None:
    s = BASE.exposing(auto_complete=True)  # planned_s 60 from t=2
    hold(s, 50.0, 3.0, 61.0)
    assert s.handle(Tick(below(62.0))) == []
    ev = s.handle(Tick(62.0))
    assert transitions(ev)[0] == ("exposing", "step_complete")
    assert ev[0].values["exposed_s"] == 60.0


def test_periodic_checkin_at_exactly_every_s() -> None:
    p = replace(BASE.proto(), checkins=CheckinCadence(every_s=7.0))
    s = ExposureSession(p, t=0.0, client_id="c-1", needs_calibration=False)
    s.handle(ArousalSample(0.0, 50.0))
    s.handle(OfferStep(0.0, T))
    s.handle(Consent(2.0, C))
    s.handle(ArousalSample(8.0, 50.0))
    assert s.handle(Tick(below(9.0))) == []
    ev = s.handle(Tick(9.0))
    assert [(x.kind, x.values["prompt"]) for x in ev] == [("checkin_due", "periodic")]


def test_samples_before_a_signal_loss_count_for_nothing_after_it() -> None:
    s = _paused(BASE, "therapist")  # paused at 3, recovery 10 s
    hold(s, 20.0, 4.0, 8.0)
    s.handle(SignalLost(8.5))
    s.handle(SignalRestored(9.0))
    ev = hold(s, 20.0, 9.0, 18.0)  # without the loss it would have recovered at 14
    assert transitions(ev) == []
    assert s.handle(Tick(below(19.0))) == []
    ev = s.handle(ArousalSample(19.0, 20.0))
    assert transitions(ev) == [("paused", "recovered")]
    assert _only(ev, "recovery").values["time_to_recover_s"] == 19.0 - 3.0
