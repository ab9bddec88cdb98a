"""The session's rules as data: which role may send which command, and the transition table.

`ExposureSession` refuses to make any state change that is not a row of `TRANSITIONS`, and
`docs/session.md` is checked against `transition_table_markdown()` by a test, so the code, the table
and the diagram cannot drift apart.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from biofeedback.exposure.messages import (
    AdjustThresholds,
    ChooseGrounding,
    CompleteStep,
    Consent,
    Decline,
    EndSession,
    OfferStep,
    Pause,
    ReadyToContinue,
    Recalibrate,
    Role,
    SessionState,
    SudsAnswer,
)

S = SessionState

#: Who may send each command. SYSTEM sends no commands: it is the actor of observations
#: (arousal samples, ticks, signal loss/restore, calibration results) only.
ROLE_RULES: Mapping[type, frozenset[Role]] = {
    Pause: frozenset({Role.CLIENT, Role.THERAPIST}),
    Consent: frozenset({Role.CLIENT}),
    Decline: frozenset({Role.CLIENT}),
    SudsAnswer: frozenset({Role.CLIENT}),
    ChooseGrounding: frozenset({Role.CLIENT}),
    OfferStep: frozenset({Role.THERAPIST}),
    CompleteStep: frozenset({Role.THERAPIST}),
    EndSession: frozenset({Role.THERAPIST}),
    AdjustThresholds: frozenset({Role.THERAPIST}),
    Recalibrate: frozenset({Role.THERAPIST}),
    ReadyToContinue: frozenset({Role.CLIENT}),
}


def may_send(role: Role | str, command: type) -> bool:
    """True when `role` may send commands of type `command` (e.g. `may_send("client", Pause)`)."""
    try:
        r = Role(role)
    except ValueError:
        return False
    return r in ROLE_RULES.get(command, frozenset())


class Trigger(enum.StrEnum):
    """What caused a transition (the `reason` of a transition event starts with this)."""

    CALIBRATION_OK = "calibration_ok"
    OFFER_STEP = "offer_step"
    OFFER_RESUME = "offer_resume"
    CONSENT = "consent"
    DECLINE = "decline"
    PAUSE = "pause"
    AROUSAL_HIGH = "arousal_high"
    SIGNAL_LOST = "signal_lost"
    STEP_TOO_LONG = "step_too_long"
    START_GROUNDING = "start_grounding"
    CHOOSE_GROUNDING = "choose_grounding"
    RECOVERY = "recovery"
    COMPLETE_STEP = "complete_step"
    PLANNED_TIME_REACHED = "planned_time_reached"
    ALL_STEPS_DONE = "all_steps_done"
    END = "end"


@dataclass(frozen=True, slots=True)
class Transition:
    """One row of the table: in `source`, `trigger` (sent by `by`) leads to `target` when `when`."""

    source: SessionState
    trigger: Trigger
    target: SessionState
    by: str  # "client", "therapist", "client|therapist", "system"
    when: str = ""


T = Trigger
_CT = "client|therapist"
_STEP_STATES_PAUSED = (S.PAUSED, S.GROUNDING, S.RECOVERED, S.RESUME_OFFERED)

TRANSITIONS: tuple[Transition, ...] = (
    # calibrating
    Transition(S.CALIBRATING, T.CALIBRATION_OK, S.READY, "system", "CalibrationDone(ok=True)"),
    Transition(
        S.CALIBRATING,
        T.OFFER_STEP,
        S.STEP_OFFERED,
        "therapist",
        "only after CalibrationDone(ok=False); the consent text says pausing may not work",
    ),
    Transition(S.CALIBRATING, T.PAUSE, S.CALIBRATING, _CT, "acknowledged: nothing to pause"),
    Transition(S.CALIBRATING, T.END, S.DEBRIEF, "therapist"),
    # ready
    Transition(S.READY, T.OFFER_STEP, S.STEP_OFFERED, "therapist|system", "system: auto_offer"),
    Transition(S.READY, T.PAUSE, S.READY, _CT, "acknowledged: nothing to pause"),
    Transition(S.READY, T.END, S.DEBRIEF, "therapist"),
    # step offered
    Transition(S.STEP_OFFERED, T.CONSENT, S.EXPOSING, "client", "monitoring ok"),
    Transition(S.STEP_OFFERED, T.DECLINE, S.READY, "client", "offer withdrawn"),
    Transition(S.STEP_OFFERED, T.OFFER_STEP, S.STEP_OFFERED, "therapist", "a different offer"),
    Transition(S.STEP_OFFERED, T.PAUSE, S.PAUSED, _CT, "offer withdrawn"),
    Transition(
        S.STEP_OFFERED,
        T.AROUSAL_HIGH,
        S.PAUSED,
        "system",
        "offer withdrawn: arousal >= upper for dwell_s",
    ),
    Transition(S.STEP_OFFERED, T.END, S.DEBRIEF, "therapist"),
    # exposing
    Transition(S.EXPOSING, T.PAUSE, S.PAUSED, _CT),
    Transition(S.EXPOSING, T.AROUSAL_HIGH, S.PAUSED, "system", "arousal >= upper for dwell_s"),
    Transition(S.EXPOSING, T.SIGNAL_LOST, S.PAUSED, "system", "SignalLost or no samples"),
    Transition(S.EXPOSING, T.STEP_TOO_LONG, S.PAUSED, "system", "continuous exposure max_step_s"),
    Transition(S.EXPOSING, T.COMPLETE_STEP, S.STEP_COMPLETE, "therapist"),
    Transition(
        S.EXPOSING,
        T.PLANNED_TIME_REACHED,
        S.STEP_COMPLETE,
        "system",
        "auto_complete and exposed time >= planned_s",
    ),
    Transition(S.EXPOSING, T.END, S.DEBRIEF, "therapist"),
    # paused
    Transition(
        S.PAUSED, T.START_GROUNDING, S.GROUNDING, "system", "pause reason arousal: preferred"
    ),
    Transition(S.PAUSED, T.CHOOSE_GROUNDING, S.GROUNDING, "client"),
    Transition(S.PAUSED, T.RECOVERY, S.RECOVERED, "system", "arousal < lower for recovery_s"),
    Transition(S.PAUSED, T.PAUSE, S.PAUSED, _CT, "acknowledged; a client pause makes it 'client'"),
    # grounding
    Transition(S.GROUNDING, T.CHOOSE_GROUNDING, S.GROUNDING, "client", "switch technique"),
    Transition(S.GROUNDING, T.RECOVERY, S.RECOVERED, "system", "arousal < lower for recovery_s"),
    Transition(
        S.GROUNDING, T.PAUSE, S.GROUNDING, _CT, "acknowledged; a client pause makes it 'client'"
    ),
    # recovered
    Transition(
        S.RECOVERED,
        T.OFFER_RESUME,
        S.RESUME_OFFERED,
        "therapist|system",
        "system: auto_offer and the last pause was the system's (arousal, signal, step length)",
    ),
    Transition(S.RECOVERED, T.PAUSE, S.PAUSED, _CT, "hold: recovery must be shown again"),
    Transition(
        S.RECOVERED,
        T.AROUSAL_HIGH,
        S.PAUSED,
        "system",
        "arousal >= upper for dwell_s: ground again",
    ),
    Transition(
        S.RECOVERED,
        T.OFFER_STEP,
        S.STEP_OFFERED,
        "therapist|system",
        "therapist: a different step; system: auto_offer re-offers a step withdrawn on arousal",
    ),
    # resume offered
    Transition(S.RESUME_OFFERED, T.CONSENT, S.EXPOSING, "client", "monitoring ok"),
    Transition(S.RESUME_OFFERED, T.DECLINE, S.PAUSED, "client", "offer withdrawn"),
    Transition(S.RESUME_OFFERED, T.PAUSE, S.PAUSED, _CT, "offer withdrawn"),
    Transition(
        S.RESUME_OFFERED,
        T.AROUSAL_HIGH,
        S.PAUSED,
        "system",
        "offer withdrawn: arousal >= upper for dwell_s",
    ),
    Transition(S.RESUME_OFFERED, T.OFFER_RESUME, S.RESUME_OFFERED, "therapist", "offer renewed"),
    # step complete
    Transition(
        S.STEP_COMPLETE,
        T.OFFER_STEP,
        S.STEP_OFFERED,
        "therapist|system",
        "system: auto_offer, once a fresh arousal value is below lower",
    ),
    Transition(
        S.STEP_COMPLETE, T.ALL_STEPS_DONE, S.DEBRIEF, "system", "auto_offer and no step left"
    ),
    Transition(S.STEP_COMPLETE, T.PAUSE, S.STEP_COMPLETE, _CT, "acknowledged: nothing to pause"),
    Transition(S.STEP_COMPLETE, T.END, S.DEBRIEF, "therapist"),
    # debrief, ended
    Transition(S.DEBRIEF, T.PAUSE, S.DEBRIEF, _CT, "acknowledged: nothing to pause"),
    Transition(S.DEBRIEF, T.END, S.ENDED, "therapist"),
    Transition(S.ENDED, T.PAUSE, S.ENDED, _CT, "acknowledged: nothing to pause"),
    # the therapist's choices while a step is paused (same rows for each paused state)
    *(
        Transition(src, T.OFFER_RESUME, S.RESUME_OFFERED, "therapist", "resume the current step")
        for src in (S.PAUSED, S.GROUNDING)
    ),
    *(
        Transition(src, T.OFFER_STEP, S.STEP_OFFERED, "therapist", "a different step")
        for src in (S.PAUSED, S.GROUNDING, S.RESUME_OFFERED)
    ),
    *(
        Transition(src, T.COMPLETE_STEP, S.STEP_COMPLETE, "therapist")
        for src in _STEP_STATES_PAUSED
    ),
    *(Transition(src, T.END, S.DEBRIEF, "therapist") for src in _STEP_STATES_PAUSED),
)

ALLOWED: frozenset[tuple[SessionState, Trigger, SessionState]] = frozenset(
    (tr.source, tr.trigger, tr.target) for tr in TRANSITIONS
)


@dataclass(frozen=True, slots=True)
class RecalibrationRule:
    """What a therapist's `Recalibrate` does in one state: `effect` when `allowed`, else the
    refusal the therapist reads (the session raises CommandError with it)."""

    state: SessionState
    allowed: bool
    effect: str


_RECAL_ALONGSIDE = (
    "a fresh calibration runs alongside, the state does not change; the current baseline stays in "
    "use until the new one passes"
)
#: The therapist's fresh calibration, state by state (docs/session.md, "Recalibration"). A
#: calibration measures rest: never during exposure, an open offer (the client is deciding about
#: exposure) or grounding (guided breathing changes the very rhythm being measured).
RECALIBRATION: Mapping[SessionState, RecalibrationRule] = {
    r.state: r
    for r in (
        RecalibrationRule(
            S.CALIBRATING, True, "restarts the running calibration from now (nothing else changes)"
        ),
        RecalibrationRule(S.READY, True, _RECAL_ALONGSIDE),
        RecalibrationRule(
            S.STEP_OFFERED,
            False,
            "an offer is open and the client is deciding about exposure, which is not rest: "
            "pause first (the offer is withdrawn), then recalibrate",
        ),
        RecalibrationRule(
            S.EXPOSING,
            False,
            "a step is in progress: a calibration measures rest, never exposure; pause the step "
            "and recalibrate once the client has settled",
        ),
        RecalibrationRule(S.PAUSED, True, _RECAL_ALONGSIDE),
        RecalibrationRule(
            S.GROUNDING,
            False,
            "grounding is running and guided breathing changes the heart rhythm being measured: "
            "recalibrate once the client has recovered",
        ),
        RecalibrationRule(S.RECOVERED, True, _RECAL_ALONGSIDE),
        RecalibrationRule(
            S.RESUME_OFFERED,
            False,
            "an offer to resume is open and the client is deciding about exposure, which is not "
            "rest: pause first (the offer is withdrawn), then recalibrate",
        ),
        RecalibrationRule(S.STEP_COMPLETE, True, _RECAL_ALONGSIDE),
        RecalibrationRule(S.DEBRIEF, True, _RECAL_ALONGSIDE),
        RecalibrationRule(S.ENDED, False, "the session has ended"),
    )
}


@dataclass(frozen=True, slots=True)
class ReadyRule:
    """What a client's `ReadyToContinue` ("I'm ready to continue") does in one state: `effect`
    when `allowed`, else the refusal the client's screen shows (the session raises CommandError)."""

    state: SessionState
    allowed: bool
    effect: str


