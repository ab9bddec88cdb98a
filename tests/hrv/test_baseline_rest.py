"""A baseline that represents rest (docs/arousal.md, "Baseline").

Unit tests of the calibration statistics, and the targets of issue 11 on every shared recording
with a rest longer than the calibration: median arousal over the rest that follows 15-35, and no
pause at the default thresholds nor at the demo protocol's.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import numpy as np
import pytest

from biofeedback.errors import CalibrationError
from biofeedback.signal import Baseline, SignalConfig, SignalPipeline
from biofeedback.signal.baseline import (
    BETWEEN_MINUTE_HR_BPM,
    BETWEEN_MINUTE_LN_RMSSD,
    Calibration,
    hr_statistics,
    ln_rmssd_statistics,
    window_bounds,
)
from biofeedback.signal.synthetic import rr_series
from tests.hrv.rest_data import default_protocol, demo_protocol, longer_than, rests, score

CFG = SignalConfig()


def test_windows_do_not_overlap_and_cover_whole_minutes() -> None:
    assert window_bounds(10.0, 130.0, 60.0) == [(10.0, 70.0), (70.0, 130.0)]
    assert window_bounds(10.0, 129.5, 60.0) == [(10.0, 70.0), (70.0, 130.0)]  # last beat early
    assert window_bounds(10.0, 69.0, 60.0) == [(10.0, 70.0)]
    assert window_bounds(10.0, 60.0, 60.0) == []


def test_heart_rate_centre_ignores_a_burst_and_spread_adds_minute_to_minute_variability() -> None:
    t = [float(i) for i in range(1, 121)]
    hr = [70.0 + (1.0 if i % 2 else -1.0) for i in range(120)]
    centre, spread, k = hr_statistics(t, hr, 0.0, 120.0, 60.0)
    assert (centre, k) == (70.0, 2)
    within = 1.4826 * 1.0  # MAD of +-1 bpm
    assert spread == pytest.approx(math.sqrt(within**2 + BETWEEN_MINUTE_HR_BPM**2 * 1.5))
    burst = hr[:100] + [110.0] * 20  # the client shifts in the chair for the last 20 s
    c2, _, _ = hr_statistics(t, burst, 0.0, 120.0, 60.0)
    assert c2 == 70.5  # median of the two minutes' medians (70, 71); a mean would say 76.7
    assert statistics.fmean(burst) > 76.0


def test_from_three_minutes_one_atypical_minute_cannot_set_the_centre() -> None:
    t = [float(i) for i in range(1, 181)]
    calm = [70.0 + (1.0 if i % 2 else -1.0) for i in range(120)]
    for last in (58.0, 90.0):  # the calmest minute, or one with talking and moving
        hr = calm + [last + (1.0 if i % 2 else -1.0) for i in range(60)]
        centre, _, k = hr_statistics(t, hr, 0.0, 180.0, 60.0)
        assert (centre, k) == (70.0, 3)
        assert abs(statistics.median(hr) - 70.0) >= 1.0  # all beats together would be moved


def test_a_short_calibration_uses_the_prior_a_long_one_its_own_minute_to_minute_spread() -> None:
    # ln RMSSD sampled once a second; each minute a different level
    levels = [3.5, 3.9, 3.3, 4.1, 3.6]
    t = [float(i) for i in range(45, 301)]
    v = [levels[min(4, int((x - 0.001) // 60))] for x in t]
    c1, s1, k1 = ln_rmssd_statistics(t, v, 0.0, 60.0, 60.0)
    assert (c1, k1) == (3.5, 1)
    assert s1 == pytest.approx(BETWEEN_MINUTE_LN_RMSSD * math.sqrt(2.0))  # centre from 1 minute
    c5, s5, k5 = ln_rmssd_statistics(t, v, 0.0, 300.0, 60.0)
    assert (c5, k5) == (3.6, 5)  # median of the five minutes, not their mean (3.68)
    own = statistics.stdev(levels)
    assert own > BETWEEN_MINUTE_LN_RMSSD
    assert s5 == pytest.approx(own * math.sqrt(1.2))


def _calibrated(
    series: tuple[np.ndarray, np.ndarray], previous: Baseline | None = None
) -> tuple[SignalPipeline, Baseline]:
    """A 120 s calibration from the series' start (t0 = 1000 s)."""
    p = SignalPipeline(CFG, previous)
    p.start_calibration(1000.0)
    for a, b in zip(*(x.tolist() for x in series), strict=True):
        if a <= 1120.0:
            p.push_rr(a, b)
    return p, p.finish_calibration(1120.0, "c-1")


