"""Random sequences of arousal samples, ticks, signal losses and commands from every role, checked
after every input against an independent model of docs/session.md.

The model (this file, not the session's code) keeps every arousal value sent, with the thresholds
in force when it was sent, and the therapist's adjustments; from that alone it knows, at any time,
whether arousal has been held at or above `upper` for `dwell_s`, below `lower` for `recovery_s`
since the pause, whether monitoring is ok and whether the client is calm. It keeps working after
an `AdjustThresholds` (an adjustment keeps a run only when the newest value still qualifies under
the new thresholds). Checked after every input:
- a pause on arousal, a withdrawal, a recovery, a signal-loss pause, a step-length pause and the
  system's offer of the next step happen only when the model says so, and never late: no state
  outlives the condition that ends it (exposing/offers/recovered held high, paused held low,
  exposing without monitoring or past max_step_s, a waiting next step with a calm client);
- a consent is accepted exactly when an offer is open, monitoring is ok and the dwell is not
  reached; an adjustment is accepted exactly when the new thresholds are consistent; a command
  from a role that may not send it is refused; a refused command changes nothing;
- never exposing without a client consent to an offer made after the last pause; every pause has
  a reason; the client's pause is honoured from every state (docs/session.md says what that means
  where nothing is running, and when a repeated pause adds no event);
- time never runs backwards in the event log, seq counts up by one, transitions chain and are rows
  of the code's table; the same inputs give the same events (replay relies on it).

Arousal values are drawn at the edges of the thresholds in force (exactly upper, exactly lower, one
float step either side), and composite actions drive the chain exposing -> arousal pause ->
grounding -> recovery -> offer -> consent at exactly dwell_s and recovery_s, so every run covers
it. Every input comes from one rule whose argument is the action (no preconditions, no filters:
`--hypothesis-show-statistics` shows no retried draws).

Profiles (docs/testing.md): `ci` when CI=true (derandomised), `dev` otherwise, `long` by hand,
`mutation` for tools/mutate.sh; BIOFEEDBACK_HYPOTHESIS_PROFILE picks one.
"""

from __future__ import annotations

import copy
import math
import os
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

from hypothesis import HealthCheck, Phase, event, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from biofeedback.errors import CommandError
from biofeedback.exposure import (
    TRANSITIONS,
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
    ReadyToContinue,
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
C, T, SYS = Role.CLIENT, Role.THERAPIST, Role.SYSTEM
INF = math.inf

# ---- profiles ---------------------------------------------------------------------------------

PROFILE_ENV = "BIOFEEDBACK_HYPOTHESIS_PROFILE"
_BASE: dict[str, Any] = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow],
    "stateful_step_count": 40,
}
settings.register_profile(
    "exposure-ci", max_examples=200, derandomize=True, database=None, print_blob=True, **_BASE
)
settings.register_profile("exposure-dev", max_examples=150, **_BASE)
settings.register_profile(
    "exposure-long",
    max_examples=5000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    stateful_step_count=100,
)
# Mutation testing: the CI examples, but a killed mutant needs one failure, not the smallest one.
settings.register_profile(
    "exposure-mutation",
    settings.get_profile("exposure-ci"),
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
)


def profile_name() -> str:
    """`BIOFEEDBACK_HYPOTHESIS_PROFILE`, else `ci` under CI=true, else `dev`."""
    name = os.environ.get(PROFILE_ENV, "").strip()
    if name:
        return name
    ci = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}
    return "ci" if ci else "dev"


def profile() -> settings:
    name = profile_name()
    try:
        return settings.get_profile(f"exposure-{name}")
    except InvalidArgument:
        raise AssertionError(
            f"{PROFILE_ENV}={name!r}: no such profile (ci, dev, long or mutation)"
        ) from None


# ---- the model ----------------------------------------------------------------------------------

MAY_SEND: dict[type, frozenset[Role]] = {  # docs/session.md "Roles", written out independently
    Pause: frozenset({C, T}),
    Consent: frozenset({C}),
    Decline: frozenset({C}),
    SudsAnswer: frozenset({C}),
    ChooseGrounding: frozenset({C}),
    OfferStep: frozenset({T}),
    CompleteStep: frozenset({T}),
    EndSession: frozenset({T}),
    AdjustThresholds: frozenset({T}),
    ReadyToContinue: frozenset({C}),
}
# docs/session.md "Client-led resume": the client's "I'm ready to continue" is taken while a step
# is paused, and never changes anything by itself (checked against a twin given a Tick instead).
READY_STATES = (S.PAUSED, S.GROUNDING, S.RECOVERED)
PAUSE_TRIGGERS = frozenset(
    {Trigger.PAUSE, Trigger.AROUSAL_HIGH, Trigger.SIGNAL_LOST, Trigger.STEP_TOO_LONG}
)
HELD_HIGH_ENDS = (S.EXPOSING, S.STEP_OFFERED, S.RESUME_OFFERED, S.RECOVERED)
OFFERS = (S.STEP_OFFERED, S.RESUME_OFFERED)
STALE_S = 5.0  # the protocol's defaults (tests/exposure/helpers.py sets neither)
SIGNAL_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class Seen:
    """One arousal value as the session must judge it.

    `t`: when it is judged (the sample's time, or an adjustment's); `value`: clamped known value,
    None for unknown, a sample during a loss, or the loss itself; `sample_t`: when it was measured
    (freshness counts from there); `upper`/`lower`: the thresholds it is judged against.
    """

    t: float
    value: float | None
    sample_t: float
    upper: float
    lower: float


@dataclass(frozen=True, slots=True)
class Th:
    upper: float
    lower: float
    dwell_s: float
    recovery_s: float
    max_step_s: float


def below(x: float) -> float:
    return math.nextafter(x, -INF)


