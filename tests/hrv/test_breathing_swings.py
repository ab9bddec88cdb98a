"""Breathing-aware judgement: normal beats in large, slow breathing swings are never corrected.

Slow paced breathing (4.5-7 breaths/min) swings heart rate by up to 30 bpm peak to trough: what
guidance produces, exactly when recovery is judged. Neither the detector nor the intake screen
may take those beats for artifacts; premature beats must still be caught. Scored as the share of
normal beats corrected and of ectopic beats corrected (docs/arousal.md, "Artifacts: measured").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from biofeedback.devices.physiology import Physiology, SimProfile
from biofeedback.signal import OfflineResult, SignalConfig, compute_offline
from biofeedback.signal.synthetic import paced_breathing_series
from tests.hrv.helpers import nk_time, rel

RAW = SignalConfig(artifact_correction=False, provisional_threshold=0.0)
RATES = (4.5, 5.0, 6.0, 7.0)


def detector_flags(off: OfflineResult) -> np.ndarray:
    return np.array([a not in (None, "provisional") for a in off.artifact])


def live_rmssd_within(t: np.ndarray, rr: np.ndarray, off: OfflineResult) -> float:
    """Share of beats after the first minute whose live 60 s RMSSD is within 5 % of the RMSSD of
    the raw window (hrv_time on it: the raw pipeline equals it, test_equals_neurokit.py)."""
    raw = compute_offline(t, rr, RAW)
    late = (t - t[0]) > 60.0
    ratio = off.long.rmssd_ms[late] / raw.long.rmssd_ms[late]
    return float(np.mean(np.abs(ratio - 1.0) <= 0.05))


@pytest.mark.parametrize("bpm", RATES)
@pytest.mark.parametrize("hr", [55.0, 65.0, 80.0])
def test_synthetic_slow_breathing_with_rising_swing_is_left_alone(bpm: float, hr: float) -> None:
    t, rr = paced_breathing_series(bpm, 900, hr_bpm=hr, noise_ms=8.0, jitter=0.2, seed=int(hr))
    off = compute_offline(t, rr)
    assert not detector_flags(off).any()
    assert off.provisional.mean() <= 0.002  # measured: 0 except 6 of 3,002 beats at 7/min
    assert live_rmssd_within(t, rr, off) >= 0.99
    # the swing really is large: peak to trough of the last minutes ~30 bpm
    hr_inst = 60000.0 / rr[(t - t[0]) > 600.0]
    assert np.ptp(hr_inst) > 25.0


def test_the_raw_window_is_neurokit2_hrv_time() -> None:
    t, rr = paced_breathing_series(6.0, 200, hr_bpm=60.0, seed=3)
    rr = np.round(rr * 1000.0) / 1000.0  # the pipeline holds whole µs
    raw = compute_offline(t, rr, RAW)
    for j in (80, 150, len(t) - 1):
        sel = (t > t[j] - 60.0) & (t <= t[j])
        assert rel(float(raw.long.rmssd_ms[j]), nk_time(rr[sel].tolist())["RMSSD"]) <= 1e-9


def simulated(bpm: float, seed: int, ectopy: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The simulated strap's person: rest, exposure, then guided slow breathing at `bpm`."""
    ph = Physiology(start_t=0.0, seed=seed, profile=SimProfile(ectopic_per_min=ectopy))
    beats = ph.beats_until(180.0)
    ph.set_stimulus(exposure=0.9, paced_breathing_bpm=None)
    beats += ph.beats_until(300.0)
    ph.set_stimulus(exposure=0.0, paced_breathing_bpm=bpm)
    beats += ph.beats_until(1200.0)
    t = np.array([b.t for b in beats])
    rr = np.array([b.rr_s * 1000.0 for b in beats])
    return t, rr, np.array([b.ectopic for b in beats])


@pytest.mark.parametrize("bpm", RATES)
def test_simulated_strap_under_guidance_corrects_no_normal_beat(bpm: float) -> None:
    t, rr, ectopic = simulated(bpm, seed=int(bpm * 10), ectopy=0.0)
    assert not ectopic.any()
    off = compute_offline(t, rr)
    assert not detector_flags(off).any()
    assert off.provisional.mean() <= 0.002
    assert live_rmssd_within(t, rr, off) >= 0.99


