"""The demo protocol, driven like the demo drives it, shows a pause and a recovery quickly.

A toy arousal response (rises while exposing, falls otherwise) and a cooperative client who
answers check-ins and consents a few seconds after each offer. Also checks that snapshots and
events are JSON-friendly.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

from biofeedback.exposure import (
    ArousalSample,
    CalibrationDone,
    Consent,
    ExposureSession,
    Role,
    SessionEvent,
    SessionState,
    SudsAnswer,
    Tick,
    load_protocol,
)
from tests.exposure.helpers import now
from tests.support import REPO_ROOT

S = SessionState


def _jsonable(x: Any) -> Any:
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return {f.name: _jsonable(getattr(x, f.name)) for f in dataclasses.fields(x)}
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    return x


def test_demo_shows_pause_and_recovery_within_two_and_a_half_minutes() -> None:
    proto = load_protocol(REPO_ROOT / "config" / "protocols" / "demo.toml")
    s = ExposureSession(proto, t=0.0, client_id="demo", needs_calibration=True)
    arousal = 30.0
    log: list[SessionEvent] = []
    offered_at: float | None = None
    t = 0.0
    while t < 300.0 and now(s) is not S.ENDED:
        state = s.state
        arousal += 4.0 if state is S.EXPOSING else -3.0
        arousal = min(90.0, max(25.0, arousal))
        log += s.handle(ArousalSample(t, arousal))
        if t == proto.calibration_s:
            log += s.handle(CalibrationDone(t, ok=True))
        snap = s.snapshot()
        if snap.checkin_due:
            log += s.handle(SudsAnswer(t + 0.1, Role.CLIENT, 40))
        if snap.consent_needed:
            offered_at = t if offered_at is None else offered_at
            if t - offered_at >= 3.0:
                log += s.handle(Consent(t + 0.2, Role.CLIENT))
                offered_at = None
        log += s.handle(Tick(t + 0.5))
        json.dumps(_jsonable(s.snapshot()))  # every snapshot is JSON-friendly
        t += 1.0
    reasons = [e.reason.split(":")[0] for e in log if e.kind == "transition"]
    pause_t = next(e.t for e in log if e.reason.startswith("arousal_high"))
    recover_t = next(e.t for e in log if e.reason.startswith("recovery"))
    assert pause_t < recover_t <= 150.0
    assert "consent" in reasons
    assert "start_grounding" in reasons
    first = s.progress()[0]
    assert first.pauses >= 2
    assert first.recovery_times_s
    assert first.suds_before == 40
    for e in log:
        text = json.dumps(_jsonable(e))
        assert "NaN" not in text
    assert all(math.isfinite(e.t) for e in log)