def above(x: float) -> float:
    return math.nextafter(x, INF)


# ---- actions (the one rule's argument) --------------------------------------------------------

LEVELS = ("upper", "below_upper", "above_upper", "lower", "below_lower", "above_lower", "mid")
dts = st.sampled_from([0.0, 0.25, 0.5, 1.0, 1.0, 2.0, 3.5])
waits = st.sampled_from([0.0, 0.5, 2.5, 4.75, 5.0, 5.25, 9.75, 10.0, 10.25, 20.0])
levels = st.one_of(
    st.sampled_from(LEVELS),
    st.sampled_from(LEVELS),
    st.floats(min_value=-20.0, max_value=120.0),
    st.none(),
    st.just(math.nan),
)
roles = st.sampled_from([C, C, T, SYS])


@dataclass(frozen=True)
class Sample:
    dt: float
    level: str | float | None
    n: int
    confidence: float


@dataclass(frozen=True)
class Wait:
    dt: float


@dataclass(frozen=True)
class Signal:
    dt: float
    lost: bool


@dataclass(frozen=True)
class Calibrate:
    dt: float
    ok: bool


@dataclass(frozen=True)
class ClientPause:
    dt: float
    late: float
    nan: bool


@dataclass(frozen=True)
class Command:
    """A command; `who`: a role that may send it ("right"), one that may not, or the system."""

    dt: float
    kind: str
    who: str
    arg: Any = None


@dataclass(frozen=True)
class Goto:
    """Drive to `state` by the documented path, then send `then` (a command) from there."""

    state: SessionState
    then: Command | None


@dataclass(frozen=True)
class LongExposure:
    """Exposure at a neutral arousal until continuous exposure reaches exactly max_step_s."""

    extra: float


@dataclass(frozen=True)
class Adjust:
    dt: float
    role: Role
    upper: float | None
    lower: float | None
    dwell_s: float | None
    recovery_s: float | None
    max_step_s: float | None


@dataclass(frozen=True)
class AdjustToNewest:
    """The therapist sets upper or lower to the newest value, or one float step either side."""

    which: str
    nudge: str


@dataclass(frozen=True)
class Hold:
    """Arousal at an edge of upper (`high`) or lower, one sample a second, for exactly dwell_s
    (or recovery_s) plus `extra`, with a tick one float step before the limit."""

    high: bool
    edge: str
    extra: float


@dataclass(frozen=True)
class ExposureCycle:
    """exposing -> arousal pause -> grounding -> recovered -> offer -> consent, at the edges."""

    above_upper: bool
    at_lower_first: int


@dataclass(frozen=True)
class ConsentAtDwell:
    """An open offer, arousal at upper, and a consent at the dwell instant or one step before."""

    early: bool


@dataclass(frozen=True)
class ReadyAfterPause:
    """exposing -> a pause (the client's, the therapist's, or the client's grounding) -> "I'm
    ready to continue" -> recovery held -> ready again: the request must have resumed, offered
    or armed nothing."""

    how: str


adjust_values = {
    "upper": st.one_of(st.none(), st.sampled_from([55.0, 62.5, 70.0, 80.0, 100.0, 150.0])),
    "lower": st.one_of(st.none(), st.sampled_from([0.0, 20.0, 37.25, 40.0, 45.5, 60.0, -1.0])),
    "dwell_s": st.one_of(st.none(), st.sampled_from([0.0, 1.0, 2.5, 5.0, -1.0])),
    "recovery_s": st.one_of(st.none(), st.sampled_from([0.0, 1.5, 4.0, 10.0, math.nan])),
    "max_step_s": st.one_of(st.none(), st.sampled_from([15.0, 40.0, 0.0])),
}
# Ending is rarer: debrief and ended leave little to explore for the rest of a run.
COMMAND_KINDS = ("pause", "consent", "decline", "offer", "complete", "suds", "choose", "ready")
commands = st.builds(
    Command,
    dts,
    st.sampled_from([*COMMAND_KINDS, *COMMAND_KINDS, "end"]),
    st.sampled_from(["right", "right", "right", "wrong", "system"]),
    st.one_of(st.none(), st.integers(-1, 2), st.sampled_from(list(GroundingTechnique))),
)
actions = st.one_of(
    st.builds(Sample, dts, levels, st.integers(1, 8), st.sampled_from([1.0, 1.0, 1.0, 0.0])),
    st.builds(Wait, waits),
    st.builds(Signal, dts, st.booleans()),
    st.builds(Calibrate, dts, st.booleans()),
    st.builds(ClientPause, dts, st.sampled_from([0.0, 0.0, 3.0]), st.booleans()),
    commands,
    st.builds(Adjust, dts, st.sampled_from([T, T, T, C]), **adjust_values),
    st.builds(
        AdjustToNewest,
        st.sampled_from(["upper", "lower"]),
        st.sampled_from(["exact", "below", "above"]),
    ),
    st.builds(
        Hold,
        st.booleans(),
        st.sampled_from(["exact", "exact", "below", "above"]),
        st.sampled_from([0.0, 1.0, 3.0]),
    ),
    st.builds(ExposureCycle, st.booleans(), st.integers(0, 2)),
    st.builds(ExposureCycle, st.booleans(), st.integers(0, 2)),
    st.builds(ConsentAtDwell, st.booleans()),
    st.builds(
        Goto,
        st.sampled_from(
            [
                S.STEP_OFFERED,
                S.RESUME_OFFERED,
                S.EXPOSING,
                S.PAUSED,
                S.GROUNDING,
                S.RECOVERED,
                S.STEP_COMPLETE,
                S.STEP_COMPLETE,
            ]
        ),
        st.one_of(st.none(), commands),
    ),
    st.builds(
        Goto,
        st.sampled_from([S.STEP_OFFERED, S.RESUME_OFFERED, S.PAUSED, S.GROUNDING, S.RECOVERED]),
        commands,
    ),
    st.builds(LongExposure, st.sampled_from([0.0, 2.0])),
    st.builds(ReadyAfterPause, st.sampled_from(["client", "therapist", "grounding"])),
)

