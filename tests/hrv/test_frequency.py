"""Spectral HRV: agreement with neurokit2.hrv_frequency, breathing rate and coherence."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from biofeedback.signal import SignalConfig, SignalPipeline
from biofeedback.signal.frequency import frequency_domain
from biofeedback.signal.synthetic import rr_series
from tests.hrv.helpers import rel

TOL_LONG = 1e-6  # windows >= 100 s: same method, same grid (docs/arousal.md)
TOL_LF_60S = 0.15  # 60 s windows: neurokit2 drops bins below 4/T = 0.067 Hz from LF


def nk_freq(t: np.ndarray, rr: np.ndarray) -> tuple[float, float]:
    import neurokit2 as nk

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NeuroKitWarning about short windows for ULF/VLF
        df = nk.hrv_frequency({"RRI": rr, "RRI_Time": t}, normalize=False)
    return float(df["HRV_LF"].iloc[0]), float(df["HRV_HF"].iloc[0])


def ours(t: np.ndarray, rr: np.ndarray) -> tuple[float, float]:
    fd = frequency_domain(float(t[-1]), 0.0, t, rr, 0.1, 0.015)
    assert fd.lf_ms2 is not None
    assert fd.hf_ms2 is not None
    return fd.lf_ms2, fd.hf_ms2


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("dur", [120, 300])
def test_matches_neurokit_on_synthetic(seed: int, dur: int) -> None:
    t, rr = rr_series(dur + 1, seed=seed, breath_hz=0.2 + 0.05 * seed)
    lf, hf = ours(t, rr)
    nlf, nhf = nk_freq(t, rr)
    assert rel(lf, nlf) <= TOL_LONG
    assert rel(hf, nhf) <= TOL_LONG


def test_60s_window_hf_equal_lf_within_documented_tolerance() -> None:
    t, rr = rr_series(61, seed=4)
    lf, hf = ours(t, rr)
    nlf, nhf = nk_freq(t, rr)
    assert rel(hf, nhf) <= TOL_LONG
    assert rel(lf, nlf) <= TOL_LF_60S


@pytest.mark.data
def test_matches_neurokit_on_real_nn(shared_data: object) -> None:
    from pathlib import Path

    assert isinstance(shared_data, Path)
    nn = np.load(shared_data / "pyhrv" / "SampleNNISeriesLong.npy").astype(float)
    t = np.cumsum(nn) / 1000.0
    for start in range(0, 3300, 300):
        sel = (t >= start) & (t < start + 120)
        lf, hf = ours(t[sel], nn[sel])
        nlf, nhf = nk_freq(t[sel], nn[sel])
        assert rel(lf, nlf) <= TOL_LONG, start
        assert rel(hf, nhf) <= TOL_LONG, start


def test_breathing_rate_and_coherence_follow_paced_breathing() -> None:
    t, rr = rr_series(150, seed=5, breath_hz=0.1, rsa_ms=60.0, mayer_ms=0.0)
    paced = frequency_domain(float(t[-1]), 120.0, t[-150:], rr[-150:], 0.1, 0.015)
    t2, rr2 = rr_series(150, seed=5, breath_hz=0.25, rsa_ms=40.0)
    free = frequency_domain(float(t2[-1]), 120.0, t2, rr2, 0.1, 0.015)
    assert paced.breathing_rate_bpm is not None
    assert paced.breathing_rate_bpm == pytest.approx(6.0, abs=0.5)
    assert free.breathing_rate_bpm == pytest.approx(15.0, abs=0.6)
    assert paced.coherence is not None
    assert free.coherence is not None
    assert paced.coherence > 0.6
    assert free.coherence < 0.2


@pytest.mark.parametrize("cadence_s", [1.0, SignalConfig().frequency_cadence_s])
def test_pipeline_spectra_at_most_once_per_cadence(cadence_s: float) -> None:
    """One spectrum at the first beat at least `frequency_cadence_s` after the previous one,
    from the first beat 60 s into the segment: the default and a spectrum a second."""
    t, rr = rr_series(200, seed=6, hr_bpm=110.0)
    p = SignalPipeline(SignalConfig(frequency_cadence_s=cadence_s))
    ups = [p.push_rr(a, b) for a, b in zip(t.tolist(), rr.tolist(), strict=True)]
    times = [u.t for u in ups if u.frequency is not None]
    first = next(a for a in t.tolist() if a - t[0] >= 60.0)
    assert times[0] == first
    expected = [first]
    for a in t.tolist():
        if a - expected[-1] >= cadence_s:
            expected.append(a)
    assert times == expected
    assert len(times) >= (t[-1] - first) / (cadence_s + 1.0)


def test_default_cadence_is_the_documented_one() -> None:
    """docs/arousal.md and config/biofeedback.toml state a spectrum at most every 15 s."""
    from pathlib import Path

    assert SignalConfig().frequency_cadence_s == 15.0
    toml = Path(__file__).resolve().parents[2] / "config" / "biofeedback.toml"
    assert "frequency_cadence_s = 15.0" in toml.read_text(encoding="utf-8")


def test_latest_frequency_kept_until_a_gap() -> None:
    t, rr = rr_series(90, seed=7)
    p = SignalPipeline()
    assert p.latest_frequency is None
    for a, b in zip(t.tolist(), rr.tolist(), strict=True):
        u = p.push_rr(a, b)
    assert p.latest_frequency is not None
    assert u.frequency is None or u.frequency == p.latest_frequency
    p.mark_gap(float(t[-1]) + 1)
    assert p.latest_frequency is None
