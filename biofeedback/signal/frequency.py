"""Spectral HRV over a 60-300 s window, recomputed at a bounded cadence.

The method follows neurokit2's `hrv_frequency` (Welch defaults): the RR series is resampled on
an even 100 Hz grid by quadratic interpolation (as neurokit2), its mean removed, and a Welch
periodogram with Hann windows of half the series length, 50 % overlap and 2x zero padding is
integrated over the bands with the trapezoid rule. Unlike neurokit2 we never drop bins below
4/T Hz (it does, which truncates LF on windows under 100 s); docs/arousal.md gives the
measured agreement. scipy is imported lazily.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

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
    max_hz: float | None = None,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Welch power spectral density (ms^2/Hz) of an RR series given at beat times `t_s`, at
    every bin (or the bins below `max_hz` and the first at or above it).

    The arithmetic of `scipy.interpolate.interp1d(kind="quadratic")` and `scipy.signal.welch`
    (Hann, half-length segments, 50 % overlap, 2x zero padding, density, mean), written out with
    numpy. With `max_hz` only the low bins are computed, by Bluestein's chirp transform on FFTs of
    a fast length: the padded length 2 x segment is often a product with a large prime factor
    (12,002 = 2 x 17 x 353), where a plain FFT is several times slower (docs/benchmarks.md).
    """
    from scipy.interpolate import make_interp_spline  # lazy: scipy is slow to import

    t = np.asarray(t_s, dtype=np.float64)
    x = np.asarray(rr_ms, dtype=np.float64)
    grid = np.arange(t[0], t[-1] + 1 / resample_hz, 1 / resample_hz)
    y = make_interp_spline(t, x, k=2)(grid)
    y[grid > t[-1]] = x[-1]  # interp1d's fill value past the last beat
    y = y - y.mean()
    nperseg = len(y) // 2
    nfft = 2 * nperseg
    step = nperseg - nperseg // 2
    nseg = (len(y) - nperseg) // step + 1
    win = _hann(nperseg)
    segs = np.lib.stride_tricks.sliding_window_view(y, nperseg)[: (nseg - 1) * step + 1 : step]
    segs = segs * win
    nbins = nfft // 2 + 1
    if max_hz is not None:
        nbins = min(nbins, int(np.ceil(max_hz * nfft / resample_hz)) + 1)
        spec = _low_bins(segs, nfft, nbins)
    else:
        spec = np.fft.rfft(segs, n=nfft, axis=1)
    p = (spec.real**2 + spec.imag**2).mean(axis=0) / (resample_hz * float((win * win).sum()))
    last = nbins - 1 if nbins == nfft // 2 + 1 else nbins  # the Nyquist bin is not doubled
    p[1:last] *= 2.0  # one-sided
    f = np.arange(nbins) * (resample_hz / nfft)
    return np.asarray(f, dtype=np.float64), np.asarray(p, dtype=np.float64)


_CACHE: dict[tuple[str, int, int, int], npt.NDArray[np.float64] | npt.NDArray[np.complex128]] = {}


def _cached(
    key: tuple[str, int, int, int], make: Callable[[], npt.NDArray[Any]]
) -> npt.NDArray[Any]:
    v = _CACHE.get(key)
    if v is None:
        if len(_CACHE) > 64:  # window lengths vary by a few samples: a handful recur
            _CACHE.clear()
        v = _CACHE[key] = make()
    return v


def _hann(n: int) -> npt.NDArray[np.float64]:
    """The periodic Hann window of scipy.signal.get_window("hann", n)."""
    return _cached(("hann", n, 0, 0), lambda: 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n))


def _chirp(n: int, nfft: int) -> npt.NDArray[np.complex128]:
    """exp(-i pi j^2 / nfft) for j < n, the phase reduced exactly (j^2 mod 2 nfft)."""
    j = np.arange(n, dtype=np.int64)
    return np.asarray(np.exp(-1j * np.pi * ((j * j) % (2 * nfft)) / nfft), dtype=np.complex128)


def _low_bins(segs: npt.NDArray[np.float64], nfft: int, nbins: int) -> npt.NDArray[np.complex128]:
    """rfft(segs, n=nfft)[:, :nbins] by Bluestein: X[k] = c_k sum_n (x_n c_n) conj(c_(k-n))."""
    n = segs.shape[1]
    m = _fast_len(n + nbins - 1)
    c = _cached(("chirp", n, nfft, nbins), lambda: _chirp(max(n, nbins), nfft))

    def kernel() -> npt.NDArray[np.complex128]:
        b = np.zeros(m, dtype=np.complex128)
        b[:nbins] = np.conj(c[:nbins])
        b[m - n + 1 :] = np.conj(c[1:n])[::-1]
        return np.fft.fft(b)

    bf = _cached(("kernel", n, nfft, nbins), kernel)
    conv = np.fft.ifft(np.fft.fft(segs * c[:n], n=m, axis=1) * bf, axis=1)
    return np.asarray(conv[:, :nbins] * c[:nbins], dtype=np.complex128)


def _fast_len(n: int) -> int:
    """The smallest 2^a 3^b 5^c >= n."""
    best = 1 << (n - 1).bit_length()
    f5 = 1
    while f5 < best:
        f35 = f5
        while f35 < best:
            f = f35
            while f < n:
                f *= 2
            best = min(best, f)
            f35 *= 3
        f5 *= 5
    return best


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
    f, p = psd(t_s, rr_ms, max_hz=BREATHING_BAND[1])
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