_READY_TOLD = (
    "a `client_ready` event tells the therapist; the state does not change and nothing is "
    "offered: the therapist may offer to resume (or another step), and only the client's consent "
    "to that offer resumes. A repeated request adds no event; any pause withdraws it"
)
_READY_OFFER_OPEN = "an offer is open: the client answers it (yes or not yet)"
_READY_NOTHING_PAUSED = "no step is paused"
#: The client's "I'm ready to continue", state by state (docs/session.md, "Client-led resume"). A
#: request only: it never resumes, offers or changes state by itself.
READY_REQUEST: Mapping[SessionState, ReadyRule] = {
    r.state: r
    for r in (
        ReadyRule(S.CALIBRATING, False, _READY_NOTHING_PAUSED + " (calibration is running)"),
        ReadyRule(S.READY, False, _READY_NOTHING_PAUSED),
        ReadyRule(S.STEP_OFFERED, False, _READY_OFFER_OPEN),
        ReadyRule(S.EXPOSING, False, "the step is running"),
        ReadyRule(S.PAUSED, True, _READY_TOLD),
        ReadyRule(S.GROUNDING, True, _READY_TOLD),
        ReadyRule(S.RECOVERED, True, _READY_TOLD),
        ReadyRule(S.RESUME_OFFERED, False, _READY_OFFER_OPEN),
        ReadyRule(S.STEP_COMPLETE, False, _READY_NOTHING_PAUSED + " (the step is complete)"),
        ReadyRule(S.DEBRIEF, False, _READY_NOTHING_PAUSED + " (the session is in debrief)"),
        ReadyRule(S.ENDED, False, "the session has ended"),
    )
}


