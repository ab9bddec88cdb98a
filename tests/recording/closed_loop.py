"""A whole session through the real SessionCore and simulated strap, recorded as the runner does.

Synchronous and deterministic: strap notifications, one Tick per second and the client's answers
(consent to every offer, a SUDS answer to every check-in) are merged in session-time order.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from biofeedback.devices.physiology import SimProfile
from biofeedback.devices.simulated import StrapEmulator
from biofeedback.exposure.messages import (
    Consent,
    GroundingTechnique,
    Role,
    SessionState,
    SudsAnswer,
    Tick,
)
from biofeedback.exposure.protocol import load_protocol
from biofeedback.recording import RecordingInfo, SessionRecorder, record_output
from biofeedback.recording.replay import meta_dataclass
from biofeedback.service.core import SessionCore
from biofeedback.signal.measures import SignalConfig
from tests.support import REPO_ROOT

PROTOCOL = REPO_ROOT / "config" / "protocols" / "demo.toml"
T0 = 1_764_064_800.0  # 2025-11-25 10:00:00 UTC
PROFILE = SimProfile(dropout_every_s=170.0, malformed_every_s=97.0, ectopic_per_min=2.0)


# The demo protocol calibrates for 30 s: about 35 beats, so ask for 25 clean ones.
SIGNAL = SignalConfig(calibration_s=30.0, calibration_min_beats=25)


def make_core(client_id: str, start_t: float, signal: SignalConfig = SIGNAL) -> SessionCore:
    return SessionCore(
        client_id=client_id,
        protocol=load_protocol(PROTOCOL),
        signal_config=signal,
        start_t=start_t,
    )


def core_from_recording(info: RecordingInfo) -> SessionCore:
    """The replay factory: the same core the live run used, rebuilt from the sidecar."""
    assert info.start_t is not None
    signal = meta_dataclass(info, "signal_config", SignalConfig)
    assert signal is not None
    return make_core(info.client_id, info.start_t, signal)


def run_session(
    root: Path,
    duration_s: float,
    *,
    seed: int = 7,
    client_id: str = "demo",
    on_tick: Callable[[float], None] | None = None,
) -> Path:
    core = make_core(client_id, T0)
    strap = StrapEmulator("SimStrap", start_t=T0, seed=seed, profile=PROFILE)
    meta = {"start_t": T0, "seed": seed, "signal_config": SIGNAL, "protocol_file": str(PROTOCOL)}
    rec = SessionRecorder(root, client_id=client_id, meta=meta)
    answers: list[Any] = []
    answered: set[tuple[str, str]] = set()

    def feed(item: Any) -> None:
        out = core.feed(item)
        rec.input(item, out.seq)
        record_output(rec, out)
        snap = core.snapshot
        exposure = 0.0
        if snap.state is SessionState.EXPOSING:
            exposure = min(1.0, 0.8 + 0.1 * (snap.step_index or 0))
        g = snap.guidance
        paced = None
        if g is not None and g.technique is GroundingTechnique.PACED_BREATHING and g.breathing:
            paced = g.breathing.rate_bpm
        strap.set_stimulus(exposure=exposure, paced_breathing_bpm=paced)
        if snap.consent_needed and ("consent", f"{snap.seq}") not in answered:
            answered.add(("consent", f"{snap.seq}"))
            answers.append(Consent(item.t + 3.0, Role.CLIENT, f"consent-{snap.seq}"))
        if snap.checkin_due and ("suds", snap.checkin_due + str(snap.seq)) not in answered:
            answered.add(("suds", snap.checkin_due + str(snap.seq)))
            value = 30 if snap.last_arousal is None else round(min(100.0, snap.last_arousal))
            answers.append(SudsAnswer(item.t + 1.0, Role.CLIENT, value, f"suds-{snap.seq}"))

    with rec:
        for r in strap.start():
            feed(r)
        next_tick = T0 + 1.0
        end = T0 + duration_s
        while True:
            due = strap.next_due()
            ans_t = min((a.t for a in answers), default=float("inf"))
            t = min(due, next_tick, ans_t)
            if t > end:
                break
            if t == ans_t:
                a = min(answers, key=lambda x: x.t)
                answers.remove(a)
                if core.snapshot.consent_needed or not isinstance(a, Consent):
                    feed(a)
            elif t == next_tick:
                feed(Tick(t))
                next_tick += 1.0
                if on_tick is not None:
                    on_tick(t - T0)
            else:
                for r in strap.step(due):
                    feed(r)
            rec.flush_if_due(time.monotonic())
        rec.snapshot(core.snapshot)
    return rec.path
