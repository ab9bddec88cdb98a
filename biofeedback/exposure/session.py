"""The exposure session state machine: pure, deterministic, time comes in with every input.

    s = ExposureSession(protocol, t=start_t, client_id="c-123", needs_calibration=True)
    events = s.handle(ArousalSample(t, 72.0))     # -> list[SessionEvent]
    s.snapshot()                                  # -> SessionSnapshot for screens and recording

Safety rules enforced here (docs/session.md has the full table):
- exposure starts or resumes only on a client Consent to an offer made after the last pause;
- the client's Pause is accepted in every state and is never rejected;
- arousal pauses only when held at/above `upper` for `dwell_s`; recovery needs arousal below
  `lower` continuously for `recovery_s`; unknown or stale values count towards neither;
- the same dwell withdraws an open offer (and ends a `recovered` hold) and starts grounding, so
  no consent can start an exposure its own dwell rule would pause at once; automatic offers of
  the next step wait for a fresh arousal value below `lower`;
- while monitoring is lost (SignalLost, or no arousal sample for `signal_timeout_s`) exposure is
  paused and a Consent is refused;
- a rejected command raises CommandError and changes nothing (no event, no state, no time).
Inputs older than the newest one are handled at the newest time (never rejected, so a late client
pause still counts); the event's values carry `input_t` with the original time.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from typing import Any

from biofeedback.errors import BiofeedbackError, CommandError, ParseError
from biofeedback.exposure.guidance import make_guidance
from biofeedback.exposure.messages import (
    AdjustThresholds,
    ArousalSample,
    CalibrationDone,
    ChooseGrounding,
    CompleteStep,
    Consent,
    Decline,
    EndSession,
    GroundingTechnique,
    Guidance,
    OfferStep,
    Pause,
    PauseReason,
    ReadyToContinue,
    Recalibrate,
    Role,
    SessionEvent,
    SessionInput,
    SessionState,
    SignalLost,
    SignalRestored,
    SudsAnswer,
    Tick,
)
from biofeedback.exposure.progress import SessionSummary, StepProgress, SudsRecord
from biofeedback.exposure.protocol import ExposureProtocol, Step, Thresholds, threshold_problems
from biofeedback.exposure.rules import ALLOWED, READY_REQUEST, RECALIBRATION, ROLE_RULES, Trigger

log = logging.getLogger(__name__)

S = SessionState
_PAUSED_STATES = frozenset({S.PAUSED, S.GROUNDING, S.RECOVERED, S.RESUME_OFFERED})
_SYSTEM_REASONS = frozenset(
    {PauseReason.AROUSAL, PauseReason.SIGNAL_LOST, PauseReason.STEP_TOO_LONG}
)
_COMMANDS = tuple(ROLE_RULES)
# States in which the client's "I'm ready to continue" stands (READY_REQUEST allows it there).
_READY_STATES = frozenset(st for st, rule in READY_REQUEST.items() if rule.allowed)
_OBSERVATIONS = (ArousalSample, Tick, SignalLost, SignalRestored, CalibrationDone)


class SessionLogicError(BiofeedbackError):
    """The session tried a transition its own table does not allow (a bug, never user input)."""


@dataclass(frozen=True, slots=True)
class StepInfo:
    """A step as screens show it."""

    index: int
    title: str
    description: str
    planned_s: float
    suds_anchors: tuple[tuple[int, str], ...]
    status: str  # pending, offered, exposing, paused, completed, left (started, not completed)


@dataclass(frozen=True, slots=True)
class SessionSnapshot:
    """Everything a screen or a recording needs about the session at time `t` (JSON-friendly)."""

    t: float
    client_id: str
    protocol_name: str
    state: SessionState
    step_index: int | None
    steps: tuple[StepInfo, ...]
    pause_reason: PauseReason | None
    thresholds: Thresholds
    guidance: Guidance | None
    consent_needed: str | None  # what the client is asked to consent to, when an offer is open
    checkin_due: str | None  # oldest pending SUDS prompt: step_start, step_end, after_recovery...
    monitoring_ok: bool
    last_arousal: float | None
    last_arousal_t: float | None = None
    seq: int = 0  # seq of the newest event
    state_since_t: float = 0.0  # when the current state was entered
    started_t: float = 0.0
    offer: str | None = None  # "step" or "resume" while an offer is open
    checkins_pending: tuple[str, ...] = ()
    device_connected: bool = True
    calibrated: bool = False
    calibration_failed: bool = False
    calibration_detail: str = ""
    recalibrating: bool = False  # a fresh calibration the therapist started is running
    calibration_reason: str = ""  # the therapist's reason for the running fresh calibration
    calibration_notes: tuple[str, ...] = ()  # what looked unusual about the last calibration
    arousal_pausing: bool = True  # False only when proceeding after a failed calibration
    exposed_s: float = 0.0  # current step, all segments so far
    segment_s: float = 0.0  # current continuous exposure
    paused_since: float | None = None
    # every reason of the current pause, oldest first (the last is `pause_reason`)
    pause_reasons: tuple[PauseReason, ...] = ()
    dwell_progress: float = 0.0  # 0..1 of the way to an arousal pause
    recovery_progress: float = 0.0  # 0..1 of the way to recovered
    preferred_grounding: GroundingTechnique = GroundingTechnique.PACED_BREATHING
    grounding_menu: tuple[GroundingTechnique, ...] = ()
    progress: tuple[StepProgress, ...] = ()
    suds: tuple[SudsRecord, ...] = ()
    # The client said "I'm ready to continue" (ReadyToContinue) during this pause, at this time;
    # a request for the therapist, withdrawn by any pause and by leaving the paused states.
    client_ready: bool = False
    client_ready_t: float | None = None
    # The resting calibration: its length, and when the one running now began (None when none
    # runs, or the first one waits for the strap's first beat; the service fills that in).
    calibration_s: float = 0.0
    calibration_started_t: float | None = None


@dataclass(slots=True)
class _StepAcc:
    offered: bool = False
    started: bool = False
    completed: bool = False
    exposed_s: float = 0.0
    peak: float | None = None
    pause_reasons: list[str] = field(default_factory=list)
    recovery_times: list[float] = field(default_factory=list)
    suds_before: int | None = None
    suds_after: int | None = None


@dataclass(slots=True)
class _Offer:
    kind: str  # "step" or "resume"
    step: int
    seq: int  # seq of the event that made the offer (always after the last pause)


class ExposureSession:
    """One client's session over one protocol; see the module docstring for the rules."""

    def __init__(
        self,
        protocol: ExposureProtocol,
        t: float,
        client_id: str,
        needs_calibration: bool = True,
    ) -> None:
        if not math.isfinite(t):
            raise ParseError(f"session start time must be a finite number, got {t!r}")
        self._p = protocol
        self._client_id = client_id
        self._th = protocol.thresholds
        self._t0 = float(t)
        self._t = float(t)
        self._seq = 0
        self._state = S.CALIBRATING if needs_calibration else S.READY
        self._calibrated = not needs_calibration
        self._calibration_failed = False
        self._calibration_detail = ""
        self._calibration_notes: tuple[str, ...] = ()
        # A fresh calibration the therapist asked for (its request time), and a system offer held
        # back while it runs: (kind, step, trigger, state, state_since) of the deferred offer.
        self._recal_t: float | None = None
        self._recal_reason = ""
        self._deferred_offer: tuple[str, int, Trigger, SessionState, float] | None = None
        self._step: int | None = None
        self._offer: _Offer | None = None
        self._pause_reason: PauseReason | None = None
        # Every reason this pause has had, oldest first, the current one last: a client pause
        # during an arousal pause is "arousal, then client", and the arousal is not forgotten.
        self._pause_reasons: list[PauseReason] = []
        self._paused_at: float | None = None
        self._last_pause_seq = 0
        # Roles whose pause was acknowledged (with an event) since the last transition.
        self._pause_acked: set[Role] = set()
        self._measure_recovery = False
        self._auto_resume_ok = False
        # Kind of offer ("step") the system withdrew on arousal and re-makes after recovery.
        self._reoffer: str | None = None
        # auto_offer: the next step waits in step_complete until arousal is below lower.
        self._next_offer_waiting = False
        self._device_lost = False
        self._last_sample_t: float | None = None
        self._last_value: float | None = None
        self._last_value_t: float | None = None
        # The newest sample was unknown: the last known value is then no longer current (it is
        # still shown), so it neither counts as calm nor restarts a run on an adjustment.
        self._newest_unknown = False
        self._above_since: float | None = None
        self._below_since: float | None = None
        self._segment_start: float | None = None
        self._last_periodic: float | None = None
        self._monitoring_reported = False
        self._guidance: Guidance | None = None
        self._preferred = protocol.guidance.grounding[0]
        self._pending: list[tuple[str, int | None]] = []
        self._suds: list[SudsRecord] = []
        self._acc = [_StepAcc() for _ in protocol.steps]
        self._out: list[SessionEvent] = []
        self._late: dict[str, Any] = {}
        self._state_since = self._t0
        # When the client said "I'm ready to continue" during the current pause (None: not said).
        self._ready_t: float | None = None

    # ---- public read-only view -------------------------------------------------------------------

    @property
    def state(self) -> SessionState:
        """The current state."""
        return self._state

    @property
    def guidance(self) -> Guidance | None:
        """The grounding in progress (None when none is running)."""
        return self._guidance

    @property
    def protocol(self) -> ExposureProtocol:
        """The protocol this session runs."""
        return self._p

    @property
    def thresholds(self) -> Thresholds:
        """The thresholds in force (the protocol's, as adjusted by the therapist)."""
        return self._th

    @property
    def t(self) -> float:
        """The newest time the session has seen."""
        return self._t

    @property
    def calibration_request_t(self) -> float | None:
        """When the therapist asked for the calibration now running (None: none asked for).

        The service starts (or restarts) the signal pipeline's calibration at this time and
        answers with `CalibrationDone`; None again after that, or when the request was cancelled.
        """
        return self._recal_t

    def monitoring_ok(self, t: float | None = None) -> bool:
        """Strap connected and an arousal sample (known or not) within `signal_timeout_s`."""
        now = self._t if t is None else t
        return (
            not self._device_lost
            and self._last_sample_t is not None
            and now - self._last_sample_t <= self._th.signal_timeout_s
        )

    # ---- input ----------------------------------------------------------------------------------

    def handle(self, inp: SessionInput) -> list[SessionEvent]:
        """Apply one input; return the events it caused (possibly none).

        Raises CommandError for a command its role may not send, a malformed command, or one that
        is invalid in the current state; the session is then unchanged. A client's Pause is never
        rejected.
        """
        is_cmd = isinstance(inp, _COMMANDS)
        if not is_cmd and not isinstance(inp, _OBSERVATIONS):
            raise ParseError(f"not a session input: {type(inp).__name__}")
        if isinstance(inp, CalibrationDone) and not isinstance(inp.ok, bool):
            raise ParseError(f"CalibrationDone.ok must be true or false, got {inp.ok!r}")
        role = self._role_of(inp) if is_cmd else Role.SYSTEM
        t, late = self._time_of(inp, is_cmd)
        if is_cmd:
            allowed = ROLE_RULES[type(inp)]
            if role not in allowed:
                who = " or ".join(sorted(r.value for r in allowed))
                raise CommandError(
                    f"{type(inp).__name__} may only be sent by {who}, not by {role.value}"
                )
            if self._state is S.ENDED and not isinstance(inp, Pause):
                raise CommandError(f"the session has ended; {type(inp).__name__} is not possible")
            self._validate(inp, t)  # raises before anything changes
        self._out = []
        self._late = {"input_t": _num_or_none(inp.t)} if late else {}
        self._t = t
        if isinstance(inp, ArousalSample):
            self._on_arousal(inp, t)
        elif isinstance(inp, Tick):
            self._advance(t)
        elif isinstance(inp, SignalLost):
            self._on_signal_lost(inp, t)
        elif isinstance(inp, SignalRestored):
            self._on_signal_restored(inp, t)
        elif isinstance(inp, CalibrationDone):
            self._on_calibration(inp, t)
        elif isinstance(inp, Pause):
            self._on_pause(inp, role, t)
        elif isinstance(inp, Consent):
            self._on_consent(inp, t)
        elif isinstance(inp, Decline):
            self._on_decline(t)
        elif isinstance(inp, OfferStep):
            self._on_offer(inp, t)
        elif isinstance(inp, CompleteStep):
            self._complete(t, Role.THERAPIST, Trigger.COMPLETE_STEP, "therapist completed the step")
        elif isinstance(inp, EndSession):
            self._on_end(t)
        elif isinstance(inp, AdjustThresholds):
            self._on_adjust(inp, t)
        elif isinstance(inp, SudsAnswer):
            self._on_suds(inp, t)
        elif isinstance(inp, ChooseGrounding):
            self._on_choose(inp, t)
        elif isinstance(inp, Recalibrate):
            self._on_recalibrate(inp, t)
        elif isinstance(inp, ReadyToContinue):
            self._on_ready(t)
        if is_cmd:
            # Timers catch up to the command's time too, so no input leaves the session exposing
            # with monitoring lost or a dwell overdue (the command was already validated).
            self._advance(t)
        out, self._out = self._out, []
        return out

    def _role_of(self, inp: SessionInput) -> Role:
        try:
            return Role(str(getattr(inp, "role", None)))
        except ValueError:
            raise CommandError(
                f"{type(inp).__name__}: unknown role {getattr(inp, 'role', None)!r} "
                f"(expected one of: {', '.join(r.value for r in Role)})"
            ) from None

    def _time_of(self, inp: SessionInput, is_cmd: bool) -> tuple[float, bool]:
        raw = inp.t
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            if isinstance(inp, Pause):
                return self._t, True
            cls = CommandError if is_cmd else ParseError
            raise cls(f"{type(inp).__name__}.t must be a number of seconds, got {raw!r}")
        t = float(raw)
        if not math.isfinite(t):
            if isinstance(inp, Pause):  # the client's pause wins even with a broken clock
                return self._t, True
            cls = CommandError if is_cmd else ParseError
            raise cls(f"{type(inp).__name__}.t must be finite, got {raw!r}")
        if t < self._t:
            return self._t, True
        return t, False

    # ---- validation of commands (no side effects) -----------------------------------------------

    def _validate(self, inp: SessionInput, t: float) -> None:
        st = self._state
        if isinstance(inp, Consent):
            if self._offer is None or st not in (S.STEP_OFFERED, S.RESUME_OFFERED):
                raise CommandError(f"there is nothing to consent to right now (state {st.value})")
            if not self.monitoring_ok(t):
                raise CommandError(
                    "monitoring is lost (no heart signal); exposure cannot start until the signal "
                    "is back. Nothing has started."
                )
            if self._dwell_reached(t):
                assert self._above_since is not None
                raise CommandError(
                    f"arousal has been at or above {self._th.upper:g} for "
                    f"{t - self._above_since:.1f} s (dwell {self._th.dwell_s:g} s): the offer is "
                    "being withdrawn so the client can ground first. Nothing has started."
                )
        elif isinstance(inp, Decline):
            if self._offer is None:
                raise CommandError(f"there is nothing offered to decline (state {st.value})")
        elif isinstance(inp, OfferStep):
            self._offer_target(inp.step)
        elif isinstance(inp, CompleteStep):
            if st not in (S.EXPOSING, *_PAUSED_STATES):
                raise CommandError(f"no step is in progress to complete (state {st.value})")
        elif isinstance(inp, AdjustThresholds):
            self._adjusted(inp)
        elif isinstance(inp, SudsAnswer):
            v = inp.value
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 100:
                raise CommandError(f"SUDS must be a whole number 0..100, got {v!r}")
        elif isinstance(inp, ChooseGrounding):
            self._technique(inp.technique)
        elif isinstance(inp, ReadyToContinue):
            ready = READY_REQUEST[st]
            if not ready.allowed:
                raise CommandError(
                    f"nothing to continue right now (state {st.value}): {ready.effect}"
                )
        elif isinstance(inp, Recalibrate):
            rule = RECALIBRATION[st]
            if not rule.allowed:
                raise CommandError(f"cannot recalibrate now (state {st.value}): {rule.effect}")
            if not isinstance(inp.reason, str) or len(inp.reason) > 500:
                raise CommandError("Recalibrate.reason must be text of at most 500 characters")
            if st is not S.CALIBRATING and not self.monitoring_ok(t):
                raise CommandError(
                    "no heart signal right now: a calibration needs the strap sending. Nothing "
                    "has changed."
                )

    def _technique(self, raw: object) -> GroundingTechnique:
        menu = self._p.guidance.grounding
        try:
            tech = GroundingTechnique(str(raw))
        except ValueError:
            tech = None
        if tech is None or tech not in menu:
            raise CommandError(
                f"grounding technique {raw!r} is not on this client's menu "
                f"({', '.join(m.value for m in menu)})"
            )
        return tech

    def _next_pending_step(self) -> int | None:
        for i, acc in enumerate(self._acc):
            if not acc.completed:
                return i
        return None

    def _offer_target(self, step: int | None) -> tuple[Trigger, int]:
        """(trigger, step index) an OfferStep would make now; CommandError when not possible."""
        st = self._state
        n = len(self._p.steps)
        if step is not None and (isinstance(step, bool) or not isinstance(step, int)):
            raise CommandError(f"OfferStep.step must be a step index or null, got {step!r}")
        if step is not None and not 0 <= step < n:
            raise CommandError(
                f"there is no step index {step}; this protocol has step indices 0..{n - 1} "
                f"(steps 1..{n})"
            )
        if st is S.CALIBRATING and not self._calibration_failed:
            raise CommandError(
                "calibration is still running; a step can be offered once it has finished "
                "(or, if it fails, explicitly without calibration)"
            )
        if self._recal_t is not None and st is not S.CALIBRATING:
            raise CommandError(
                "a fresh calibration is running (the client was told it is a quiet minute): "
                "offer once it has finished"
            )
        if st in (S.EXPOSING, S.DEBRIEF, S.ENDED):
            why = {
                S.EXPOSING: "a step is in progress: pause or complete it first",
                S.DEBRIEF: "the session is in debrief",
                S.ENDED: "the session has ended",
            }[st]
            raise CommandError(f"cannot offer a step now: {why}")
        if st in _PAUSED_STATES:
            assert self._step is not None
            if step is None or step == self._step:
                return Trigger.OFFER_RESUME, self._step
            return Trigger.OFFER_STEP, step
        if step is None:
            nxt = self._next_pending_step()
            if nxt is None:
                raise CommandError(
                    "every step is complete; offer a step by index to repeat one, "
                    "or end the session"
                )
            return Trigger.OFFER_STEP, nxt
        return Trigger.OFFER_STEP, step

    def _adjusted(self, inp: AdjustThresholds) -> Thresholds:
        changes: dict[str, float] = {}
        for name in ("upper", "lower", "dwell_s", "recovery_s", "max_step_s"):
            v = getattr(inp, name)
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise CommandError(f"threshold {name} must be a number, got {v!r}")
            changes[name] = float(v)
        if not changes:
            raise CommandError("AdjustThresholds changes nothing: give at least one value")
        new = replace(self._th, **changes)
        problems = threshold_problems(new)
        if problems:
            raise CommandError(
                "thresholds not changed: " + "; ".join(f"{f} {p}" for f, p in problems)
            )
        return new

    # ---- events and transitions -----------------------------------------------------------------

    def _emit(
        self,
        kind: str,
        actor: Role,
        reason: str,
        values: dict[str, Any] | None = None,
        to_state: SessionState | None = None,
    ) -> SessionEvent:
        self._seq += 1
        vals = {**self._late, **(values or {})}
        ev = SessionEvent(
            seq=self._seq,
            t=self._t,
            kind=kind,
            actor=actor,
            from_state=self._state,
            to_state=to_state or self._state,
            reason=reason,
            values=vals,
        )
        self._out.append(ev)
        log.debug("session %s event %s", self._client_id, ev)
        return ev

    def _go(
        self,
        target: SessionState,
        trigger: Trigger,
        actor: Role,
        reason: str,
        values: dict[str, Any] | None = None,
    ) -> SessionEvent:
        if (self._state, trigger, target) not in ALLOWED:
            raise SessionLogicError(
                f"transition {self._state.value} --{trigger.value}--> {target.value} is not in the "
                "transition table"
            )
        ev = self._emit("transition", actor, f"{trigger.value}: {reason}", values, target)
        if target is not self._state:
            self._state_since = self._t
        self._state = target
        self._pause_acked.clear()
        if target not in _READY_STATES:
            self._ready_t = None
        if self._recal_t is not None and not RECALIBRATION[target].allowed:
            self._cancel_recalibration(f"the session moved to {target.value}")
        return ev

    def _checkin(self, prompt: str, step: int | None) -> None:
        self._pending = [(p, s) for p, s in self._pending if p != prompt]
        self._pending.append((prompt, step))
        self._emit(
            "checkin_due", Role.SYSTEM, f"SUDS check-in: {prompt}", {"prompt": prompt, "step": step}
        )

    # ---- observations ---------------------------------------------------------------------------

    def _on_arousal(self, s: ArousalSample, t: float) -> None:
        if self._device_lost:
            # Between SignalLost and SignalRestored a sample vouches for nothing: it neither
            # restores monitoring nor counts towards a dwell or a recovery.
            self._above_since = self._below_since = None
            self._advance(t)
            return
        self._last_sample_t = t
        v = s.value
        known = (
            v is not None
            and not isinstance(v, bool)
            and isinstance(v, int | float)
            and math.isfinite(v)
            and isinstance(s.confidence, int | float)
            and s.confidence > 0
        )
        if known:
            assert v is not None
            value = min(100.0, max(0.0, float(v)))
            if not self._fresh(t):
                # A gap longer than stale_s breaks a run even if no other input came in between.
                self._above_since = self._below_since = None
            self._last_value, self._last_value_t = value, t
            self._newest_unknown = False
            self._update_runs(value, t)
            if s.moving is True and not self._p.options.movement_pauses:
                # the protocol lets movement not pause: a high value while moving starts no dwell
                # (heart rate then answers exertion); a calm value still counts as calm
                self._above_since = None
            if self._state is S.EXPOSING and self._step is not None:
                acc = self._acc[self._step]
                acc.peak = value if acc.peak is None else max(acc.peak, value)
        else:
            # Unknown arousal neither pauses nor counts towards recovery: both runs restart.
            self._above_since = self._below_since = None
            self._newest_unknown = True
        self._advance(t)

    def _update_runs(self, value: float, t: float) -> None:
        if value >= self._th.upper:
            self._above_since = t if self._above_since is None else self._above_since
        else:
            self._above_since = None
        if value < self._th.lower:
            self._below_since = t if self._below_since is None else self._below_since
        else:
            self._below_since = None

    def _dwell_reached(self, t: float) -> bool:
        """Arousal held at/above upper for dwell_s up to t (fresh, known values only)."""
        return (
            self._above_since is not None
            and self._fresh(t)
            and t - self._above_since >= self._th.dwell_s
        )

    def _calm(self, t: float) -> bool:
        """The newest arousal value is known, fresh and below lower (unknown is not calm)."""
        return (
            self.monitoring_ok(t)
            and self._fresh(t)
            and self._last_value is not None
            and self._last_value < self._th.lower
        )

    def _fresh(self, t: float) -> bool:
        """The last known value is current at t: not superseded by an unknown one, not stale."""
        return (
            not self._device_lost
            and not self._newest_unknown
            and self._last_sample_t is not None
            and self._last_value_t is not None
            and t - self._last_value_t <= self._th.stale_s
        )

    def _advance(self, t: float) -> None:
        """Run the timers (dwell, recovery, step length, monitoring) up to `t`."""
        if not self._fresh(t):
            self._above_since = self._below_since = None
        ok = self.monitoring_ok(t)
        if ok != self._monitoring_reported:
            self._monitoring_reported = ok
            if ok:
                self._emit("monitoring", Role.SYSTEM, "monitoring ok: arousal samples arriving")
            elif not self._device_lost:
                since = None if self._last_sample_t is None else t - self._last_sample_t
                self._emit(
                    "monitoring",
                    Role.SYSTEM,
                    f"monitoring lost: no arousal sample for {self._th.signal_timeout_s:g} s",
                    {"since_s": since},
                )
        st = self._state
        if st is S.EXPOSING:
            assert self._step is not None
            assert self._segment_start is not None
            if not ok:
                self._pause(
                    PauseReason.SIGNAL_LOST,
                    Role.SYSTEM,
                    t,
                    Trigger.SIGNAL_LOST,
                    "monitoring lost during exposure",
                    {"device_lost": self._device_lost, "last_sample_t": self._last_sample_t},
                )
            elif self._above_since is not None and t - self._above_since >= self._th.dwell_s:
                self._pause(
                    PauseReason.AROUSAL,
                    Role.SYSTEM,
                    t,
                    Trigger.AROUSAL_HIGH,
                    f"arousal at or above {self._th.upper:g} for {t - self._above_since:.1f} s",
                    {
                        "arousal": self._last_value,
                        "upper": self._th.upper,
                        "dwell_s": self._th.dwell_s,
                        "above_since": self._above_since,
                    },
                )
            elif t - self._segment_start >= self._th.max_step_s:
                self._pause(
                    PauseReason.STEP_TOO_LONG,
                    Role.SYSTEM,
                    t,
                    Trigger.STEP_TOO_LONG,
                    f"continuous exposure reached {self._th.max_step_s:g} s",
                    {"segment_s": t - self._segment_start, "max_step_s": self._th.max_step_s},
                )
            elif (
                self._p.options.auto_complete
                and self._exposed(t) >= self._p.steps[self._step].planned_s
            ):
                self._complete(
                    t,
                    Role.SYSTEM,
                    Trigger.PLANNED_TIME_REACHED,
                    "planned exposure time reached",
                )
            elif self._p.checkins.every_s > 0:
                last = self._last_periodic if self._last_periodic is not None else t
                if t - last >= self._p.checkins.every_s:
                    self._last_periodic = t
                    self._checkin("periodic", self._step)
        elif st in (S.STEP_OFFERED, S.RESUME_OFFERED, S.RECOVERED) and self._dwell_reached(t):
            self._withdraw(t)
        elif st is S.STEP_COMPLETE and self._next_offer_waiting and self._calm(t):
            self._next_offer_waiting = False
            nxt = self._next_pending_step()
            if nxt is not None:
                self._make_offer("step", nxt, Role.SYSTEM, Trigger.OFFER_STEP)
        elif st in (S.PAUSED, S.GROUNDING) and self._paused_at is not None:
            since = self._below_since
            if since is not None and ok and t - max(since, self._paused_at) >= self._th.recovery_s:
                self._recover(t)

    def _recover(self, t: float) -> None:
        assert self._paused_at is not None
        assert self._step is not None
        took = t - self._paused_at
        if self._measure_recovery:
            self._acc[self._step].recovery_times.append(took)
            self._measure_recovery = False
        self._go(
            S.RECOVERED,
            Trigger.RECOVERY,
            Role.SYSTEM,
            f"arousal below {self._th.lower:g} for {self._th.recovery_s:g} s",
            {
                "arousal": self._last_value,
                "lower": self._th.lower,
                "recovery_s": self._th.recovery_s,
                "paused_at": self._paused_at,
                "time_to_recover_s": took,
            },
        )
        if self._p.checkins.after_recovery:
            self._checkin("after_recovery", self._step)
        if self._p.options.auto_offer and self._auto_resume_ok:
            if self._reoffer == "step":
                self._make_offer("step", self._step, Role.SYSTEM, Trigger.OFFER_STEP)
            else:
                self._make_offer("resume", self._step, Role.SYSTEM, Trigger.OFFER_RESUME)

    def _withdraw(self, t: float) -> None:
        """Arousal held high for the dwell while an offer is open (or while recovered): ground.

        Goes through `paused` (reason arousal) like an exposure pause, so the preferred grounding
        starts at once and recovery follows the normal rule. An exposure pause of the same step
        still waiting for its recovery keeps its start time (the time to recover covers both).
        """
        assert self._above_since is not None
        st = self._state
        offer = self._offer
        measure, paused_at, auto_ok = self._measure_recovery, self._paused_at, self._auto_resume_ok
        if offer is not None:
            self._step = offer.step
        kind = offer.kind if offer is not None else None
        held = t - self._above_since
        what = f"{kind} offer withdrawn" if kind else "recovery no longer holds"
        self._pause(
            PauseReason.AROUSAL,
            Role.SYSTEM,
            t,
            Trigger.AROUSAL_HIGH,
            f"{what}: arousal at or above {self._th.upper:g} for {held:.1f} s",
            {
                "arousal": self._last_value,
                "upper": self._th.upper,
                "dwell_s": self._th.dwell_s,
                "above_since": self._above_since,
                "withdrawn_offer": kind,
                "step": self._step,
                "from": st.value,
            },
        )
        if measure and paused_at is not None and kind != "step":
            # Same step still waiting for its recovery (a step offer is always another step or
            # one not yet started: its recovery is not this step's).
            self._measure_recovery = True
            self._paused_at = paused_at
        # A step offer is re-made after recovery (auto_offer); a resume offer or a recovered hold
        # keeps whatever the last real pause allowed (after a client pause: only the therapist).
        self._auto_resume_ok = True if kind == "step" else auto_ok
        self._reoffer = kind

    def _on_signal_lost(self, inp: SignalLost, t: float) -> None:
        self._device_lost = True
        # Samples from before the loss never vouch for monitoring after it comes back.
        self._last_sample_t = None
        self._above_since = self._below_since = None
        self._emit(
            "monitoring", Role.SYSTEM, f"signal lost{': ' + str(inp.detail) if inp.detail else ''}"
        )
        self._monitoring_reported = False
        self._advance(t)

    def _on_signal_restored(self, inp: SignalRestored, t: float) -> None:
        was_lost = self._device_lost
        self._device_lost = False
        self._emit(
            "monitoring",
            Role.SYSTEM,
            "signal restored" if was_lost else "signal restored (was not lost)",
            {"gap_s": _num_or_none(inp.gap_s)},
        )
        self._advance(t)

    def _on_calibration(self, inp: CalibrationDone, t: float) -> None:
        detail = str(inp.detail or "")
        fresh = self._recal_t is not None and self._state is not S.CALIBRATING
        self._recal_t = None
        self._recal_reason = ""
        notes = tuple(str(n) for n in (inp.notes or ()) if n)
        vals: dict[str, Any] = {"ok": bool(inp.ok), "detail": detail}
        if fresh:
            vals["fresh"] = True
        if inp.ok:
            had_baseline = self._calibrated
            self._calibrated = True
            self._calibration_failed = False
            self._calibration_detail = detail
            self._calibration_notes = notes
            if notes:
                vals["notes"] = list(notes)
            if self._state is S.CALIBRATING:
                self._go(S.READY, Trigger.CALIBRATION_OK, Role.SYSTEM, "calibration done", vals)
                self._notice(notes)
                if self._p.options.auto_offer:
                    nxt = self._next_pending_step()
                    if nxt is not None:
                        self._make_offer("step", nxt, Role.SYSTEM, Trigger.OFFER_STEP)
            else:
                why = "calibration updated"
                if fresh:
                    why = "fresh calibration done: the new baseline is in use" + (
                        "" if had_baseline else " (automatic pausing works from now on)"
                    )
                self._emit("calibration", Role.SYSTEM, why, vals)
                self._notice(notes)
        else:
            self._calibration_failed = not self._calibrated
            self._calibration_detail = detail
            if fresh and self._calibrated:
                why = (
                    f"fresh calibration failed: {detail or 'no reason given'}; the previous "
                    "baseline stays in use"
                )
            else:
                why = f"calibration failed: {detail or 'no reason given'}" + (
                    "; staying in calibration (retry, end, or offer a step explicitly)"
                    if self._state is S.CALIBRATING
                    else ""
                )
            self._emit("calibration", Role.SYSTEM, why, vals)
        self._release_deferred_offer(t)
        self._advance(t)

    def _notice(self, notes: tuple[str, ...]) -> None:
        """Tell the therapist what looked unusual about a calibration that passed."""
        if notes:
            self._emit(
                "calibration_notice",
                Role.SYSTEM,
                "calibration looked unusual: " + "; ".join(notes),
                {"notes": list(notes)},
            )

    def _on_recalibrate(self, inp: Recalibrate, t: float) -> None:
        restart = self._state is S.CALIBRATING
        self._recal_t = t
        self._recal_reason = inp.reason
        what = (
            "calibration restarted by the therapist"
            if restart
            else "fresh calibration started by the therapist; the current baseline stays in use "
            "until the new one passes"
        )
        self._emit(
            "calibration",
            Role.THERAPIST,
            what + (f": {inp.reason}" if inp.reason else ""),
            {"started": True, "restart": restart, "reason": inp.reason},
        )

    def _cancel_recalibration(self, why: str) -> None:
        """A fresh calibration cannot go on (the client is no longer at rest): drop it."""
        if self._recal_t is None:
            return
        self._recal_t = None
        self._recal_reason = ""
        self._emit(
            "calibration",
            Role.SYSTEM,
            f"fresh calibration cancelled: {why}"
            + ("" if self._state is S.CALIBRATING else "; the previous baseline stays in use"),
            {"cancelled": True},
        )
        self._release_deferred_offer(self._t)

    def _release_deferred_offer(self, t: float) -> None:
        """Make the system offer held back during a fresh calibration, if nothing changed since."""
        held = self._deferred_offer
        self._deferred_offer = None
        if held is None or self._recal_t is not None:
            return
        kind, step, trigger, state, since = held
        if self._state is not state or self._state_since != since:
            return  # the session moved on meanwhile: that decides what is offered
        if state is S.STEP_COMPLETE and not self._calm(t):
            self._next_offer_waiting = True  # offered once a fresh value is below lower
            return
        self._make_offer(kind, step, Role.SYSTEM, trigger)

    # ---- commands -------------------------------------------------------------------------------

    def _close_segment(self, t: float) -> None:
        if self._segment_start is not None and self._step is not None:
            self._acc[self._step].exposed_s += t - self._segment_start
        self._segment_start = None

    def _exposed(self, t: float) -> float:
        if self._step is None:
            return 0.0
        run = t - self._segment_start if self._segment_start is not None else 0.0
        return self._acc[self._step].exposed_s + run

    def _pause(
        self,
        reason: PauseReason,
        actor: Role,
        t: float,
        trigger: Trigger,
        why: str,
        values: dict[str, Any] | None = None,
    ) -> None:
        st = self._state
        vals = {"pause_reason": reason.value, **(values or {})}
        self._reoffer = None
        if st is S.EXPOSING:
            assert self._step is not None
            self._close_segment(t)
            acc = self._acc[self._step]
            acc.pause_reasons.append(reason.value)
            self._measure_recovery = True
        else:
            self._measure_recovery = False
        self._offer = None
        # A pause from recovered or an open resume offer is still the same paused step: keep
        # what paused it first. From exposure or a step offer it is a new pause.
        earlier = self._pause_reasons if st in _PAUSED_STATES else []
        self._pause_reasons = [r for r in earlier if r is not reason] + [reason]
        self._pause_reason = reason
        self._paused_at = t
        self._ready_t = None  # a new pause: "ready" has to be said again
        self._auto_resume_ok = reason in _SYSTEM_REASONS
        ev = self._go(S.PAUSED, trigger, actor, why, vals)
        self._last_pause_seq = ev.seq
        if reason is PauseReason.AROUSAL:
            self._start_guidance(self._preferred, t, Role.SYSTEM, Trigger.START_GROUNDING)

    def _start_guidance(
        self, tech: GroundingTechnique, t: float, actor: Role, trigger: Trigger | None
    ) -> None:
        self._cancel_recalibration("grounding started (guided breathing changes the heart rhythm)")
        self._guidance = make_guidance(tech, t, self._p.guidance.breathing)
        g = self._guidance
        vals: dict[str, Any] = {"technique": tech.value, "start_t": t}
        if g.breathing is not None:
            b = g.breathing
            vals["breathing"] = [b.inhale_s, b.hold_in_s, b.exhale_s, b.hold_out_s]
        if trigger is not None:
            self._go(S.GROUNDING, trigger, actor, f"grounding: {tech.value}", vals)
        else:
            self._emit("guidance", actor, f"grounding: {tech.value}", vals)

    def _on_pause(self, inp: Pause, role: Role, t: float) -> None:
        st = self._state
        reason = PauseReason.CLIENT if role is Role.CLIENT else PauseReason.THERAPIST
        note: dict[str, Any] = {"note": str(inp.note)} if inp.note else {}
        if st in (S.EXPOSING, S.STEP_OFFERED, S.RESUME_OFFERED, S.RECOVERED):
            if st is S.STEP_OFFERED and self._offer is not None:
                self._step = self._offer.step
            self._pause(reason, role, t, Trigger.PAUSE, f"{role.value} paused", note)
            return
        # Already paused or nothing running: acknowledged, never refused. An event only when the
        # pause changes something, or (nothing running) for the first pause of each role since the
        # last transition: a stream of repeated pauses must not push real events out of the log.
        changed = False
        if self._ready_t is not None:
            # A pause withdraws the client's "I'm ready to continue": not now after all.
            self._ready_t = None
            note = {**note, "ready_withdrawn": True}
            changed = True
        if st in (S.PAUSED, S.GROUNDING):
            if role is Role.CLIENT or self._pause_reason is not PauseReason.CLIENT:
                if self._pause_reason is not reason:
                    changed = True
                    if self._pause_reason is not None:
                        note = {**note, "earlier_reason": self._pause_reason.value}
                    self._pause_reasons = [r for r in self._pause_reasons if r is not reason]
                    self._pause_reasons.append(reason)
                self._pause_reason = reason
            changed |= self._auto_resume_ok
            self._auto_resume_ok = False
        elif role not in self._pause_acked:
            changed = True
        if st is S.STEP_COMPLETE and (self._next_offer_waiting or self._deferred_offer):
            # A pause between steps means "not yet": only the therapist offers the next one.
            self._next_offer_waiting = False
            self._deferred_offer = None
            note = {**note, "auto_offer_cancelled": True}
            changed = True
        if (st, Trigger.PAUSE, st) not in ALLOWED:
            raise SessionLogicError(f"no acknowledging pause row for state {st.value}")
        if not changed:
            log.debug("session %s: repeated %s pause in %s, no event", self._client_id, role, st)
            return
        self._pause_acked.add(role)
        ev = self._emit(
            "pause_acknowledged",
            role,
            f"{role.value} paused: "
            + ("already paused" if st in (S.PAUSED, S.GROUNDING) else "nothing is running"),
            {"pause_reason": reason.value, **note},
        )
        self._last_pause_seq = ev.seq

    def _on_ready(self, t: float) -> None:
        """The client's "I'm ready to continue": told to the therapist, nothing else changes."""
        if self._ready_t is not None:
            log.debug("session %s: repeated ready request, no event", self._client_id)
            return
        self._ready_t = t
        step = self._step
        what = f"step {step + 1}" if step is not None else "the session"
        self._emit(
            "client_ready",
            Role.CLIENT,
            f"client is ready to continue {what}: the therapist may offer to resume; only the "
            "client's consent to that offer resumes",
            {
                "step": step,
                "pause_reason": None if self._pause_reason is None else self._pause_reason.value,
            },
        )

    def _make_offer(self, kind: str, step: int, actor: Role, trigger: Trigger) -> None:
        if actor is Role.SYSTEM and self._recal_t is not None and self._state is not S.CALIBRATING:
            # Never put an offer in front of a client told to sit quietly: made when it ends.
            self._deferred_offer = (kind, step, trigger, self._state, self._state_since)
            self._next_offer_waiting = False
            self._emit(
                "offer_waiting",
                Role.SYSTEM,
                f"{kind} offer of step {step + 1} waits until the fresh calibration has finished",
                {"step": step, "offer": kind, "calibrating": True},
            )
            return
        target = S.RESUME_OFFERED if kind == "resume" else S.STEP_OFFERED
        new_step = kind == "step"
        self._next_offer_waiting = False
        self._reoffer = None
        if new_step and self._step is not None and self._step != step:
            self._close_segment(self._t)
        info = self._p.steps[step]
        vals: dict[str, Any] = {"step": step, "title": info.title, "planned_s": info.planned_s}
        if not self._calibrated:
            vals["uncalibrated"] = True
        ev = self._go(
            target, trigger, actor, f"{kind} offered: step {step + 1} {info.title!r}", vals
        )
        self._offer = _Offer(kind, step, ev.seq)
        if new_step:
            self._acc[step].offered = True
            if self._p.checkins.at_step_start:
                self._checkin("step_start", step)

    def _on_offer(self, inp: OfferStep, t: float) -> None:
        trigger, step = self._offer_target(inp.step)
        kind = "resume" if trigger is Trigger.OFFER_RESUME else "step"
        self._make_offer(kind, step, Role.THERAPIST, trigger)

    def _on_consent(self, inp: Consent, t: float) -> None:
        offer = self._offer
        assert offer is not None
        if offer.seq <= self._last_pause_seq:
            raise SessionLogicError("an offer older than the last pause survived it")
        new_step = offer.kind == "step"
        self._step = offer.step
        acc = self._acc[offer.step]
        first = not acc.started
        acc.started = True
        self._offer = None
        self._guidance = None
        self._pause_reason = None
        self._pause_reasons = []
        self._paused_at = None
        self._segment_start = t
        self._last_periodic = t
        vals: dict[str, Any] = {
            "step": offer.step,
            "offer_seq": offer.seq,
            "last_pause_seq": self._last_pause_seq,
            "arousal": self._last_value,
        }
        what = "started" if new_step and first else ("restarted" if new_step else "resumed")
        self._go(S.EXPOSING, Trigger.CONSENT, Role.CLIENT, f"client consented; step {what}", vals)
        if self._last_value is not None and self._fresh(t):
            acc.peak = self._last_value if acc.peak is None else max(acc.peak, self._last_value)

    def _on_decline(self, t: float) -> None:
        offer = self._offer
        assert offer is not None
        self._offer = None
        self._auto_resume_ok = False
        vals: dict[str, Any] = {"step": offer.step, "offer": offer.kind}
        if self._pause_reason is not None:
            vals["pause_reason"] = self._pause_reason.value
        if self._state is S.STEP_OFFERED:
            self._go(S.READY, Trigger.DECLINE, Role.CLIENT, "client declined the step", vals)
        else:
            self._go(S.PAUSED, Trigger.DECLINE, Role.CLIENT, "client declined to resume", vals)

    def _complete(self, t: float, actor: Role, trigger: Trigger, why: str) -> None:
        assert self._step is not None
        self._close_segment(t)
        self._offer = None
        step = self._step
        acc = self._acc[step]
        acc.completed = True
        self._pause_reason = None
        self._pause_reasons = []
        self._paused_at = None
        self._go(
            S.STEP_COMPLETE,
            trigger,
            actor,
            why,
            {"step": step, "exposed_s": acc.exposed_s, "peak_arousal": acc.peak},
        )
        if self._p.checkins.at_step_end:
            self._checkin("step_end", step)
        if self._p.options.auto_offer:
            nxt = self._next_pending_step()
            if nxt is None:
                self._go(S.DEBRIEF, Trigger.ALL_STEPS_DONE, Role.SYSTEM, "every step is complete")
            elif self._calm(t):
                self._make_offer("step", nxt, Role.SYSTEM, Trigger.OFFER_STEP)
            else:
                # Never put an offer in front of a client who is not calm: wait for a fresh value
                # below lower (unknown arousal waits too); the therapist can always offer.
                self._next_offer_waiting = True
                self._emit(
                    "offer_waiting",
                    Role.SYSTEM,
                    f"step {nxt + 1} will be offered once arousal is below {self._th.lower:g}",
                    {
                        "step": nxt,
                        "arousal": self._last_value if self._fresh(t) else None,
                        "lower": self._th.lower,
                    },
                )

    def _on_end(self, t: float) -> None:
        self._next_offer_waiting = False
        if self._state is S.DEBRIEF:
            self._guidance = None
            self._go(S.ENDED, Trigger.END, Role.THERAPIST, "session ended")
            return
        self._close_segment(t)
        self._offer = None
        self._go(S.DEBRIEF, Trigger.END, Role.THERAPIST, "therapist moved to debrief")

    def _on_adjust(self, inp: AdjustThresholds, t: float) -> None:
        new = self._adjusted(inp)
        old = self._th
        self._th = new
        names = ("upper", "lower", "dwell_s", "recovery_s", "max_step_s")
        # A run only continues if the newest value still qualifies under the new thresholds.
        if self._last_value is not None and self._fresh(t):
            if self._last_value < new.upper:
                self._above_since = None
            elif self._above_since is None:
                self._above_since = t
            if self._last_value >= new.lower:
                self._below_since = None
            elif self._below_since is None:
                self._below_since = t
        self._emit(
            "thresholds",
            Role.THERAPIST,
            "therapist adjusted thresholds",
            {
                "old": {n: getattr(old, n) for n in names},
                "new": {n: getattr(new, n) for n in names},
            },
        )

    def _on_suds(self, inp: SudsAnswer, t: float) -> None:
        prompts = tuple(p for p, _ in self._pending)
        for prompt, step in self._pending:
            if step is None:
                continue
            acc = self._acc[step]
            if prompt == "step_start":
                acc.suds_before = inp.value
            elif prompt == "step_end":
                acc.suds_after = inp.value
        steps = [step for _, step in self._pending if step is not None]
        step_index = steps[-1] if steps else self._step
        rec = SudsRecord(t=t, value=inp.value, prompts=prompts, step_index=step_index)
        self._pending = []
        self._suds.append(rec)
        self._emit(
            "checkin",
            Role.CLIENT,
            f"SUDS {inp.value}" + (f" ({', '.join(prompts)})" if prompts else " (unprompted)"),
            {"suds": inp.value, "prompts": list(prompts), "step": step_index},
        )

    def _on_choose(self, inp: ChooseGrounding, t: float) -> None:
        tech = self._technique(inp.technique)
        self._preferred = tech
        st = self._state
        if st is S.EXPOSING:
            self._pause(PauseReason.CLIENT, Role.CLIENT, t, Trigger.PAUSE, "client chose grounding")
            self._start_guidance(tech, t, Role.CLIENT, Trigger.CHOOSE_GROUNDING)
        elif st in (S.PAUSED, S.GROUNDING):
            self._start_guidance(tech, t, Role.CLIENT, Trigger.CHOOSE_GROUNDING)
        else:
            self._start_guidance(tech, t, Role.CLIENT, None)

    # ---- views ----------------------------------------------------------------------------------

    def _step_status(self, i: int) -> str:
        acc = self._acc[i]
        if self._offer is not None and self._offer.step == i and self._offer.kind == "step":
            return "offered"
        if self._step == i and self._state is S.EXPOSING:
            return "exposing"
        if self._step == i and self._state in _PAUSED_STATES:
            return "paused"
        if acc.completed:
            return "completed"
        if acc.started:
            return "left"
        return "pending"

    def _consent_text(self) -> str | None:
        if self._offer is None:
            return None
        step = self._p.steps[self._offer.step]
        n = len(self._p.steps)
        mins = step.planned_s / 60.0
        dur = f"about {mins:.0f} min" if mins >= 1 else f"about {step.planned_s:.0f} s"
        if self._offer.kind == "resume":
            text = f"Would you like to continue step {self._offer.step + 1} of {n}: {step.title}?"
        else:
            text = (
                f"Step {self._offer.step + 1} of {n}: {step.title} ({dur}). {step.description} "
                "Would you like to begin?"
            )
        if not self._calibrated:
            text += " Calibration did not succeed, so automatic pausing may not work."
        return text + " You can pause at any moment."

    def progress(self) -> tuple[StepProgress, ...]:
        """Per-step measured progress so far (the running segment included)."""
        out = []
        for i, (step, acc) in enumerate(zip(self._p.steps, self._acc, strict=True)):
            exposed = acc.exposed_s
            if i == self._step and self._segment_start is not None:
                exposed += self._t - self._segment_start
            out.append(_progress(i, step, acc, exposed))
        return tuple(out)

    def summary(self) -> SessionSummary:
        """The session's measured progress (call at any time; final once ended)."""
        steps = self.progress()
        reasons: dict[str, int] = {}
        recov: list[float] = []
        for s in steps:
            recov.extend(s.recovery_times_s)
            for r in s.pause_reasons:
                reasons[r] = reasons.get(r, 0) + 1
        return SessionSummary(
            client_id=self._client_id,
            protocol_name=self._p.name,
            started_t=self._t0,
            ended_t=self._t,
            final_state=self._state.value,
            steps=steps,
            suds=tuple(self._suds),
            total_exposed_s=sum(s.exposed_s for s in steps),
            total_pauses=sum(s.pauses for s in steps),
            pauses_by_reason=tuple(sorted(reasons.items())),
            mean_recovery_s=sum(recov) / len(recov) if recov else None,
            completed_steps=sum(1 for s in steps if s.completed),
        )

    def snapshot(self) -> SessionSnapshot:
        """The session as screens and recordings see it at the newest time."""
        t = self._t
        th = self._th
        fresh = self._fresh(t)
        dwell = 0.0
        if self._above_since is not None and fresh:
            dwell = 1.0 if th.dwell_s <= 0 else min(1.0, (t - self._above_since) / th.dwell_s)
        recovery = 0.0
        if self._state is S.RECOVERED or self._state is S.RESUME_OFFERED:
            recovery = 1.0
        elif self._below_since is not None and self._paused_at is not None and fresh:
            run = t - max(self._below_since, self._paused_at)
            recovery = 1.0 if th.recovery_s <= 0 else min(1.0, max(0.0, run / th.recovery_s))
        steps = tuple(
            StepInfo(i, s.title, s.description, s.planned_s, s.suds_anchors, self._step_status(i))
            for i, s in enumerate(self._p.steps)
        )
        step_index = self._offer.step if self._offer is not None else self._step
        return SessionSnapshot(
            t=t,
            client_id=self._client_id,
            protocol_name=self._p.name,
            state=self._state,
            step_index=step_index,
            steps=steps,
            # Only meaningful while a step is paused; not carried into ready, debrief, ...
            pause_reason=self._pause_reason if self._state in _PAUSED_STATES else None,
            pause_reasons=tuple(self._pause_reasons) if self._state in _PAUSED_STATES else (),
            thresholds=th,
            guidance=self._guidance,
            consent_needed=self._consent_text(),
            checkin_due=self._pending[0][0] if self._pending else None,
            monitoring_ok=self.monitoring_ok(t),
            last_arousal=self._last_value,
            last_arousal_t=self._last_value_t,
            seq=self._seq,
            state_since_t=self._state_since,
            started_t=self._t0,
            offer=self._offer.kind if self._offer is not None else None,
            checkins_pending=tuple(p for p, _ in self._pending),
            device_connected=not self._device_lost,
            calibrated=self._calibrated,
            calibration_failed=self._calibration_failed,
            calibration_detail=self._calibration_detail,
            recalibrating=self._recal_t is not None,
            calibration_reason=self._recal_reason,
            calibration_notes=self._calibration_notes,
            arousal_pausing=self._calibrated,
            exposed_s=self._exposed(t),
            segment_s=t - self._segment_start if self._segment_start is not None else 0.0,
            paused_since=self._paused_at,
            dwell_progress=dwell,
            recovery_progress=recovery,
            preferred_grounding=self._preferred,
            grounding_menu=self._p.guidance.grounding,
            progress=self.progress(),
            suds=tuple(self._suds),
            client_ready=self._ready_t is not None,
            client_ready_t=self._ready_t,
            calibration_s=float(self._p.calibration_s),
            calibration_started_t=self._recal_t if self._state is not S.CALIBRATING else None,
        )


def _num_or_none(x: object) -> float | None:
    if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
        return None
    return float(x)


def _progress(i: int, step: Step, acc: _StepAcc, exposed: float) -> StepProgress:
    return StepProgress(
        index=i,
        title=step.title,
        offered=acc.offered,
        started=acc.started,
        completed=acc.completed,
        exposed_s=exposed,
        peak_arousal=acc.peak,
        pauses=len(acc.pause_reasons),
        pause_reasons=tuple(acc.pause_reasons),
        recovery_times_s=tuple(acc.recovery_times),
        suds_before=acc.suds_before,
        suds_after=acc.suds_after,
    )