def _sorted_rows() -> list[Transition]:
    order = {s: i for i, s in enumerate(SessionState)}
    torder = {t: i for i, t in enumerate(Trigger)}
    return sorted(
        TRANSITIONS, key=lambda tr: (order[tr.source], torder[tr.trigger], order[tr.target])
    )


def transition_table_markdown() -> str:
    """The transition table as Markdown, in state order (what docs/session.md must contain)."""
    lines = ["| from | trigger | to | by | when |", "|---|---|---|---|---|"]
    for tr in _sorted_rows():
        when = tr.when.replace("|", "/")
        by = tr.by.replace("|", " or ")
        lines.append(f"| {tr.source} | {tr.trigger} | {tr.target} | {by} | {when} |")
    return "\n".join(lines)


def transition_mermaid() -> str:
    """The transition table as a mermaid stateDiagram (acknowledging self-loops left out)."""
    lines = ["stateDiagram-v2", "    [*] --> calibrating", "    [*] --> ready"]
    seen: set[tuple[SessionState, SessionState]] = set()
    labels: dict[tuple[SessionState, SessionState], list[str]] = {}
    for tr in _sorted_rows():
        if tr.source == tr.target:
            continue
        key = (tr.source, tr.target)
        labels.setdefault(key, [])
        if tr.trigger not in labels[key]:
            labels[key].append(tr.trigger)
        seen.add(key)
    for tr in _sorted_rows():
        key = (tr.source, tr.target)
        if key in seen:
            seen.discard(key)
            lines.append(f"    {key[0]} --> {key[1]}: {', '.join(labels[key])}")
    lines.append("    ended --> [*]")
    return "\n".join(lines)