def test_a_steady_rest_passes_without_notes() -> None:
    p, b = _calibrated(rr_series(130.0, hr_bpm=70.0, seed=4))
    assert 68.0 < b.hr_mean_bpm < 72.0
    assert b.hr_sd_bpm >= BETWEEN_MINUTE_HR_BPM
    assert b.ln_rmssd_sd is not None
    assert b.ln_rmssd_sd >= BETWEEN_MINUTE_LN_RMSSD
    assert p.calibration_notes == ()


def test_a_trend_across_the_calibration_is_told() -> None:
    # heart rate climbing from 60 to 80 bpm over the two minutes (half medians 10 bpm apart)
    p, _ = _calibrated(rr_series(130.0, hr_bpm=lambda t: 60.0 + 20.0 * t / 120.0, seed=1))
    assert any("heart rate rose" in n for n in p.calibration_notes), p.calibration_notes


def test_a_baseline_far_from_the_previous_one_is_told() -> None:
    before = Baseline("c-1", 0.0, 120.0, 140, 0.0, 56.0, 4.0, 4.9, 0.2, None)
    p, b = _calibrated(rr_series(130.0, hr_bpm=70.0, seed=4), before)
    notes = " | ".join(p.calibration_notes)
    assert "14 bpm above the client's previous baseline (56 bpm)" in notes
    assert b.ln_rmssd_mean is not None
    assert b.ln_rmssd_mean < 4.4  # RMSSD about a third of the previous 134 ms
    assert "against the client's previous baseline (134 ms)" in notes


def test_a_high_resting_heart_rate_is_told() -> None:
    p, _ = _calibrated(rr_series(130.0, hr_bpm=107.0, rsa_ms=10.0, seed=2))
    assert any("high for rest" in n for n in p.calibration_notes)


def test_heart_rate_only_calibration_says_so() -> None:
    c = Calibration(0.0)
    for i in range(1, 121):
        c.n_hr_samples += 1
        c.add_fast(float(i), 70.0 + (i % 3))
    b = c.finish(120.0, "c-1", CFG)
    assert b.ln_rmssd_mean is None
    assert any("no RR intervals" in n for n in c.review(b, None, CFG))


def test_heart_rate_only_calibration_keeps_a_baseline_with_hrv() -> None:
    """A fresh calibration while the strap sends no RR (the therapist's recalibrate) would
    replace the HRV baseline with an HR-only one: refused, saying why, and the HRV one stays."""
    p, hrv = _calibrated(rr_series(130.0, hr_bpm=70.0, seed=4))
    assert hrv.ln_rmssd_mean is not None
    p.start_calibration(1200.0)
    for i in range(1, 121):
        p.push_hr(1200.0 + i, 64.0 + (i % 3))
    with pytest.raises(CalibrationError) as err:
        p.finish_calibration(1320.0, "c-1")
    assert "no RR intervals" in str(err.value)
    assert "baseline with HRV stays in use" in str(err.value)
    assert p.baseline is hrv
    assert not p.calibrating
    # the same calibration at the level where it is decided, with and without an HRV baseline
    c = Calibration(0.0)
    for i in range(1, 121):
        c.n_hr_samples += 1
        c.add_fast(float(i), 70.0)
    with pytest.raises(CalibrationError, match="no HRV"):
        c.finish(120.0, "c-1", CFG, hrv)
    hr_only = c.finish(120.0, "c-1", CFG, None)
    assert hr_only.ln_rmssd_mean is None
    # an HR-only baseline in use may be replaced by another, and by one with HRV
    assert c.finish(120.0, "c-1", CFG, hr_only).ln_rmssd_mean is None
    p2 = SignalPipeline(CFG, hr_only)
    p2.start_calibration(1000.0)
    t, rr = rr_series(130.0, hr_bpm=70.0, seed=4)
    for a, b in zip(t.tolist(), rr.tolist(), strict=True):
        if a <= 1120.0:
            p2.push_rr(a, b)
    assert p2.finish_calibration(1120.0, "c-1").ln_rmssd_mean is not None


