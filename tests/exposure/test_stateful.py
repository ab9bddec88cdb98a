"""Random sequences of arousal samples, ticks, commands from every role and signal losses.

Invariants checked after every step:
- never exposing without a client consent to an offer made after the last pause;
- never exposing while monitoring is lost;
- every pause has a reason;
- the client's pause is honoured from every state (see docs/session.md for what that means where
  nothing is running);
- time never runs backwards in the event log, seq counts up by one, transitions chain and are rows
  of the code's table;
- a refused command changes nothing;
- no consent starts an exposure that its own dwell rule would pause at once: at every consent the
  arousal run at/above upper (independent oracle over the samples sent) is shorter than dwell_s,
  and the events of a Consent never include an arousal pause; an open offer or a recovered hold
  never outlives a run held at/above upper for dwell_s (it is withdrawn into grounding);
- the system offers the next step after a completed step only on a fresh known value below lower;
- a consent while arousal is above upper but short of the dwell is accepted (not blocked on one
  value).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from biofeedback.errors import CommandError
from biofeedback.exposure import (
    AdjustThresholds,
    ArousalSample,
    CalibrationDone,
    CheckinCadence,
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
    SessionEvent,
    SessionInput,
    SessionOptions,
    SessionState,
    SignalLost,
    SignalRestored,
    SudsAnswer,
    Tick,
)
from biofeedback.exposure.rules import ALLOWED, Trigger
from tests.exposure.helpers import now, protocol

S = SessionState
roles = st.sampled_from([Role.CLIENT, Role.CLIENT, Role.THERAPIST, Role.SYSTEM])
arousal_values = st.one_of(
    st.none(),
    st.just(math.nan),
    st.floats(min_value=0, max_value=100),
    st.sampled_from([20.0, 35.0, 55.0, 75.0, 90.0]),
    st.sampled_from([20.0, 35.0, 55.0, 75.0, 90.0]),
)
dts = st.one_of(st.just(0.0), st.floats(min_value=0.0, max_value=4.0), st.just(1.0))


class SessionMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.s: ExposureSession
        self.t = 0.0
        self.log: list[SessionEvent] = []
        self.tracked = S.CALIBRATING
        self.last_pause_seq = 0
        self.acked: set[Role] = (
            set()
        )  # roles whose pause was acknowledged since the last transition
        self.offer_seq: int | None = None
        self.lost = False
        self.history: list[tuple[float, float | None]] = []  # arousal as sent; None = unknown/lost
        self.adjusted = False
        self.inputs: list[SessionInput] = []
        self.make: Any = None

    @initialize(
        needs_calibration=st.booleans(),
        auto_offer=st.booleans(),
        auto_complete=st.booleans(),
        every_s=st.sampled_from([0.0, 7.0]),
        dwell=st.sampled_from([0.0, 3.0, 5.0]),
        recovery=st.sampled_from([0.0, 4.0, 10.0]),
    )
    def start(
        self,
        needs_calibration: bool,
        auto_offer: bool,
        auto_complete: bool,
        every_s: float,
        dwell: float,
        recovery: float,
    ) -> None:
        p = protocol()
        p = replace(
            p,
            options=SessionOptions(auto_offer=auto_offer, auto_complete=auto_complete),
            checkins=CheckinCadence(every_s=every_s),
            thresholds=replace(p.thresholds, dwell_s=dwell, recovery_s=recovery, max_step_s=40.0),
        )
        self.make = lambda: ExposureSession(
            p, t=0.0, client_id="c-1", needs_calibration=needs_calibration
        )
        self.s = self.make()
        self.tracked = self.s.state

    # ---- driving ---------------------------------------------------------------------------------

    def _send(self, inp: SessionInput) -> list[SessionEvent] | None:
        before = self.s.snapshot()
        seq_before = before.seq
        self.inputs.append(inp)
        try:
            events = self.s.handle(inp)
        except CommandError:
            assert self.s.snapshot() == before, "a refused command changed the session"
            assert not isinstance(inp, Pause) or inp.role is not Role.CLIENT, "client pause refused"
            return None
        if isinstance(inp, ArousalSample):
            v = inp.value
            clamped = None
            if v is not None and math.isfinite(v) and not self.lost:
                clamped = min(100.0, max(0.0, v))
            self.history.append((self.s.t, clamped))
        elif isinstance(inp, SignalLost):
            self.history.append((self.s.t, None))
        elif isinstance(inp, AdjustThresholds):
            self.adjusted = True
        self._check_events(inp, events, seq_before)
        self._check_thresholds(events)
        return events

    def _run_start(self, t: float, pred: Any) -> float | None:
        """Start of the newest unbroken run of fresh known samples satisfying `pred` up to t."""
        th = self.s.thresholds
        start: float | None = None
        newer = t
        for ts, v in reversed(self.history):
            if ts > t:
                continue
            if v is None or not pred(v) or newer - ts > th.stale_s:
                break
            start, newer = ts, ts
        return start

    def _check_thresholds(self, events: list[SessionEvent]) -> None:
        """An independent oracle for dwell and recovery (while thresholds are the protocol's)."""
        if self.adjusted:
            return
        th = self.s.thresholds
        t = self.s.t
        for e in events:
            if e.kind != "transition":
                continue
            if e.reason.startswith("arousal_high"):
                start = self._run_start(e.t, lambda v: v >= th.upper)
                assert start is not None, "arousal pause without a run above upper"
                assert e.t - start >= th.dwell_s - 1e-9, "arousal pause before the dwell time"
            if e.reason.startswith("recovery"):
                start = self._run_start(e.t, lambda v: v < th.lower)
                assert start is not None, "recovered without a run below lower"
                paused_at = e.values["paused_at"]
                assert e.t - max(start, paused_at) >= th.recovery_s - 1e-9, "recovered too soon"
        if self.s.state in (S.EXPOSING, S.STEP_OFFERED, S.RESUME_OFFERED, S.RECOVERED):
            assert not self._held_high(t), (
                f"arousal held above upper for the dwell time, yet still {self.s.state.value}"
            )
        for e in events:
            if e.kind != "transition":
                continue
            if e.to_state is S.EXPOSING:
                assert not self._held_high(e.t), (
                    "consent started an exposure that the dwell rule pauses at once"
                )
            if (e.from_state, e.to_state, e.actor) == (S.STEP_COMPLETE, S.STEP_OFFERED, "system"):
                calm = [v for ts, v in self.history if ts <= e.t and e.t - ts <= th.stale_s][-1:]
                assert calm, "next step offered with no fresh arousal value"
                assert calm[0] is not None, "next step offered on unknown arousal"
                assert calm[0] < th.lower, "next step offered while arousal was not below lower"

    def _held_high(self, t: float) -> bool:
        th = self.s.thresholds
        start = self._run_start(t, lambda v: v >= th.upper)
        return start is not None and t - start >= th.dwell_s

    def _check_events(self, inp: SessionInput, events: list[SessionEvent], seq0: int) -> None:
        for e in events:
            assert e.seq == seq0 + 1
            seq0 = e.seq
            if self.log:
                assert e.t >= self.log[-1].t, "time ran backwards in the event log"
            assert e.from_state is self.tracked
            if e.kind == "transition":
                trig = Trigger(e.reason.split(":", 1)[0])
                event(f"{e.from_state.value} --{trig.value}--> {e.to_state.value}")
                assert (e.from_state, trig, e.to_state) in ALLOWED
                if e.to_state is S.PAUSED and e.from_state is not S.PAUSED:
                    assert PauseReason(e.values["pause_reason"])  # every pause has a reason
                if trig in (
                    Trigger.PAUSE,
                    Trigger.AROUSAL_HIGH,
                    Trigger.SIGNAL_LOST,
                    Trigger.STEP_TOO_LONG,
                ):
                    self.last_pause_seq = e.seq
                    self.offer_seq = None
                if e.to_state in (S.STEP_OFFERED, S.RESUME_OFFERED):
                    self.offer_seq = e.seq
                if isinstance(inp, Consent):
                    assert trig is not Trigger.AROUSAL_HIGH, (
                        "an exposure started and was paused on arousal in the same instant"
                    )
                if e.to_state is S.EXPOSING:
                    assert isinstance(inp, Consent), "exposure began without a Consent input"
                    assert inp.role is Role.CLIENT
                    assert e.actor is Role.CLIENT
                    assert self.offer_seq is not None, "consent without an open offer"
                    assert self.last_pause_seq < self.offer_seq < e.seq
                    assert e.values["last_pause_seq"] == self.last_pause_seq
                    assert not self.lost, "exposure began while the strap was lost"
                if e.from_state in (S.STEP_OFFERED, S.RESUME_OFFERED) and e.to_state not in (
                    S.STEP_OFFERED,
                    S.RESUME_OFFERED,
                ):
                    self.offer_seq = None
                self.tracked = e.to_state
                self.acked.clear()
            elif e.kind == "pause_acknowledged":
                self.last_pause_seq = e.seq
                self.acked.add(e.actor)
            else:
                assert e.to_state is e.from_state
            self.log.append(e)
        assert self.tracked is self.s.state

    def _later(self, dt: float) -> float:
        self.t += dt
        return self.t

    # ---- rules: observations -------------------------------------------------------------------

    @rule(dt=dts, value=arousal_values, n=st.integers(min_value=1, max_value=8))
    def arousal(self, dt: float, value: float | None, n: int) -> None:
        for _ in range(n):
            self._send(ArousalSample(self._later(dt or 0.5), value))

    @rule(dt=st.floats(min_value=0.0, max_value=15.0))
    def tick(self, dt: float) -> None:
        self._send(Tick(self._later(dt)))

    @rule(dt=dts)
    def signal_lost(self, dt: float) -> None:
        self.lost = True
        self._send(SignalLost(self._later(dt), "strap out of range"))

    @rule(dt=dts)
    def signal_restored(self, dt: float) -> None:
        self.lost = False
        self._send(SignalRestored(self._later(dt), gap_s=dt))

    @rule(dt=dts, ok=st.booleans())
    def calibration(self, dt: float, ok: bool) -> None:
        self._send(CalibrationDone(self._later(dt), ok, "" if ok else "too noisy"))

    # ---- rules: commands ----------------------------------------------------------------------

    @rule(dt=dts, late=st.sampled_from([0.0, 0.0, 3.0]), nan=st.booleans())
    def client_pause(self, dt: float, late: float, nan: bool) -> None:
        prev = self.s.state
        prev_reason = self.s.snapshot().pause_reason
        repeat = (prev in (S.PAUSED, S.GROUNDING) and prev_reason is PauseReason.CLIENT) or (
            prev in (S.CALIBRATING, S.READY, S.STEP_COMPLETE, S.DEBRIEF, S.ENDED)
            and Role.CLIENT in self.acked
        )
        t = self._later(dt)
        stamp = math.nan if nan else t - late
        events = self._send(Pause(stamp, Role.CLIENT))
        assert events is not None, "the client's pause was refused"
        snap = self.s.snapshot()
        if repeat:
            # Already paused by the client, or already acknowledged: nothing new to tell, so no
            # event (a flood of pauses must not push real events out of the log).
            assert not any(e.kind == "pause_acknowledged" for e in events)
            assert events or snap.state is prev
            assert snap.state not in (S.PAUSED, S.GROUNDING) or snap.pause_reason is (
                PauseReason.CLIENT
            )
            return
        assert events, "the client's pause was not honoured"
        assert snap.state is not S.EXPOSING
        assert snap.consent_needed is None
        assert snap.offer is None
        first = events[0]
        assert first.actor is Role.CLIENT
        assert first.values["pause_reason"] == "client"
        if prev in (S.EXPOSING, S.STEP_OFFERED, S.RESUME_OFFERED, S.RECOVERED):
            # Paused with reason client (an immediate recovery may follow when recovery_s is 0).
            assert first.kind == "transition"
            assert (first.from_state, first.to_state) == (prev, S.PAUSED)
            assert snap.state in (S.PAUSED, S.RECOVERED)
            assert snap.pause_reason is PauseReason.CLIENT
        elif prev in (S.PAUSED, S.GROUNDING):
            assert first.kind == "pause_acknowledged"
            assert snap.pause_reason is PauseReason.CLIENT
        else:  # nothing running: acknowledged, state unchanged
            assert first.kind == "pause_acknowledged"
            assert snap.state is prev

    @precondition(
        lambda self: self.s.state in (S.RECOVERED, S.RESUME_OFFERED, S.STEP_OFFERED, S.EXPOSING)
    )
    @rule(dt=dts)
    def client_pause_while_something_is_pending(self, dt: float) -> None:
        self.client_pause(dt, 0.0, False)

    @rule(dt=dts, role=roles)
    def pause(self, dt: float, role: Role) -> None:
        self._send(Pause(self._later(dt), role))

    @rule(dt=dts, role=roles)
    def consent(self, dt: float, role: Role) -> None:
        self._send(Consent(self._later(dt), role))

    @rule(dt=dts, role=roles)
    def decline(self, dt: float, role: Role) -> None:
        self._send(Decline(self._later(dt), role))

    @rule(dt=dts, role=roles, step=st.one_of(st.none(), st.integers(min_value=-1, max_value=2)))
    def offer(self, dt: float, role: Role, step: int | None) -> None:
        self._send(OfferStep(self._later(dt), role, step))

    @rule(dt=dts, role=roles)
    def complete(self, dt: float, role: Role) -> None:
        self._send(CompleteStep(self._later(dt), role))

    @rule(dt=dts, role=roles)
    def end(self, dt: float, role: Role) -> None:
        self._send(EndSession(self._later(dt), role))

    @rule(
        dt=dts,
        role=roles,
        upper=st.one_of(st.none(), st.floats(min_value=-10, max_value=110)),
        lower=st.one_of(st.none(), st.floats(min_value=-10, max_value=110)),
        dwell=st.one_of(st.none(), st.floats(min_value=-1, max_value=20)),
    )
    def adjust(
        self, dt: float, role: Role, upper: float | None, lower: float | None, dwell: float | None
    ) -> None:
        self._send(AdjustThresholds(self._later(dt), role, upper=upper, lower=lower, dwell_s=dwell))

    @rule(dt=dts, role=roles, value=st.integers(min_value=-5, max_value=105))
    def suds(self, dt: float, role: Role, value: int) -> None:
        self._send(SudsAnswer(self._later(dt), role, value))

    @rule(dt=dts, role=roles, tech=st.sampled_from([*list(GroundingTechnique), "yoga"]))
    def choose(self, dt: float, role: Role, tech: Any) -> None:
        self._send(ChooseGrounding(self._later(dt), role, tech))

    @precondition(lambda self: self.s.state in (S.STEP_OFFERED, S.RESUME_OFFERED))
    @rule(dt=dts)
    def client_consents_now(self, dt: float) -> None:
        # Makes exposure common enough for the invariants to bite.
        if not self.lost:
            self._send(ArousalSample(self._later(dt), 50.0))
        self._send(Consent(self.t, Role.CLIENT))

    @precondition(lambda self: self.s.state in (S.STEP_OFFERED, S.RESUME_OFFERED))
    @rule(value=st.sampled_from([75.0, 90.0]), n=st.integers(min_value=1, max_value=6))
    def client_consents_while_high(self, value: float, n: int) -> None:
        # High values then a consent at the same instant: while the offer is still open the dwell
        # is not reached, so the consent must start exposure (one high value blocks nothing).
        if self.lost:
            return
        for _ in range(n):
            self._send(ArousalSample(self._later(1.0), value))
        if self.s.state not in (S.STEP_OFFERED, S.RESUME_OFFERED):
            assert self.adjusted or self._held_high(self.t), "offer withdrawn without a dwell"
            return
        events = self._send(Consent(self.t, Role.CLIENT))
        assert events is not None, "a consent short of the dwell was refused"
        assert now(self.s) is S.EXPOSING

    @precondition(
        lambda self: (
            self.s.state in (S.STEP_OFFERED, S.RESUME_OFFERED, S.RECOVERED, S.STEP_COMPLETE)
        )
    )
    @rule(
        value=st.sampled_from([20.0, 55.0, 80.0, 95.0, None]),
        n=st.integers(min_value=1, max_value=8),
    )
    def arousal_between_steps(self, value: float | None, n: int) -> None:
        for _ in range(n):
            self._send(ArousalSample(self._later(1.0), value))

    @precondition(
        lambda self: (
            self.s.state
            in (S.READY, S.PAUSED, S.GROUNDING, S.RECOVERED, S.STEP_COMPLETE, S.CALIBRATING)
        )
    )
    @rule(dt=dts)
    def therapist_offers_now(self, dt: float) -> None:
        self._send(OfferStep(self._later(dt), Role.THERAPIST))

    @precondition(lambda self: self.s.state is S.EXPOSING)
    @rule(value=st.sampled_from([30.0, 60.0, 80.0, 95.0]), n=st.integers(min_value=1, max_value=12))
    def exposure_runs(self, value: float, n: int) -> None:
        for _ in range(n):
            self._send(ArousalSample(self._later(1.0), value))

    @precondition(lambda self: self.s.state in (S.PAUSED, S.GROUNDING))
    @rule(value=st.sampled_from([10.0, 30.0, 50.0]), n=st.integers(min_value=1, max_value=15))
    def calm_down(self, value: float, n: int) -> None:
        for _ in range(n):
            self._send(ArousalSample(self._later(1.0), value))

    def teardown(self) -> None:
        # Determinism (what replay relies on): the same inputs give the same events and state.
        if self.make is None:
            return
        again = self.make()
        log: list[SessionEvent] = []
        for inp in self.inputs:
            try:
                log += again.handle(inp)
            except CommandError:
                continue
        assert _same(log, self.log)
        assert _same(again.snapshot(), self.s.snapshot())

    # ---- invariants ----------------------------------------------------------------------------

    @invariant()
    def session_invariants(self) -> None:
        snap = self.s.snapshot()
        if snap.state is S.EXPOSING:  # never exposing while monitoring is lost
            assert snap.monitoring_ok
            assert snap.device_connected
            assert snap.guidance is None
        if snap.state in (S.PAUSED, S.GROUNDING):  # every pause has a reason
            assert snap.pause_reason is not None
        if snap.state is S.GROUNDING:
            assert snap.guidance is not None
        assert (snap.consent_needed is not None) == (
            snap.state in (S.STEP_OFFERED, S.RESUME_OFFERED)
        )
        for p in snap.progress:
            assert p.exposed_s >= 0
            assert p.pauses == len(p.pause_reasons)
            assert len(p.recovery_times_s) <= p.pauses
            assert all(r >= 0 for r in p.recovery_times_s)
            if p.peak_arousal is not None:
                assert 0 <= p.peak_arousal <= 100


def _same(a: Any, b: Any) -> bool:
    """Equality that treats NaN as equal to NaN (a late NaN stamp is kept in the input)."""
    return repr(a) == repr(b)


SessionMachine.TestCase.settings = settings(
    max_examples=120,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestSessionMachine = SessionMachine.TestCase