# Transitions seen in one test run: (from, trigger, to).
COVERED: Counter[tuple[str, str, str]] = Counter()


class SessionMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.s: ExposureSession
        self.make: Any = None
        self.inputs: list[SessionInput] = []
        self.log: list[SessionEvent] = []
        # the model
        self.now = 0.0
        self.th = Th(70.0, 40.0, 5.0, 10.0, 40.0)
        self.auto_offer = False
        self.history: list[Seen] = []
        self.lost = False
        self.last_sample_t: float | None = None
        self.tracked = S.CALIBRATING
        self.pause_t: float | None = None
        self.consent_t: float | None = None
        self.next_offer_waiting = False
        self.last_pause_seq = 0
        self.offer_seq: int | None = None
        # roles whose pause was acknowledged since the last transition
        self.acked: set[Role] = set()
        self.checked = True  # every input so far went through all its checks

    @initialize(
        needs_calibration=st.booleans(),
        auto_offer=st.booleans(),
        auto_complete=st.booleans(),
        every_s=st.sampled_from([0.0, 7.0]),
        upper=st.sampled_from([70.0, 62.5]),
        lower=st.sampled_from([40.0, 37.25]),
        dwell=st.sampled_from([0.0, 2.5, 5.0]),
        recovery=st.sampled_from([0.0, 1.5, 4.0]),
    )
    def start(
        self,
        needs_calibration: bool,
        auto_offer: bool,
        auto_complete: bool,
        every_s: float,
        upper: float,
        lower: float,
        dwell: float,
        recovery: float,
    ) -> None:
        p = protocol()
        self.th = Th(upper, lower, dwell, recovery, 40.0)
        p = replace(
            p,
            options=SessionOptions(auto_offer=auto_offer, auto_complete=auto_complete),
            checkins=CheckinCadence(every_s=every_s),
            thresholds=replace(
                p.thresholds,
                upper=upper,
                lower=lower,
                dwell_s=dwell,
                recovery_s=recovery,
                max_step_s=40.0,
            ),
        )
        assert (p.thresholds.stale_s, p.thresholds.signal_timeout_s) == (STALE_S, SIGNAL_TIMEOUT_S)
        self.auto_offer = auto_offer
        self.make = lambda: ExposureSession(
            p, t=0.0, client_id="c-1", needs_calibration=needs_calibration
        )
        self.s = self.make()
        self.tracked = self.s.state

    # ---- the model's judgements ----------------------------------------------------------------

    def _run_start(self, t: float, high: bool) -> float | None:
        """Start of the unbroken run of fresh known values at/above upper (below lower) up to t."""
        start: float | None = None
        newer = t
        for seen in reversed(self.history):
            v = seen.value
            if v is None or newer - seen.sample_t > STALE_S:
                break
            if not (v >= seen.upper if high else v < seen.lower):
                break
            start, newer = seen.t, seen.sample_t
        return start

    def _held_high(self, t: float) -> bool:
        start = self._run_start(t, high=True)
        return start is not None and t - start >= self.th.dwell_s

    def _monitoring_ok(self, t: float) -> bool:
        return (
            not self.lost
            and self.last_sample_t is not None
            and t - self.last_sample_t <= SIGNAL_TIMEOUT_S
        )

    def _recovery_due(self, t: float) -> bool:
        start = self._run_start(t, high=False)
        if start is None or self.pause_t is None or not self._monitoring_ok(t):
            return False
        return t - max(start, self.pause_t) >= self.th.recovery_s

    def _newest(self, t: float) -> Seen | None:
        """The newest value when it is known and fresh at t (a later unknown one supersedes it)."""
        if not self.history:
            return None
        seen = self.history[-1]
        if seen.value is None or t - seen.sample_t > STALE_S:
            return None
        return seen

    def _calm(self, t: float) -> bool:
        seen = self._newest(t)
        if seen is None or seen.value is None or not self._monitoring_ok(t):
            return False
        return seen.value < self.th.lower

    def _adjusted(self, a: AdjustThresholds) -> Th | None:
        """The thresholds after `a`, or None when the session must refuse it."""
        names = ("upper", "lower", "dwell_s", "recovery_s", "max_step_s")
        changes = {n: getattr(a, n) for n in names if getattr(a, n) is not None}
        if not changes:
            return None
        new = replace(self.th, **changes)
        ok = (
            all(math.isfinite(getattr(new, n)) for n in names)
            and 0 <= new.lower < new.upper <= 100
            and 0 <= new.dwell_s <= 3600
            and 0 <= new.recovery_s <= 3600
            and 0 < new.max_step_s <= 86400
        )
        return new if ok else None

    def _predict(self, inp: SessionInput, t: float) -> bool | None:
        """Whether the session must accept `inp` at t (None: the model does not say)."""
        allowed = MAY_SEND.get(type(inp))
        if allowed is None:
            return None
        if inp.role not in allowed:  # type: ignore[union-attr]
            return False
        if isinstance(inp, Pause):
            return True
        if self.tracked is S.ENDED:
            return False
        if isinstance(inp, Consent):
            return self.tracked in OFFERS and self._monitoring_ok(t) and not self._held_high(t)
        if isinstance(inp, AdjustThresholds):
            return self._adjusted(inp) is not None
        if isinstance(inp, ReadyToContinue):
            return self.tracked in READY_STATES
        return None

    # ---- driving ---------------------------------------------------------------------------------

    def _later(self, dt: float) -> float:
        return self.now + dt

    def _send(self, inp: SessionInput) -> list[SessionEvent] | None:
        before = self.s.snapshot()
        stamp = inp.t
        t = max(self.now, stamp) if math.isfinite(stamp) else self.now
        predicted = self._predict(inp, t)
        state_before = self.tracked
        self.checked = False
        self.inputs.append(inp)
        try:
            events = self.s.handle(inp)
        except CommandError as exc:
            assert self.s.snapshot() == before, "a refused command changed the session"
            assert not (isinstance(inp, Pause) and inp.role is C), "the client's pause refused"
            assert predicted is not True, f"{inp} was refused ({exc}); the docs accept it"  # noqa: PT017
            return None
        assert predicted is not False, f"{inp} was accepted; the docs refuse it"
        self.now = t
        assert self.s.t == t
        self._observe(inp, t)
        if isinstance(inp, Pause) and state_before is S.STEP_COMPLETE:
            self.next_offer_waiting = False
        self._check_events(inp, events, before.seq)
        self._check_model(events)
        self.checked = True
        return events

    def _observe(self, inp: SessionInput, t: float) -> None:
        th = self.th
        if isinstance(inp, ArousalSample):
            v = inp.value
            known = v is not None and math.isfinite(v) and inp.confidence > 0 and not self.lost
            value = min(100.0, max(0.0, v)) if known and v is not None else None
            self.history.append(Seen(t, value, t, th.upper, th.lower))
            if not self.lost:
                self.last_sample_t = t
        elif isinstance(inp, SignalLost):
            self.lost = True
            self.last_sample_t = None
            self.history.append(Seen(t, None, t, th.upper, th.lower))
        elif isinstance(inp, SignalRestored):
            self.lost = False
        elif isinstance(inp, AdjustThresholds):
            new = self._adjusted(inp)
            assert new is not None
            self.th = new
            seen = self._newest(t)
            if seen is not None:  # the newest value is judged again, against the new thresholds
                self.history.append(Seen(t, seen.value, seen.sample_t, new.upper, new.lower))

    def _check_events(self, inp: SessionInput, events: list[SessionEvent], seq0: int) -> None:
        for e in events:
            assert e.seq == seq0 + 1
            seq0 = e.seq
            if self.log:
                assert e.t >= self.log[-1].t, "time ran backwards in the event log"
            assert e.t == self.now
            assert e.from_state is self.tracked
            if e.kind == "transition":
                trig = Trigger(e.reason.split(":", 1)[0])
                row = (e.from_state.value, trig.value, e.to_state.value)
                COVERED[row] += 1
                event(" --".join(row[:2]) + "--> " + row[2])
                assert (e.from_state, trig, e.to_state) in ALLOWED
                if e.to_state is S.PAUSED and e.from_state is not S.PAUSED:
                    assert PauseReason(e.values["pause_reason"])  # every pause has a reason
                if trig in PAUSE_TRIGGERS:
                    self.last_pause_seq = e.seq
                    self.offer_seq = None
                    self.pause_t = e.t
                if e.to_state in OFFERS:
                    self.offer_seq = e.seq
                if isinstance(inp, Consent):
                    assert trig is not Trigger.AROUSAL_HIGH, (
                        "an exposure started and was paused on arousal in the same instant"
                    )
                if e.to_state is S.EXPOSING:
                    assert isinstance(inp, Consent), "exposure began without a Consent input"
                    assert inp.role is C
                    assert e.actor is C
                    assert self.offer_seq is not None, "consent without an open offer"
                    assert self.last_pause_seq < self.offer_seq < e.seq
                    assert e.values["last_pause_seq"] == self.last_pause_seq
                    assert e.values["offer_seq"] == self.offer_seq
                    assert not self.lost, "exposure began while the strap was lost"
                    self.consent_t = e.t
                if e.from_state in OFFERS and e.to_state not in OFFERS:
                    self.offer_seq = None
                if e.to_state is S.STEP_COMPLETE:
                    self.next_offer_waiting = self.auto_offer
                elif e.from_state is S.STEP_COMPLETE:
                    self.next_offer_waiting = False
                self.tracked = e.to_state
                self.acked.clear()
            elif e.kind == "pause_acknowledged":
                COVERED[(e.from_state.value, "pause", e.from_state.value)] += 1
                self.last_pause_seq = e.seq
                self.acked.add(e.actor)
            else:
                assert e.to_state is e.from_state
            self.log.append(e)
        assert self.tracked is self.s.state

    def _check_model(self, events: list[SessionEvent]) -> None:
        """Every timed transition happened when, and only when, the model says it is due."""
        t = self.now
        th = self.th
        for e in events:
            if e.kind != "transition":
                continue
            trig = Trigger(e.reason.split(":", 1)[0])
            if trig is Trigger.AROUSAL_HIGH:
                assert self._held_high(e.t), "arousal pause without upper held for dwell_s"
                assert e.values["upper"] == th.upper
                assert e.values["dwell_s"] == th.dwell_s
                assert e.values["above_since"] == self._run_start(e.t, high=True)
            elif trig is Trigger.RECOVERY:
                assert self._recovery_due(e.t), "recovered without lower held for recovery_s"
                assert e.values["lower"] == th.lower
            elif trig is Trigger.SIGNAL_LOST:
                assert not self._monitoring_ok(e.t), "signal-loss pause with monitoring ok"
            elif trig is Trigger.STEP_TOO_LONG:
                assert self.consent_t is not None
                assert e.t - self.consent_t >= th.max_step_s, "step-length pause too early"
            elif (e.from_state, e.to_state, e.actor) == (S.STEP_COMPLETE, S.STEP_OFFERED, SYS):
                assert self._calm(e.t), "next step offered while the client was not calm"
            if e.to_state is S.EXPOSING:
                assert not self._held_high(e.t), "consent started an exposure its dwell pauses"
                assert self._monitoring_ok(e.t)
        st_ = self.tracked
        if st_ in HELD_HIGH_ENDS:
            assert not self._held_high(t), f"arousal held at/above upper, yet still {st_.value}"
        if st_ is S.EXPOSING:
            assert self._monitoring_ok(t), "exposing while monitoring is lost"
            assert self.consent_t is not None
            assert t - self.consent_t < th.max_step_s, "exposing past max_step_s"
        if st_ in (S.PAUSED, S.GROUNDING):
            assert not self._recovery_due(t), f"arousal held below lower, yet still {st_.value}"
        if st_ is S.STEP_COMPLETE and self.next_offer_waiting:
            assert not self._calm(t), "the client is calm, yet the next step is not offered"

    # ---- composite actions ---------------------------------------------------------------------

    def _value(self, level: str | float | None) -> float | None:
        th = self.th
        if not isinstance(level, str):
            return level
        return {
            "upper": th.upper,
            "below_upper": below(th.upper),
            "above_upper": above(th.upper),
            "lower": th.lower,
            "below_lower": below(th.lower),
            "above_lower": above(th.lower),
            "mid": self._neutral(),
        }[level]

    def _neutral(self) -> float:
        """A value neither at/above upper nor below lower (lower itself when none is between)."""
        mid = (self.th.upper + self.th.lower) / 2
        return mid if self.th.lower <= mid < self.th.upper else self.th.lower

    def _sample(self, t: float, value: float | None) -> list[SessionEvent] | None:
        return self._send(ArousalSample(t, value))

    def _fresh_mid(self) -> None:
        """Signal back and a fresh value between lower and upper (ends any run)."""
        if self.lost:
            self._send(SignalRestored(self._later(0.5), gap_s=0.5))
        self._sample(self._later(0.5), self._value("mid"))

    def _to_offer(self) -> bool:
        """Drive to an open offer by the shortest documented path; False when none is possible."""
        for _ in range(6):
            st_ = self.tracked
            if st_ in OFFERS:
                return True
            if st_ in (S.DEBRIEF, S.ENDED):
                return False
            self._fresh_mid()
            st_ = self.tracked
            if st_ is S.CALIBRATING:
                self._send(CalibrationDone(self._later(0.5), True))
            elif st_ is S.EXPOSING:
                self._send(Pause(self._later(0.5), T))
            elif st_ in (S.READY, S.STEP_COMPLETE):
                pending = [p.index for p in self.s.progress() if not p.completed]
                self._send(OfferStep(self._later(0.5), T, pending[0] if pending else 0))
            elif st_ in (S.PAUSED, S.GROUNDING, S.RECOVERED):
                self._send(OfferStep(self._later(0.5), T))
        raise AssertionError(f"no offer after six documented steps (state {self.tracked})")

    def _to_exposing(self) -> bool:
        if not self._to_offer():
            return False
        self._fresh_mid()
        if self.tracked not in OFFERS:  # withdrawn or re-offered by the system on the way
            return self._to_offer() and self._consent()
        return self._consent()

    def _consent(self) -> bool:
        """Consent to the open offer; False when the step completes at once (auto_complete)."""
        state = self.tracked
        events = self._send(Consent(self._later(0.5), C))
        assert events is not None, "a consent with monitoring ok and arousal mid was refused"
        assert _transitions(events)[0] == (state, S.EXPOSING)
        return now(self.s) is S.EXPOSING

    def _series(self, t0: float, limit: float, extra: float) -> list[float]:
        """One time a second from t0 up to t0 + limit + extra, and exactly t0 + limit."""
        times = [t0 + k for k in range(int(limit + extra) + 1)]
        if t0 + limit not in times:
            times.append(t0 + limit)
        return sorted(times)

    def _hold(self, value: float | None, t0: float, limit: float, extra: float) -> None:
        """Samples of `value` from t0 for `limit` (+ extra) s, a tick one float step before."""
        for t in self._series(t0, limit, extra):
            if t == t0 + limit and limit > 0:
                self._send(Tick(below(t)))
            self._sample(t, value)

    def do_hold(self, a: Hold) -> None:
        th = self.th
        base = th.upper if a.high else th.lower
        value = {"exact": base, "below": below(base), "above": above(base)}[a.edge]
        limit = th.dwell_s if a.high else th.recovery_s
        self._hold(value, math.floor(self.now) + 1.0, limit, a.extra)

    def do_cycle(self, a: ExposureCycle) -> None:
        """exposing -> paused (arousal) -> grounding -> recovered -> resume offered -> exposing."""
        if not self._to_exposing():
            return
        th = self.th
        # 1. Arousal at exactly upper (or one step above) from t0: paused at exactly t0 + dwell_s.
        t0 = math.floor(self.now) + 1.0
        high = above(th.upper) if a.above_upper else th.upper
        snap = self.s.snapshot()
        planned = self.s.protocol.steps[snap.step_index or 0].planned_s
        clean = snap.segment_s + (t0 - self.now) + th.dwell_s < th.max_step_s and (
            not self.s.protocol.options.auto_complete
            or snap.exposed_s + (t0 - self.now) + th.dwell_s < planned
        )
        for t in self._series(t0, th.dwell_s, 0.0):
            if clean:
                assert now(self.s) is S.EXPOSING, "paused before the dwell time"
                if t == t0 + th.dwell_s and th.dwell_s > 0:
                    assert _transitions(self._send(Tick(below(t)))) == []
            events = self._sample(t, high)
        if not clean:
            return
        assert events is not None
        pause = [e for e in events if e.reason.startswith("arousal_high:")]
        assert [(e.from_state, e.to_state, e.t) for e in pause] == [
            (S.EXPOSING, S.PAUSED, t0 + th.dwell_s)
        ]
        assert now(self.s) is S.GROUNDING
        assert self.s.snapshot().pause_reason is PauseReason.AROUSAL
        # 2. Exactly lower never counts; one step below it, for exactly recovery_s, recovers.
        tp = t0 + th.dwell_s
        for k in range(a.at_lower_first):
            self._sample(tp + 0.5 + k, th.lower)
            assert now(self.s) is S.GROUNDING, "recovered at exactly lower"
        t1 = math.floor(self.now) + 1.0
        low = below(th.lower)
        if th.lower <= 0:  # nothing is below 0 once clamped: no recovery, and that is right
            self._hold(low, t1, th.recovery_s, 1.0)
            assert now(self.s) is S.GROUNDING
            return
        for t in self._series(t1, th.recovery_s, 0.0):
            assert now(self.s) is S.GROUNDING, "recovered before recovery_s"
            if t == t1 + th.recovery_s and th.recovery_s > 0:
                assert _transitions(self._send(Tick(below(t)))) == []
            events = self._sample(t, low)
        assert events is not None
        rec = [e for e in events if e.reason.startswith("recovery:")]
        assert [(e.from_state, e.to_state, e.t) for e in rec] == [
            (S.GROUNDING, S.RECOVERED, t1 + th.recovery_s)
        ]
        # 3. An offer (the system's own after its arousal pause, with auto_offer), 4. consent.
        if self.auto_offer:
            assert now(self.s) is S.RESUME_OFFERED
        else:
            assert now(self.s) is S.RECOVERED
            self._send(OfferStep(self._later(0.5), T))
            assert now(self.s) is S.RESUME_OFFERED
        events = self._send(Consent(self._later(0.5), C))
        assert events is not None
        assert [(e.from_state, e.to_state) for e in events if e.kind == "transition"] == [
            (S.RESUME_OFFERED, S.EXPOSING)
        ]

    def do_consent_at_dwell(self, a: ConsentAtDwell) -> None:
        if not self._to_offer():
            return
        self._fresh_mid()  # a run at/above upper starts below
        if self.tracked not in OFFERS and not self._to_offer():
            return
        th = self.th
        if th.dwell_s <= 0:  # the first value at upper withdraws the offer at once
            self._sample(self._later(1.0), th.upper)
            assert now(self.s) is S.GROUNDING
            return
        t0 = math.floor(self.now) + 1.0
        for t in self._series(t0, th.dwell_s, 0.0)[:-1]:
            self._sample(t, th.upper)
        state = now(self.s)
        assert state in OFFERS, "offer withdrawn before the dwell time"
        t = below(t0 + th.dwell_s) if a.early else t0 + th.dwell_s
        events = self._send(Consent(t, C))
        if a.early:
            assert events is not None, "a consent one float step before the dwell was refused"
            assert _transitions(events)[0] == (state, S.EXPOSING)
            if now(self.s) is not S.EXPOSING:  # auto_complete: the planned time was reached
                return
        else:
            assert events is None, "a consent at exactly the dwell started exposure"
            assert now(self.s) is state
        src = S.EXPOSING if a.early else state
        events = self._send(Tick(t0 + th.dwell_s))
        assert _transitions(events) == [(src, S.PAUSED), (S.PAUSED, S.GROUNDING)]

    def do_client_pause(self, a: ClientPause) -> None:
        prev = self.tracked
        prev_reason = self.s.snapshot().pause_reason
        ready = self.s.snapshot().client_ready  # a pause withdraws it: that is news
        repeat = (
            prev in (S.PAUSED, S.GROUNDING) and prev_reason is PauseReason.CLIENT and not ready
        ) or (
            prev in (S.CALIBRATING, S.READY, S.STEP_COMPLETE, S.DEBRIEF, S.ENDED)
            and C in self.acked
        )
        t = self._later(a.dt)
        events = self._send(Pause(math.nan if a.nan else t - a.late, C))
        assert events is not None, "the client's pause was refused"
        snap = self.s.snapshot()
        if repeat:
            # Already paused by the client, or already acknowledged: nothing new to tell, so no
            # event (a flood of pauses must not push real events out of the log).
            assert not any(e.kind == "pause_acknowledged" for e in events)
            assert events or snap.state is prev
            assert snap.state not in (S.PAUSED, S.GROUNDING) or (
                snap.pause_reason is PauseReason.CLIENT
            )
            return
        assert events, "the client's pause was not honoured"
        assert snap.state is not S.EXPOSING
        assert snap.consent_needed is None
        assert snap.offer is None
        first = events[0]
        assert first.actor is C
        assert first.values["pause_reason"] == "client"
        if prev in HELD_HIGH_ENDS:
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

    def do_command(self, a: Command) -> None:
        t = self._later(a.dt)
        arg = a.arg
        client_sends = a.kind in ("consent", "decline", "suds", "choose", "ready")
        if a.kind == "pause":  # both may: the "wrong" one is the system
            role = {"right": C, "wrong": T}.get(a.who, SYS)
        else:
            role = {"right": C if client_sends else T, "wrong": T if client_sends else C}.get(
                a.who, SYS
            )
        inp: SessionInput
        if a.kind == "pause":
            inp = Pause(t, role)
        elif a.kind == "consent":
            inp = Consent(t, role)
        elif a.kind == "decline":
            inp = Decline(t, role)
        elif a.kind == "offer":
            inp = OfferStep(t, role, arg if isinstance(arg, int) else None)
        elif a.kind == "complete":
            inp = CompleteStep(t, role)
        elif a.kind == "end":
            inp = EndSession(t, role)
        elif a.kind == "suds":
            inp = SudsAnswer(t, role, arg * 40 if isinstance(arg, int) else 101)
        elif a.kind == "ready":
            self._send_request(ReadyToContinue(t, role))
            return
        else:
            tech = arg if isinstance(arg, GroundingTechnique) else "yoga"
            inp = ChooseGrounding(t, role, tech)  # type: ignore[arg-type]
        self._send(inp)

    def _send_request(self, inp: ReadyToContinue) -> None:
        """A request never resumes (or changes) anything by itself: the session given it does
        exactly what a copy given a Tick at the same time does, plus one `client_ready` event the
        first time it is said during a pause."""
        twin = copy.deepcopy(self.s)
        said = self.s.snapshot().client_ready
        events = self._send(inp)
        event(f"ready request {'refused' if events is None else 'taken'}")
        if events is None:
            return  # refused: _send checked that nothing changed
        expected = twin.handle(Tick(inp.t))
        told = [e for e in events if e.kind == "client_ready"]
        assert len(told) == (0 if said else 1), "a request told the therapist twice (or never)"
        assert all(e.actor is C and e.to_state is e.from_state for e in told)
        rest = [e for e in events if e.kind != "client_ready"]

        def shape(e: SessionEvent) -> Any:
            return (e.t, e.kind, e.actor, e.from_state, e.to_state, e.reason, dict(e.values))

        assert _same([shape(e) for e in rest], [shape(e) for e in expected]), (
            "a ready request changed what the session did"
        )
        plain = {"seq": 0, "client_ready": False, "client_ready_t": None}
        assert _same(replace(self.s.snapshot(), **plain), replace(twin.snapshot(), **plain)), (
            "a ready request changed the session"
        )

    def do_ready_after_pause(self, a: ReadyAfterPause) -> None:
        if not self._to_exposing():
            return
        t = self._later(0.5)
        if a.how == "grounding":
            self._send(ChooseGrounding(t, C, GroundingTechnique.PACED_BREATHING))
        else:
            self._send(Pause(t, C if a.how == "client" else T))
        state = now(self.s)
        assert state in READY_STATES
        self._send_request(ReadyToContinue(self._later(0.5), C))
        assert now(self.s) is state, "a ready request changed the state"
        if self.th.lower <= 0:
            return  # nothing is below 0: no recovery to wait for
        self._hold(below(self.th.lower), math.floor(self.now) + 1.0, self.th.recovery_s, 1.0)
        # not the system's pause: nothing is offered, even with auto_offer, ready or not
        assert now(self.s) is S.RECOVERED, f"after recovery: {now(self.s)}"
        self._send_request(ReadyToContinue(self._later(0.5), C))
        assert now(self.s) is S.RECOVERED

    def do_goto(self, a: Goto) -> None:
        self._goto(a.state)
        if a.then is not None:
            self.do_command(a.then)

    def _goto(self, target: SessionState) -> None:
        if target is S.STEP_OFFERED:
            if not self._to_offer():
                return
            if self.tracked is S.RESUME_OFFERED:  # a different step instead
                other = 1 - (self.s.snapshot().step_index or 0)
                self._send(OfferStep(self._later(0.5), T, other))
            assert now(self.s) is S.STEP_OFFERED
            return
        if target is S.DEBRIEF:
            if self.tracked is not S.ENDED:
                self._send(EndSession(self._later(0.5), T))
            return
        if not self._to_exposing():
            return
        if target is S.EXPOSING:
            return
        t = self._later(0.5)
        if target is S.STEP_COMPLETE:
            self._send(CompleteStep(t, T))
            assert now(self.s) in (S.STEP_COMPLETE, S.DEBRIEF, S.STEP_OFFERED)
            return
        if target is S.GROUNDING:
            self._send(ChooseGrounding(t, C, GroundingTechnique.PACED_BREATHING))
            assert now(self.s) is S.GROUNDING
            return
        self._send(Pause(t, T))
        assert now(self.s) is S.PAUSED
        if target is S.RESUME_OFFERED:
            self._send(OfferStep(self._later(0.5), T))
            assert now(self.s) is S.RESUME_OFFERED
        elif target is S.RECOVERED and self.th.lower > 0:
            self._hold(below(self.th.lower), math.floor(self.now) + 1.0, self.th.recovery_s, 0.0)
            assert now(self.s) is S.RECOVERED  # a therapist pause: no automatic offer

    def do_long_exposure(self, a: LongExposure) -> None:
        """Continuous exposure pauses at exactly max_step_s after the consent, not before."""
        if not self._to_exposing():
            return
        th = self.th
        start = self.now
        assert self.consent_t == start
        planned = self.s.protocol.steps[self.s.snapshot().step_index or 0].planned_s
        if (
            self.s.protocol.options.auto_complete
            and self.s.snapshot().exposed_s + th.max_step_s >= planned
        ):
            return  # the step would complete first
        value = self._neutral()
        for t in self._series(start + 1.0, th.max_step_s - 1.0, a.extra):
            if t == start + th.max_step_s:
                assert now(self.s) is S.EXPOSING
                assert _transitions(self._send(Tick(below(t)))) == []
            self._sample(t, value)
        assert now(self.s) is S.PAUSED
        assert self.s.snapshot().pause_reason is PauseReason.STEP_TOO_LONG
        assert self.s.progress()[self.s.snapshot().step_index or 0].pause_reasons[-1] == (
            "step_too_long"
        )

    # ---- the one rule --------------------------------------------------------------------------

    @rule(action=actions)
    def step(self, action: Any) -> None:
        event(type(action).__name__)
        if isinstance(action, Sample):
            value = self._value(action.level)
            for _ in range(action.n):
                self._send(ArousalSample(self._later(action.dt or 0.5), value, action.confidence))
        elif isinstance(action, Wait):
            self._send(Tick(self._later(action.dt)))
        elif isinstance(action, Signal):
            cls = SignalLost if action.lost else SignalRestored
            self._send(cls(self._later(action.dt)))
        elif isinstance(action, Calibrate):
            detail = "" if action.ok else "too noisy"
            self._send(CalibrationDone(self._later(action.dt), action.ok, detail))
        elif isinstance(action, ClientPause):
            self.do_client_pause(action)
        elif isinstance(action, Command):
            self.do_command(action)
        elif isinstance(action, Adjust):
            self._send(
                AdjustThresholds(
                    self._later(action.dt),
                    action.role,
                    upper=action.upper,
                    lower=action.lower,
                    dwell_s=action.dwell_s,
                    recovery_s=action.recovery_s,
                    max_step_s=action.max_step_s,
                )
            )
        elif isinstance(action, AdjustToNewest):
            known = [h.value for h in self.history if h.value is not None]
            v = known[-1] if known else 50.0
            target = {"exact": v, "below": below(v), "above": above(v)}[action.nudge]
            change = {action.which: target}
            self._send(AdjustThresholds(self._later(0.5), T, **change))
        elif isinstance(action, Hold):
            self.do_hold(action)
        elif isinstance(action, ExposureCycle):
            self.do_cycle(action)
        elif isinstance(action, Goto):
            self.do_goto(action)
        elif isinstance(action, LongExposure):
            self.do_long_exposure(action)
        elif isinstance(action, ReadyAfterPause):
            self.do_ready_after_pause(action)
        else:
            assert isinstance(action, ConsentAtDwell)
            self.do_consent_at_dwell(action)

    def teardown(self) -> None:
        # Determinism (what replay relies on): the same inputs give the same events and state.
        # Skipped after a failed check: its report is the one that says what went wrong.
        if self.make is None or not self.checked:
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
        self._requests_change_nothing_later()

    def _requests_change_nothing_later(self) -> None:
        """Nor later: with every taken request replaced by a Tick at its time (a refused one
        dropped, as it changed nothing), the same transitions happen and the session ends the
        same (a request that armed something, e.g. an automatic resume, would show here)."""
        if not any(isinstance(i, ReadyToContinue) for i in self.inputs):
            return
        probe, plain = self.make(), self.make()
        without: list[SessionEvent] = []
        for inp in self.inputs:
            try:
                probe.handle(inp)
            except CommandError:
                continue
            without += plain.handle(Tick(inp.t) if isinstance(inp, ReadyToContinue) else inp)

        def moves(events: list[SessionEvent]) -> list[Any]:
            return [
                (e.t, e.actor, e.from_state, e.to_state, e.reason.split(":", 1)[0])
                for e in events
                if e.kind == "transition"
            ]

        assert _same(moves(self.log), moves(without)), "a ready request changed what came later"
        keep = {"seq": 0, "client_ready": False, "client_ready_t": None}
        assert _same(replace(self.s.snapshot(), **keep), replace(plain.snapshot(), **keep))

    @invariant()
    def session_invariants(self) -> None:
        snap = self.s.snapshot()
        if snap.state is S.EXPOSING:
            assert snap.monitoring_ok
            assert snap.device_connected
            assert snap.guidance is None
        if snap.state in (S.PAUSED, S.GROUNDING):  # every pause has a reason
            assert snap.pause_reason is not None
        if snap.state is S.GROUNDING:
            assert snap.guidance is not None
        assert (snap.consent_needed is not None) == (snap.state in OFFERS)
        th = snap.thresholds
        assert (th.upper, th.lower, th.dwell_s, th.recovery_s, th.max_step_s) == (
            self.th.upper,
            self.th.lower,
            self.th.dwell_s,
            self.th.recovery_s,
            self.th.max_step_s,
        )
        for p in snap.progress:
            assert p.exposed_s >= 0
            assert p.pauses == len(p.pause_reasons)
            assert len(p.recovery_times_s) <= p.pauses
            assert all(r >= 0 for r in p.recovery_times_s)
            if p.peak_arousal is not None:
                assert 0 <= p.peak_arousal <= 100


