"""Builders shared by the exposure tests (protocol text, sessions driven to a given state)."""

from __future__ import annotations

from biofeedback.exposure import (
    ArousalSample,
    CalibrationDone,
    Consent,
    ExposureSession,
    OfferStep,
    Role,
    SessionEvent,
    SessionState,
    parse_protocol,
)
from biofeedback.exposure.protocol import ExposureProtocol

C = Role.CLIENT
T = Role.THERAPIST

BASE = """\
name = "Test"
calibration_s = 30

[thresholds]
upper = 70
lower = 40
dwell_s = 5
recovery_s = 10
max_step_s = 300

[[steps]]
title = "One"
description = "first"
planned_s = 60

[[steps]]
title = "Two"
description = "second"
planned_s = 60
"""


def protocol(extra: str = "", **thresholds: float) -> ExposureProtocol:
    text = BASE + extra
    for k, v in thresholds.items():
        text = text.replace(f"\n{k} = ", f"\n{k} = {v} #", 1)
    return parse_protocol(text, source="test.toml")


def feed(s: ExposureSession, t0: float, t1: float, value: float | None) -> list[SessionEvent]:
    """One arousal sample per second over [t0, t1)."""
    out: list[SessionEvent] = []
    t = t0
    while t < t1:
        out += s.handle(ArousalSample(t, value))
        t += 1.0
    return out


def exposing(proto: ExposureProtocol | None = None, t: float = 0.0) -> ExposureSession:
    """A calibrated session exposing step 0 at time t + 2, arousal 50 flowing."""
    s = ExposureSession(proto or protocol(), t=t, client_id="c-1", needs_calibration=True)
    s.handle(ArousalSample(t, 50.0))
    s.handle(CalibrationDone(t, ok=True))
    s.handle(OfferStep(t + 1, T))
    s.handle(Consent(t + 2, C))
    assert s.state is SessionState.EXPOSING
    return s


def transitions(events: list[SessionEvent]) -> list[tuple[str, str]]:
    return [(e.from_state.value, e.to_state.value) for e in events if e.kind == "transition"]


def now(s: ExposureSession) -> SessionState:
    """The session's state (a call, so type checkers do not narrow it across inputs)."""
    return s.state
