"""Spectral HRV over a 60-300 s window, recomputed at a bounded cadence.

The method follows neurokit2's `hrv_frequency` (Welch defaults): the RR series is resampled on
an even 100 Hz grid by quadratic interpolation (as neurokit2), its mean removed, and a Welch
periodogram with Hann windows of half the series length, 50 % overlap and 2x zero padding is
integrated over the bands with the trapezoid rule. Unlike neurokit2 we never drop bins below
4/T Hz (it does, which truncates LF on windows under 100 s); docs/arousal.md gives the
measured agreement. scipy is imported lazily.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from biofeedback.signal.measures import FrequencyDomain

LF_BAND = (0.04, 0.15)
HF_BAND = (0.15, 0.4)
BREATHING_BAND = (0.07, 0.5)  # 4.2-30 breaths/min
SPONTANEOUS_MIN_HZ = 0.12  # 7.2 breaths/min: below this only when locked to a slow pacer
SLOW_BREATHING_COHERENCE = 0.5
TOTAL_BAND = (0.04, 0.4)
RESAMPLE_HZ = 100.0
MIN_SPAN_S = 60.0


def _band(f: npt.NDArray[np.float64], p: npt.NDArray[np.float64], lo: float, hi: float) -> float:
    sel = (f >= lo) & (f < hi)
    if np.count_nonzero(sel) < 2:
        return 0.0
    return float(np.trapezoid(p[sel], f[sel]))


def psd(
    t_s: Sequence[float] | npt.NDArray[np.float64],
    rr_ms: Sequence[float] | npt.NDArray[np.float64],
    resample_hz: float = RESAMPLE_HZ,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Welch power spectral density (ms^2/Hz) of an RR series given at beat times `t_s`."""
    from scipy.interpolate import interp1d  # lazy: scipy is slow to import
    from scipy.signal import welch

    t = np.asarray(t_s, dtype=np.float64)
    x = np.asarray(rr_ms, dtype=np.float64)
    grid = np.arange(t[0], t[-1] + 1 / resample_hz, 1 / resample_hz)
    f_interp = interp1d(t, x, kind="quadratic", bounds_error=False, fill_value=(x[0], x[-1]))
    y = np.asarray(f_interp(grid), dtype=np.float64)
    y = y - y.mean()
    nperseg = len(y) // 2
    f, p = welch(
        y,
        fs=resample_hz,
        window="hann",
        nperseg=nperseg,
        nfft=2 * nperseg,
        detrend=False,
        scaling="density",
        average="mean",
    )
    return np.asarray(f, dtype=np.float64), np.asarray(p, dtype=np.float64)


def frequency_domain(
    t: float,
    window_s: float,
    t_s: Sequence[float] | npt.NDArray[np.float64],
    rr_ms: Sequence[float] | npt.NDArray[np.float64],
    paced_hz: float,
    half_width_hz: float,
) -> FrequencyDomain:
    """LF, HF, LF/HF, RSA breathing rate and coherence at `paced_hz` of the beats given.

    Fields are None when the beats span less than 60 s or the spectrum is empty.
    """
    none = FrequencyDomain(t, window_s, None, None, None, None, None, paced_hz)
    if len(t_s) < 16 or t_s[-1] - t_s[0] < MIN_SPAN_S * 0.98:
        return none
    f, p = psd(t_s, rr_ms)
    lf = _band(f, p, *LF_BAND)
    hf = _band(f, p, *HF_BAND)
    total = _band(f, p, *TOTAL_BAND)
    paced = _band(f, p, paced_hz - half_width_hz, paced_hz + half_width_hz + 1e-12)
    coherence = min(1.0, paced / total) if total > 0 else None
    # Spontaneous breathing is searched above the Mayer-wave region (~0.1 Hz); slow breathing
    # below it is reported only when the rhythm is locked to a slow pacer (coherence >= 0.5).
    locked = (coherence or 0.0) >= SLOW_BREATHING_COHERENCE
    lo = BREATHING_BAND[0] if locked else SPONTANEOUS_MIN_HZ
    sel = (f >= lo) & (f < BREATHING_BAND[1])
    breathing = (
        float(f[sel][np.argmax(p[sel])] * 60.0) if np.any(sel) and p[sel].max() > 0 else None
    )
    return FrequencyDomain(
        t,
        window_s,
        lf,
        hf,
        lf / hf if hf > 0 else None,
        breathing,
        coherence,
        paced_hz,
    )