def _transitions(events: list[SessionEvent] | None) -> list[tuple[SessionState, SessionState]]:
    assert events is not None
    return [(e.from_state, e.to_state) for e in events if e.kind == "transition"]


def _same(a: Any, b: Any) -> bool:
    """Equality that treats NaN as equal to NaN (a late NaN stamp is kept in the input)."""
    return repr(a) == repr(b)


# Rows every run of the CI profile must cover (the chain the composite actions drive, its edges,
# and the other timed transitions); the dev and long profiles cover them too.
MUST_COVER = frozenset(
    (tr.source.value, tr.trigger.value, tr.target.value)
    for tr in TRANSITIONS
    if tr.trigger
    in (
        Trigger.AROUSAL_HIGH,
        Trigger.START_GROUNDING,
        Trigger.RECOVERY,
        Trigger.CONSENT,
        Trigger.SIGNAL_LOST,
        Trigger.STEP_TOO_LONG,
    )
    or (tr.source, tr.trigger) in ((S.RECOVERED, Trigger.OFFER_RESUME),)
)


def test_session_machine() -> None:
    COVERED.clear()
    run_state_machine_as_test(SessionMachine, settings=profile())
    missing = sorted(MUST_COVER - set(COVERED))
    assert not missing, f"transitions never exercised: {missing}"


# So that --hypothesis-show-statistics reports this test (hypothesis marks its own
# RuleBasedStateMachine.TestCase.runTest the same way).
test_session_machine.is_hypothesis_test = True  # type: ignore[attr-defined]
