"""The therapist's `recalibrate` through the service core: the pipeline calibrates from the
command's time, the new baseline replaces the old one (and is handed out to be saved), a failure
keeps the old one, unusual calibrations reach the therapist as a notice."""

from __future__ import annotations

import numpy as np

from biofeedback.exposure import (
    ChooseGrounding,
    Consent,
    ExposureProtocol,
    GroundingTechnique,
    OfferStep,
    Recalibrate,
    Role,
    SessionState,
    Step,
)
from biofeedback.service.core import CoreOutput, SessionCore
from biofeedback.signal import Baseline, SignalConfig
from biofeedback.signal.synthetic import rr_series
from tests.hrv.test_one_estimator import notifications

T = Role.THERAPIST
OLD = Baseline("c-1", 0.0, 120.0, 140, 0.0, 69.0, 5.0, 3.7, 0.2, None)
SLOWER = Baseline("c-1", 0.0, 120.0, 140, 0.0, 52.0, 4.0, 4.2, 0.2, None)


def core(baseline: Baseline | None = OLD) -> SessionCore:
    proto = ExposureProtocol(name="p", steps=(Step("one", "first", 60.0),))
    return SessionCore(
        client_id="c-1",
        protocol=proto,
        signal_config=SignalConfig(),
        start_t=999.0,
        baseline=baseline,
        calibration_s=120.0,
    )


def strap(duration_s: float, hr_bpm: float = 70.0, seed: int = 1) -> list[object]:
    t, rr = rr_series(duration_s, hr_bpm=hr_bpm, seed=seed)
    return list(notifications(t, rr))


def run(c: SessionCore, items: list[object]) -> list[CoreOutput]:
    return [c.feed(i) for i in items]  # type: ignore[arg-type]


def test_recalibrate_calibrates_from_the_command_and_replaces_the_baseline() -> None:
    c = core(SLOWER)
    items = strap(400.0)
    outs = run(c, items[:60])  # a minute with the saved baseline
    t_cmd = c.last_t
    out = c.feed(Recalibrate(t_cmd, T, "calm now", command_id="th-1"))
    assert out.command is not None
    assert out.command.ok
    assert c.pipeline.calibrating
    [ev] = [e for e in out.events if e.kind == "calibration"]
    assert ev.values["reason"] == "calm now"
    assert c.snapshot.recalibrating
    outs = run(c, items[60:])
    new = [o.baseline for o in outs if o.baseline is not None]
    assert len(new) == 1  # handed out once, to be saved for the next session
    b = new[0]
    assert b.created_t - b.duration_s == t_cmd  # measured from the command on
    assert c.pipeline.baseline is b
    assert 67.0 < b.hr_mean_bpm < 73.0
    events = [e for o in outs for e in o.events]
    done = [e for e in events if e.kind == "calibration"]
    assert "new baseline is in use" in done[0].reason
    # 70 bpm against a previous 52: the therapist is told
    notice = [e for e in events if e.kind == "calibration_notice"]
    assert notice
    assert "above the client's previous baseline (52 bpm)" in notice[0].reason
    assert not c.snapshot.recalibrating
    assert c.snapshot.calibration_notes == tuple(notice[0].values["notes"])
    assert not c.pipeline.calibrating


def test_refused_during_exposure_and_nothing_starts() -> None:
    c = core()
    items = strap(120.0)
    run(c, items[:20])
    c.feed(OfferStep(c.last_t, T))
    c.feed(Consent(c.last_t, Role.CLIENT))
    assert c.snapshot.state is SessionState.EXPOSING
    out = c.feed(Recalibrate(c.last_t, T))
    assert out.command is not None
    assert not out.command.ok
    assert out.command.error is not None
    assert "never exposure" in out.command.error
    assert not c.pipeline.calibrating


def test_a_failed_fresh_calibration_keeps_the_old_baseline_and_does_not_retry() -> None:
    c = core()
    items = strap(300.0)
    run(c, items[:30])
    c.feed(Recalibrate(c.last_t, T))
    # the strap goes silent for the whole calibration, then comes back
    t0 = c.last_t
    outs = run(c, [n for n in strap(400.0, seed=3) if n.t > t0 + 130.0])  # type: ignore[attr-defined]
    events = [e for o in outs for e in o.events if e.kind == "calibration"]
    assert events
    assert "previous baseline stays in use" in events[0].reason
    assert "clean beats" in events[0].reason
    assert c.pipeline.baseline is OLD
    assert not c.pipeline.calibrating  # the therapist decides whether to try again
    assert all(o.baseline is None for o in outs)


def test_grounding_cancels_the_pipeline_calibration() -> None:
    c = core()
    items = strap(120.0)
    run(c, items[:20])
    c.feed(Recalibrate(c.last_t, T))
    assert c.pipeline.calibrating
    c.feed(ChooseGrounding(c.last_t, Role.CLIENT, GroundingTechnique.PACED_BREATHING))
    run(c, items[20:22])
    assert not c.pipeline.calibrating
    assert c.pipeline.baseline is OLD


def test_restart_of_the_first_calibration() -> None:
    c = core(baseline=None)
    items = strap(400.0, seed=7)
    run(c, items[:50])
    assert c.pipeline.calibrating
    t_cmd = c.last_t
    c.feed(Recalibrate(t_cmd, T, "client was talking"))
    outs = run(c, items[50:])
    [b] = [o.baseline for o in outs if o.baseline is not None]
    assert b.created_t - b.duration_s == t_cmd
    assert c.snapshot.state is SessionState.READY
    assert np.isfinite(b.hr_sd_bpm)
