"""The simulated client's baroreflex resonance (biofeedback/devices/physiology.py): the largest
HR swing at the resonance rate, HR in phase with breathing there, leading below and lagging above,
the LF peak at the pacer, and breathing locked to a pacer whose phase is given."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from biofeedback.devices.physiology import Physiology, SimProfile
from biofeedback.errors import ConfigError

QUIET = {"noise_ms": 0.0, "lf_ms": 0.0, "ectopic_per_min": 0.0, "drift_bpm": 0.0}


@pytest.mark.parametrize("res", [4.5, 5.0, 5.5, 6.0, 6.5])
def test_response_peaks_in_phase_at_the_resonance_rate(res: float) -> None:
    m = Physiology(start_t=0.0, profile=SimProfile(resonance_bpm=res))
    rates = np.arange(3.0, 9.01, 0.05)
    gains = [abs(m.baroreflex_response(float(r))) for r in rates]
    assert rates[int(np.argmax(gains))] == pytest.approx(res, abs=0.03)
    assert math.isclose(np.angle(m.baroreflex_response(res)), 0.0, abs_tol=1e-12)
    assert np.angle(m.baroreflex_response(res - 1.0)) > 0.05  # HR leads breathing below
    assert np.angle(m.baroreflex_response(res + 1.0)) < -0.05  # and lags it above
    amp = [m.rsa_amplitude_s(float(r), 0.0) for r in rates]
    assert rates[int(np.argmax(amp))] == pytest.approx(res, abs=0.03)
    # normalised so that spontaneous breathing keeps the profile's RSA amplitude
    assert m.rsa_amplitude_s(m.profile.spontaneous_breathing_bpm, 0.0) == pytest.approx(0.032)


def _paced_hr(res: float, rate: float, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Heart rate at each interval's midpoint over the last 90 s of 2 min paced from t=10."""
    m = Physiology(start_t=0.0, seed=seed, profile=SimProfile(resonance_bpm=res, **QUIET))
    m.set_stimulus(exposure=0.0, paced_breathing_bpm=None)
    m.beats_until(10.0)
    m.set_stimulus(exposure=0.0, paced_breathing_bpm=rate, pacer_t0=10.0)
    beats = [b for b in m.beats_until(130.0) if b.t > 40.0]
    t = np.array([b.t - b.rr_s / 2 for b in beats])
    return t, np.array([60.0 / b.rr_s for b in beats])


@pytest.mark.parametrize("res", [4.5, 6.0])
def test_peak_to_trough_is_largest_at_resonance(res: float) -> None:
    swings = {}
    for rate in (4.5, 5.0, 5.5, 6.0, 6.5):
        _, hr = _paced_hr(res, rate)
        swings[rate] = float(hr.max() - hr.min())
    assert max(swings, key=lambda r: swings[r]) == res


@pytest.mark.parametrize("res", [5.0, 6.0])
def test_hr_follows_the_pacer_volume_in_phase_at_resonance(res: float) -> None:
    """Lung volume is lowest when an inhale starts (t = 10 + n * period) and highest half a
    cycle later (inhale share 0.5): HR is lowest and highest there too, within 0.6 s."""
    t, hr = _paced_hr(res, res)
    period = 60.0 / res
    grid = np.arange(45.0, 125.0, 0.05)
    h = np.interp(grid, t, hr)
    # fold onto one cycle
    u = np.mod(grid - 10.0, period)
    bins = np.linspace(0, period, 61)
    mean = [h[(u >= a) & (u < b)].mean() for a, b in itertools.pairwise(bins)]
    centres = (bins[:-1] + bins[1:]) / 2
    t_max = centres[int(np.argmax(mean))]
    t_min = centres[int(np.argmin(mean))]
    m_lag = SimProfile().pacer_lag_s  # the client trails the pacer by this much
    assert t_max == pytest.approx(period / 2 + m_lag, abs=0.6)
    assert min(abs(t_min - m_lag), abs(t_min - m_lag - period)) <= 0.6


def test_breathing_locks_to_the_pacer_and_lf_peaks_there() -> None:
    m = Physiology(start_t=0.0, seed=4, profile=SimProfile(resonance_bpm=5.5))
    m.set_stimulus(exposure=0.0, paced_breathing_bpm=5.5, pacer_t0=0.0)
    beats = m.beats_until(180.0)
    assert beats[-1].breathing_bpm == pytest.approx(5.5, abs=0.01)
    t = np.array([b.t for b in beats if b.t > 30 and not b.ectopic])
    rr = np.array([b.rr_s for b in beats if b.t > 30 and not b.ectopic])
    grid = np.arange(t[0], t[-1], 0.25)
    x = np.interp(grid, t, rr)
    spec = np.abs(np.fft.rfft((x - x.mean()) * np.hanning(len(x)), n=8192)) ** 2
    f = np.fft.rfftfreq(8192, 0.25)
    band = (f >= 0.04) & (f < 0.15)
    assert f[band][np.argmax(spec[band])] == pytest.approx(5.5 / 60, abs=0.004)


def test_invalid_resonance_settings_are_refused() -> None:
    with pytest.raises(ConfigError, match="resonance_bpm"):
        SimProfile(resonance_bpm=20.0)
    with pytest.raises(ConfigError, match="resonance_q"):
        SimProfile(resonance_q=0.0)
    with pytest.raises(ConfigError, match="pacer_lag_s"):
        SimProfile(pacer_lag_s=-1.0)
    m = Physiology(start_t=0.0)
    with pytest.raises(ConfigError, match="inhale share"):
        m.set_stimulus(exposure=0.0, paced_breathing_bpm=6.0, pacer_t0=0.0, pacer_inhale_share=1)
    with pytest.raises(ConfigError, match="pacer start"):
        m.set_stimulus(exposure=0.0, paced_breathing_bpm=6.0, pacer_t0=math.nan)
    assert SimProfile.from_mapping({"resonance_bpm": 5}).resonance_bpm == 5.0
