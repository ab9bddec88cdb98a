"""What crosses the exposure seam: session inputs (observations and commands) and session outputs.

Pure data; every input carries its own time `t` (session clock seconds).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class SessionState(enum.StrEnum):
    CALIBRATING = "calibrating"
    READY = "ready"
    STEP_OFFERED = "step_offered"
    EXPOSING = "exposing"
    PAUSED = "paused"
    GROUNDING = "grounding"
    RECOVERED = "recovered"
    RESUME_OFFERED = "resume_offered"
    STEP_COMPLETE = "step_complete"
    DEBRIEF = "debrief"
    ENDED = "ended"


class PauseReason(enum.StrEnum):
    AROUSAL = "arousal"
    CLIENT = "client"
    THERAPIST = "therapist"
    SIGNAL_LOST = "signal_lost"
    STEP_TOO_LONG = "step_too_long"


class Role(enum.StrEnum):
    CLIENT = "client"
    THERAPIST = "therapist"
    SYSTEM = "system"  # the software itself (arousal, signal loss, timers)


class GroundingTechnique(enum.StrEnum):
    PACED_BREATHING = "paced_breathing"
    SENSORY_54321 = "sensory_5_4_3_2_1"
    COGNITIVE_CHECK = "cognitive_check"
    SELF_COMPASSION = "self_compassion"


# ---- inputs: observations ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ArousalSample:
    """A new arousal estimate (value None = unknown). `moving`: the chest accelerometer says the
    client moves (the protocol's `[session] movement_pauses` decides whether it may pause)."""

    t: float
    value: float | None
    confidence: float = 1.0
    moving: bool = False


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passes with no other input (drives dwell, recovery and step-length timers)."""

    t: float


@dataclass(frozen=True, slots=True)
class SignalLost:
    t: float
    detail: str = ""


@dataclass(frozen=True, slots=True)
class SignalRestored:
    t: float
    gap_s: float | None = None


@dataclass(frozen=True, slots=True)
class CalibrationDone:
    """The resting calibration finished: ok, or failed with a reason the therapist can act on."""

    t: float
    ok: bool
    detail: str = ""
    # What looked unusual about a calibration that passed (a trend across the period, a heart rate
    # far from the client's previous baseline, marginal signal quality): told to the therapist.
    notes: tuple[str, ...] = ()


# ---- inputs: commands (each names who sent it) ---------------------------------------------


@dataclass(frozen=True, slots=True)
class Pause:
    t: float
    role: Role
    note: str = ""
    command_id: str = ""


@dataclass(frozen=True, slots=True)
class Consent:
    """The client agrees to the offered step or to resuming."""

    t: float
    role: Role
    command_id: str = ""


@dataclass(frozen=True, slots=True)
class Decline:
    """The client declines the offered step or resume (the session stays safe and waits)."""

    t: float
    role: Role
    command_id: str = ""


@dataclass(frozen=True, slots=True)
class OfferStep:
    """The therapist offers the next step (or a given step index)."""

    t: float
    role: Role
    step: int | None = None
    command_id: str = ""


@dataclass(frozen=True, slots=True)
class CompleteStep:
    t: float
    role: Role
    command_id: str = ""


@dataclass(frozen=True, slots=True)
class EndSession:
    t: float
    role: Role
    command_id: str = ""


@dataclass(frozen=True, slots=True)
class AdjustThresholds:
    t: float
    role: Role
    upper: float | None = None
    lower: float | None = None
    dwell_s: float | None = None
    recovery_s: float | None = None
    command_id: str = ""
    max_step_s: float | None = None


@dataclass(frozen=True, slots=True)
class SudsAnswer:
    t: float
    role: Role
    value: int  # 0..100
    command_id: str = ""


@dataclass(frozen=True, slots=True)
class ChooseGrounding:
    t: float
    role: Role
    technique: GroundingTechnique
    command_id: str = ""


@dataclass(frozen=True, slots=True)
class Recalibrate:
    """The therapist starts a fresh resting calibration now, at a moment the client is calm.

    What it does in each state is `biofeedback.exposure.rules.RECALIBRATION` (never during
    exposure); `reason` is the therapist's note, kept in the event.
    """

    t: float
    role: Role
    reason: str = ""
    command_id: str = ""


@dataclass(frozen=True, slots=True)
class ReadyToContinue:
    """The client tells the therapist "I'm ready to continue" after a pause.

    A request, never an action: it changes no state and offers nothing. The therapist sees it (a
    `client_ready` event, and `client_ready` in the snapshot) and may offer to resume; only the
    client's Consent to that offer resumes (docs/session.md, "Client-led resume"). What it does
    in each state is `biofeedback.exposure.rules.READY_REQUEST`.
    """

    t: float
    role: Role
    command_id: str = ""


# ---- the resonance-frequency assessment's commands (docs/resonance.md, "Running it live") ----
# The session core (service/core.py) hands these to the assessment it hosts beside the exposure
# session; the exposure session never sees them. Their role rules are ASSESSMENT_ROLE_RULES.


@dataclass(frozen=True, slots=True)
class AssessmentOffer:
    """The therapist offers the breathing-rate assessment; only the client's consent starts it."""

    t: float
    role: Role
    command_id: str = ""


@dataclass(frozen=True, slots=True)
class AssessmentConsent:
    """The client agrees to the assessment on offer."""

    t: float
    role: Role
    command_id: str = ""


@dataclass(frozen=True, slots=True)
class AssessmentDecline:
    """The client declines the assessment on offer."""

    t: float
    role: Role
    command_id: str = ""


@dataclass(frozen=True, slots=True)
class AssessmentStop:
    """Stop the assessment now (client or therapist); never refused, what was measured is kept."""

    t: float
    role: Role
    command_id: str = ""


@dataclass(frozen=True, slots=True)
class ChooseBreathingRate:
    """The client's own breathing rate for the pacer (breaths/min), over the measured one;
    None goes back to the measured rate."""

    t: float
    role: Role
    rate_bpm: float | None = None
    command_id: str = ""


AssessmentCommand = (
    AssessmentOffer | AssessmentConsent | AssessmentDecline | AssessmentStop | ChooseBreathingRate
)

ASSESSMENT_ROLE_RULES: Mapping[type, frozenset[Role]] = {
    AssessmentOffer: frozenset({Role.THERAPIST}),
    AssessmentConsent: frozenset({Role.CLIENT}),
    AssessmentDecline: frozenset({Role.CLIENT}),
    AssessmentStop: frozenset({Role.CLIENT, Role.THERAPIST}),
    ChooseBreathingRate: frozenset({Role.CLIENT}),
}


Command = (
    Pause
    | Consent
    | Decline
    | OfferStep
    | CompleteStep
    | EndSession
    | AdjustThresholds
    | SudsAnswer
    | ChooseGrounding
    | Recalibrate
    | ReadyToContinue
    | AssessmentCommand
)
SessionInput = ArousalSample | Tick | SignalLost | SignalRestored | CalibrationDone | Command


# ---- observations for the signal pipeline ------------------------------------------------------
# A strap's raw ECG and chest acceleration (Polar H10, docs/ecg.md) change how beats are judged and
# what arousal says. They reach the session core as inputs like any other, so the recording's
# input log holds them and replay reproduces the session exactly (service/chest_signals.py).


@dataclass(frozen=True, slots=True)
class EcgVerdictReport:
    """What the ECG says about the RR interval the strap gave at `beat_t` ("normal",
    "ectopic" or "unknown": signal.ecg_reconcile.EcgVerdict)."""

    t: float
    beat_t: float
    verdict: str


@dataclass(frozen=True, slots=True)
class MovementReport:
    """The chest accelerometer's movement index over the second ending at `t` (mg) and whether
    the client counts as moving (signal.movement.MovementSample)."""

    t: float
    moving: bool
    index_mg: float


SignalObservation = EcgVerdictReport | MovementReport


# ---- outputs ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BreathingPattern:
    """Seconds of each phase; 4/0/6/0 is 6 breaths per minute."""

    inhale_s: float = 4.0
    hold_in_s: float = 0.0
    exhale_s: float = 6.0
    hold_out_s: float = 0.0

    @property
    def period_s(self) -> float:
        return self.inhale_s + self.hold_in_s + self.exhale_s + self.hold_out_s

    @property
    def rate_bpm(self) -> float:
        return 60.0 / self.period_s


@dataclass(frozen=True, slots=True)
class Guidance:
    """Grounding in progress. Breathing phases follow from `start_t` and `breathing`."""

    start_t: float
    technique: GroundingTechnique
    breathing: BreathingPattern | None  # set for paced breathing
    prompt: str  # calm text for the client's screen


@dataclass(frozen=True, slots=True)
class SessionEvent:
    """One thing that happened in the session: who, why, when, and the values that caused it."""

    seq: int
    t: float
    kind: (
        str  # "transition", "checkin_due", "checkin", "thresholds", "guidance", "client_ready", ...
    )
    actor: Role
    from_state: SessionState
    to_state: SessionState
    reason: str
    values: Mapping[str, Any] = field(default_factory=dict)
