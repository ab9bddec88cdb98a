"""The closed-form spectrum (frequency.psd) equals the spectrum on the resampled grid (psd_grid).

psd_grid is the arithmetic of scipy's quadratic interp1d on the 100 Hz grid followed by welch,
the form tests/hrv/test_frequency.py checks against neurokit2's hrv_frequency. psd computes the
same Welch bins from the spline pieces without the grid; here the two are compared bin by bin and
on every published value, on fixed and on hypothesis-generated series (window lengths 58.8-300 s,
slow and fast heart rates, abrupt steps, beat times late in a long session), and the pipeline's
published spectra are compared with the grid form on the pipeline's own window.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.interpolate import make_interp_spline

from biofeedback.signal import SignalConfig, SignalPipeline
from biofeedback.signal.frequency import (
    BREATHING_BAND,
    frequency_domain,
    psd,
    psd_grid,
    quadratic_pieces,
)
from biofeedback.signal.synthetic import rr_series
from tests.hrv.helpers import rel

TOL_BIN = 1e-9  # |closed form - grid| per bin, relative to the largest bin of the window
TOL_VALUE = 1e-8  # LF, HF, LF/HF and coherence, relative


def check_same_spectrum(t: np.ndarray, rr: np.ndarray, max_hz: float = BREATHING_BAND[1]) -> None:
    f, p = psd(t, rr, max_hz=max_hz)
    fg, pg = psd_grid(t, rr, max_hz=max_hz)
    assert np.array_equal(f, fg)  # same grid length, so the same bins
    assert np.max(np.abs(p - pg)) <= TOL_BIN * np.max(pg)


def check_same_values(t: np.ndarray, rr: np.ndarray, paced_hz: float = 0.1) -> None:
    a = frequency_domain(float(t[-1]), 120.0, t, rr, paced_hz, 0.015)
    b = frequency_domain(float(t[-1]), 120.0, t, rr, paced_hz, 0.015, on_grid=True)
    for x, y in (
        (a.lf_ms2, b.lf_ms2),
        (a.hf_ms2, b.hf_ms2),
        (a.lf_hf, b.lf_hf),
        (a.coherence, b.coherence),
    ):
        assert (x is None) == (y is None)
        if x is not None and y is not None:
            assert rel(x, y) <= TOL_VALUE
    if a.breathing_rate_bpm != b.breathing_rate_bpm:
        # only a tie between two bins (equal to 1e-9) may pick the other peak
        f, p = psd_grid(t, rr, max_hz=BREATHING_BAND[1])
        assert a.breathing_rate_bpm is not None
        assert b.breathing_rate_bpm is not None
        pa = p[np.argmin(np.abs(f * 60.0 - a.breathing_rate_bpm))]
        pb = p[np.argmin(np.abs(f * 60.0 - b.breathing_rate_bpm))]
        assert rel(pa, pb) <= TOL_BIN


@pytest.mark.parametrize("window_s", [58.8, 60.0, 61.0, 100.0, 120.0, 180.0, 300.0])
@pytest.mark.parametrize("seed", [0, 1])
def test_equal_on_synthetic_windows(window_s: float, seed: int) -> None:
    t, rr = rr_series(700, seed=seed, breath_hz=0.1 + 0.1 * seed, rsa_ms=50.0)
    for start in (0.0, 97.0, 301.0):
        sel = (t >= t[0] + start) & (t <= t[0] + start + window_s)
        check_same_spectrum(t[sel], rr[sel])
        check_same_values(t[sel], rr[sel])


def test_equal_on_slow_and_fast_heart_rates_and_steps() -> None:
    for hr in (40.0, 55.0, 90.0, 150.0, 190.0):
        t, rr = rr_series(130, seed=3, hr_bpm=hr, breath_hz=0.25)
        check_same_spectrum(t, rr)
        check_same_values(t, rr, paced_hz=0.25)
    t, rr = rr_series(130, seed=4)
    rr = rr.copy()
    rr[50::40] *= 0.6  # premature beats left uncorrected: steps inside the window
    t = t[0] + np.concatenate(([0.0], np.cumsum(rr[1:]) / 1000.0))
    check_same_spectrum(t, rr)
    check_same_values(t, rr)


def test_equal_on_other_band_limits() -> None:
    """The LF-only spectrum the resonance assessment asks for, and a limit above the bands."""
    t, rr = rr_series(150, seed=8, breath_hz=0.1, rsa_ms=60.0)
    for max_hz in (0.15, 0.5, 1.0):
        check_same_spectrum(t, rr, max_hz)


def test_full_spectrum_is_the_grid_one() -> None:
    t, rr = rr_series(90, seed=9)
    f, p = psd(t, rr)
    fg, pg = psd_grid(t, rr)
    assert np.array_equal(f, fg)
    assert np.array_equal(p, pg)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(min_value=4, max_value=400),
    t0=st.sampled_from([0.0, 12.345, 86_400.0, 1.7e9]),
    mean_ms=st.floats(min_value=320.0, max_value=1_800.0),
    swing=st.floats(min_value=0.0, max_value=0.4),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_spline_pieces_equal_scipy(
    n: int, t0: float, mean_ms: float, swing: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    rr = mean_ms * (1.0 + swing * rng.uniform(-1.0, 1.0, n))
    t = t0 + np.cumsum(rr) / 1000.0
    b, a0, a1, a2 = quadratic_pieces(t, rr)
    q = np.concatenate((t, rng.uniform(t[0], t[-1], 200)))
    i = np.clip(np.searchsorted(b, q, side="right") - 1, 0, len(b) - 1)
    d = q - b[i]
    ours = a0[i] + d * (a1[i] + a2[i] * d)
    ref = make_interp_spline(t, rr, k=2)(q)
    assert np.max(np.abs(ours - ref)) <= 1e-9 * mean_ms * (1.0 + abs(t0) * 1e-6)


@settings(max_examples=40, deadline=None)
@given(
    window_s=st.floats(min_value=58.8, max_value=300.0),
    t0=st.sampled_from([0.0, 3.21, 7_200.0, 1.7e9]),
    hr_bpm=st.floats(min_value=40.0, max_value=180.0),
    breath_hz=st.floats(min_value=0.05, max_value=0.45),
    rsa_ms=st.floats(min_value=0.0, max_value=120.0),
    noise_ms=st.floats(min_value=0.0, max_value=60.0),
    odd_every=st.integers(min_value=0, max_value=60),
    seed=st.integers(min_value=0, max_value=10_000),
)
def test_equal_on_random_windows(
    window_s: float,
    t0: float,
    hr_bpm: float,
    breath_hz: float,
    rsa_ms: float,
    noise_ms: float,
    odd_every: int,
    seed: int,
) -> None:
    t, rr = rr_series(
        window_s + 2.0,
        seed=seed,
        hr_bpm=hr_bpm,
        breath_hz=breath_hz,
        rsa_ms=rsa_ms,
        noise_ms=noise_ms,
    )
    rr = np.clip(rr, 300.0, 2_000.0)
    if odd_every:
        rr[odd_every::odd_every] *= 0.7  # premature beats, uncorrected
    t = t0 + np.cumsum(rr) / 1000.0
    t = t[t <= t[0] + window_s]
    if len(t) < 16 or t[-1] - t[0] < 58.8:
        return
    rr = rr[: len(t)]
    check_same_spectrum(t, rr)
    check_same_values(t, rr, paced_hz=breath_hz if breath_hz <= 0.4 else 0.1)


def test_pipeline_spectra_equal_the_grid_form_on_the_pipeline_window() -> None:
    """Each spectrum the pipeline publishes equals the grid form on the beats with
    t > t - frequency_window_s, rebuilt here from what was fed in."""
    cfg = SignalConfig(
        artifact_correction=False, provisional_threshold=None, frequency_cadence_s=7.0
    )
    t, rr = rr_series(400, seed=10, breath_hz=0.1, rsa_ms=60.0)
    rr = np.rint(rr * 1000.0) / 1000.0  # whole µs: the values the pipeline holds
    p = SignalPipeline(cfg)
    seen = 0
    ts, xs = t.tolist(), rr.tolist()
    for i, (a, b) in enumerate(zip(ts, xs, strict=True)):
        u = p.push_rr(a, b)
        if u.frequency is None:
            continue
        sel = t[: i + 1] > a - cfg.frequency_window_s
        ref = frequency_domain(
            a, cfg.frequency_window_s, t[: i + 1][sel], rr[: i + 1][sel], 0.1, 0.015, on_grid=True
        )
        assert u.frequency.lf_ms2 is not None
        assert ref.lf_ms2 is not None
        assert rel(u.frequency.lf_ms2, ref.lf_ms2) <= TOL_VALUE
        assert u.frequency.hf_ms2 is not None
        assert ref.hf_ms2 is not None
        assert rel(u.frequency.hf_ms2, ref.hf_ms2) <= TOL_VALUE
        assert u.frequency.coherence is not None
        assert ref.coherence is not None
        assert rel(u.frequency.coherence, ref.coherence) <= TOL_VALUE
        assert u.frequency.breathing_rate_bpm == ref.breathing_rate_bpm
        seen += 1
    assert seen >= 40


@pytest.mark.parametrize("shape", [(18, 50, 130), (18, 161, 130), (18, 400, 310), (1, 3, 2)])
def test_product_in_pieces_equals_the_whole_product(shape: tuple[int, int, int]) -> None:
    from biofeedback.signal.frequency import _product

    m, k, n = shape
    rng = np.random.default_rng(k)
    a, b = rng.normal(size=(m, k)), rng.normal(size=(k, n))
    assert np.allclose(_product(a, b), a @ b, rtol=1e-12, atol=1e-12)