@pytest.mark.parametrize("bpm", RATES)
def test_simulated_strap_under_guidance_still_catches_premature_beats(bpm: float) -> None:
    t, rr, ectopic = simulated(bpm, seed=int(bpm * 10) + 1, ectopy=1.0)
    off = compute_offline(t, rr)
    flags = detector_flags(off)
    assert ectopic.sum() >= 20
    assert (flags & ectopic).sum() >= 0.9 * ectopic.sum()
    assert (flags & ~ectopic).sum() <= 0.002 * (~ectopic).sum()
    # the screen holds out premature beats at once, and almost nothing else
    assert (off.provisional & ectopic).sum() >= 0.8 * ectopic.sum()
    assert (off.provisional & ~ectopic).sum() <= 0.002 * (~ectopic).sum()


# ---- real recordings ------------------------------------------------------------------------


def annotated(shared_data: Path, rec: str) -> tuple[np.ndarray, np.ndarray]:
    import wfdb

    if rec == "100":
        a = wfdb.rdann(str(shared_data / "mitdb-100" / "100"), "atr")
        sym = np.array(a.symbol)
        keep = np.isin(sym, ["N", "A", "V"])
        s = a.sample[keep]
        return np.diff(s) / 360.0 * 1000.0, sym[keep][1:]
    a = wfdb.rdann(str(shared_data / "mit-ltdb-annotations" / rec), "atr")
    sym = np.array(a.symbol)
    keep = np.isin(sym, ["N", "V", "S", "F"])
    s, sym = a.sample[keep][:12_001], sym[keep][:12_001]
    return np.diff(s) / 128.0 * 1000.0, sym[1:]


# (sensitivity at least, false positives at most) per record: the previous stage's numbers
# (683a02a, neurokit2 on a rolling 64-beat buffer), which docs/arousal.md reported before the
# native detector (14157: 550 of 557 ectopic beats, 15814: 1,589 of 1,831), except where
# docs/arousal.md ("Artifacts: measured") states a shortfall and why: 14149, irregular throughout
# with every beat labelled N, holds shortenings followed by pauses that the pair rules correct
# (3.44 against 3.18 %)
BOUNDS = {"100": (1.0, 0.005), "14046": (0.316, 0.053), "14134": (0.142, 0.0259)}
BOUNDS |= {"14149": (0.051, 0.0345), "14157": (0.987, 0.0394), "14172": (0.628, 0.0777)}
BOUNDS |= {"14184": (0.208, 0.0139), "15814": (0.8678, 0.0446)}


@pytest.mark.data
@pytest.mark.slow
@pytest.mark.parametrize("rec", sorted(BOUNDS))
def test_annotated_ectopy_sensitivity_no_lower_than_before(shared_data: Path, rec: str) -> None:
    rr, lab = annotated(shared_data, rec)
    off = compute_offline(1000.0 + np.cumsum(rr) / 1000.0, rr)
    flags = detector_flags(off)
    ectopic = lab != "N"
    normal = ~ectopic & ~np.r_[False, ectopic[:-1]]  # the compensatory pause is neither
    sens_min, fp_max = BOUNDS[rec]
    assert (flags & ectopic).sum() / ectopic.sum() >= sens_min
    assert (flags & normal).sum() / normal.sum() <= fp_max


@pytest.mark.data
@pytest.mark.slow
def test_real_resting_series_are_barely_touched(shared_data: Path) -> None:
    """Series without labels: every beat counted as normal, so this bounds false corrections.
    (pyHRV's NSRDB series holds some artifacts of its own: 42 corrected, neurokit2 whole series
    83; docs/arousal.md.)"""
    import pandas as pd

    cases = {
        "hrvanalysis": (np.loadtxt(shared_data / "hrvanalysis-aura" / "test_nn_intervals.txt"), 0),
        "pyhrv": (np.load(shared_data / "pyhrv" / "SampleNNISeriesLong.npy") * 1.0, 0.015),
    }
    for name, (rr, most) in cases.items():
        off = compute_offline(1000.0 + np.cumsum(rr) / 1000.0, rr)
        assert detector_flags(off).mean() <= most, name
        assert off.provisional.mean() <= 0.005, name
    # the real Polar H10 at rest with PVCs: the screen no longer holds out its normal beats
    rr = pd.read_csv(shared_data / "polar-h10-ecg-pvc" / "polar_h10.csv")["rr_ms"].dropna()
    x = rr.to_numpy(dtype=float)
    off = compute_offline(1000.0 + np.cumsum(x) / 1000.0, x)
    restored = off.provisional & ~detector_flags(off)
    assert restored.mean() <= 0.02  # previous screen: held out 61 %, most judged normal