def recalibration_table_markdown() -> str:
    """What `Recalibrate` does in each state, as Markdown (what docs/session.md must contain)."""
    lines = ["| state | recalibrate | what happens |", "|---|---|---|"]
    for state in SessionState:
        r = RECALIBRATION[state]
        lines.append(f"| {state} | {'yes' if r.allowed else 'refused'} | {r.effect} |")
    return "\n".join(lines)


def ready_table_markdown() -> str:
    """What the client's `ReadyToContinue` does in each state, as Markdown (docs/session.md)."""
    lines = ["| state | ready | what happens |", "|---|---|---|"]
    for state in SessionState:
        r = READY_REQUEST[state]
        lines.append(f"| {state} | {'yes' if r.allowed else 'refused'} | {r.effect} |")
    return "\n".join(lines)


def role_table_markdown() -> str:
    """Who may send which command, as Markdown (what docs/session.md must contain)."""
    lines = ["| command | client | therapist | system |", "|---|---|---|---|"]
    for cmd, roles in ROLE_RULES.items():
        marks = ["yes" if r in roles else "no" for r in (Role.CLIENT, Role.THERAPIST, Role.SYSTEM)]
        lines.append(f"| {cmd.__name__} | " + " | ".join(marks) + " |")
    return "\n".join(lines)