def test_therapist_recalibration_without_rr_is_refused_with_the_reason() -> None:
    """Through the service core: the therapist's recalibrate while the strap sends heart rate
    but no RR ends in a failed calibration event naming the reason; the HRV baseline stays."""
    from biofeedback.devices.hrm import encode_heart_rate_measurement
    from biofeedback.devices.readings import HeartRateMeasurement
    from biofeedback.devices.timing import BeatTimer
    from biofeedback.exposure import Recalibrate, Role
    from tests.hrv.test_one_estimator import DEVICE
    from tests.service.test_recalibrate_core import OLD, core, run, strap

    c = core(OLD)
    items = strap(60.0)
    run(c, items)
    t_cmd = c.last_t
    out = c.feed(Recalibrate(t_cmd, Role.THERAPIST, "calm now", command_id="th-1"))
    assert out.command is not None
    assert out.command.ok
    timer = BeatTimer(DEVICE)
    hr_only = [
        timer.notification(
            t_cmd + 1.0 + i,
            encode_heart_rate_measurement(HeartRateMeasurement(66, True, True, None, ())),
        )
        for i in range(130)
    ]
    outs = run(c, hr_only)
    assert all(o.baseline is None for o in outs)
    done = [e for o in outs for e in o.events if e.kind == "calibration"]
    assert len(done) == 1
    assert "no RR intervals" in done[0].reason
    assert "baseline with HRV stays in use" in done[0].reason
    assert c.pipeline.baseline is OLD
    assert not c.pipeline.calibrating


# ---- the targets on the shared recordings ---------------------------------------------------

# Expected to pass the quality gate: ECG, NN and strap series; wrist PPG mostly does not.
MUST_CALIBRATE = {
    "drivedb-17a",
    "spider-ecg 3",
    "neurokit resting 5min",
    "neurokit resting 8min",
    "hrv-analysis",
    "pyHRV short",
    "pyHRV long",
}


@pytest.mark.data
@pytest.mark.slow
def test_rest_after_calibration_reads_rest_and_never_pauses(shared_data: Path) -> None:
    """Median arousal over the rest after a calibration at its start is 15-35, and neither the
    default thresholds (70 for 10 s, 180 s calibration) nor the demo protocol's (60 for 5 s, 60 s
    calibration) pause during it, on every shared recording with a rest longer than the
    calibration whose calibration the quality gate accepts.

    Wrist PPG (Stress-Predict, an Empatica E4, not a chest strap) is held to "no pause" only: its
    dropouts leave arousal on heart rate alone for most of the rest, and the rest before a
    announced stress task is not always rest (docs/arousal.md: S07's heart rate is 5 bpm above
    its calibration all along). Its medians are in the table of docs/arousal.md.
    """
    failures: list[str] = []
    accepted: dict[str, set[str]] = {"defaults": set(), "demo": set()}
    for rest in rests(shared_data):
        wrist = rest.name.startswith("Stress-Predict")
        for label, proto in (("defaults", default_protocol()), ("demo", demo_protocol())):
            if not longer_than(rest, proto.calibration_s):
                continue
            s = score(rest, proto)
            if s.refused is not None:
                continue
            accepted[label].add(rest.name)
            what = f"{rest.name} ({label}, {s.scored_s / 60:.1f} min)"
            if s.pauses:
                failures.append(f"{what}: {s.pauses} pause(s) at rest")
            if not wrist and not 15.0 <= s.median <= 35.0:
                failures.append(f"{what}: median arousal {s.median:.1f} outside 15-35")
            if rest.name in MUST_CALIBRATE and s.known_share < 0.9:
                # (the Polar H10's frequent PVCs make arousal unknown part of the time: quality)
                failures.append(f"{what}: arousal known for only {s.known_share:.0%}")
    assert not failures, "\n".join(failures)
    assert accepted["defaults"] >= MUST_CALIBRATE
    assert accepted["demo"] >= MUST_CALIBRATE
    # the Polar H10 record opens with trigeminy (a PVC and its pause in two of every three
    # intervals): the detector corrects each PVC with its pause, and the gate refuses a
    # calibration on it at both settings (14 % and 42 % corrected; docs/arousal.md)
    assert "Polar H10" not in accepted["demo"] | accepted["defaults"]
    assert len(accepted["defaults"] - MUST_CALIBRATE) >= 2  # some wrist PPG rests too
