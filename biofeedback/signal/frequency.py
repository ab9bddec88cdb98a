"""Spectral HRV over a 60-300 s window, recomputed at a bounded cadence.

The method follows neurokit2's `hrv_frequency` (Welch defaults): the RR series is resampled on
an even 100 Hz grid by quadratic interpolation (as neurokit2), its mean removed, and a Welch
periodogram with Hann windows of half the series length, 50 % overlap and 2x zero padding is
integrated over the bands with the trapezoid rule. Unlike neurokit2 we never drop bins below
4/T Hz (it does, which truncates LF on windows under 100 s); docs/arousal.md gives the
measured agreement. scipy is imported lazily.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from biofeedback.signal.measures import FrequencyDomain

F64 = npt.NDArray[np.float64]

LF_BAND = (0.04, 0.15)
HF_BAND = (0.15, 0.4)
BREATHING_BAND = (0.07, 0.5)  # 4.2-30 breaths/min
SPONTANEOUS_MIN_HZ = 0.12  # 7.2 breaths/min: below this only when locked to a slow pacer
SLOW_BREATHING_COHERENCE = 0.5
TOTAL_BAND = (0.04, 0.4)
RESAMPLE_HZ = 100.0
MIN_SPAN_S = 60.0


def _trapezoid(p: list[float], df: float, i: int, j: int) -> float:
    """Trapezoid integral of `p` over bins i..j-1 of the even grid k * df (0 with fewer than
    two): np.trapezoid(p[i:j], f[i:j]) to rounding."""
    if j - i < 2:
        return 0.0
    return df * (sum(p[i:j]) - 0.5 * (p[i] + p[j - 1]))


def psd(
    t_s: Sequence[float] | npt.NDArray[np.float64],
    rr_ms: Sequence[float] | npt.NDArray[np.float64],
    resample_hz: float = RESAMPLE_HZ,
    max_hz: float | None = None,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Welch power spectral density (ms^2/Hz) of an RR series given at beat times `t_s`, at
    every bin (or the bins below `max_hz` and the first at or above it).

    The spectrum of `psd_grid` (scipy's quadratic `interp1d` on the even grid, then `welch`),
    computed without the grid when only the low bins are asked for (`max_hz`): each piece of
    the quadratic spline contributes to a bin a closed-form sum (`_piecewise_low_bins`), so the
    work grows with the beats (~150 in 120 s) instead of the 12,000 grid samples. Equal to
    `psd_grid` to ~1e-10 of the largest bin (tests/hrv/test_frequency_closed_form.py).
    """
    t = np.asarray(t_s, dtype=np.float64)
    x = np.asarray(rr_ms, dtype=np.float64)
    if max_hz is None or len(t) < 4:
        return psd_grid(t, x, resample_hz, max_hz)
    t = t - t[0]  # as psd_grid: exact, and the grid is not rounded to an epoch clock's 0.24 µs
    h = 1.0 / resample_hz
    n_grid = math.ceil((float(t[-1]) + h) / h)  # len(np.arange(0, t[-1] + h, h)) of psd_grid
    nperseg = n_grid // 2
    nfft = 2 * nperseg
    nbins = min(nfft // 2 + 1, int(np.ceil(max_hz * nfft / resample_hz)) + 1)
    if nperseg < MIN_CLOSED_FORM_SEGMENT or nbins + 2 > nfft // 4:
        return psd_grid(t, x, resample_hz, max_hz)
    p = _piecewise_low_bins(t, x, resample_hz, n_grid, nbins)
    f = np.arange(nbins) * (resample_hz / nfft)
    return np.asarray(f, dtype=np.float64), p


MIN_CLOSED_FORM_SEGMENT = 16  # shorter segments (never met by the live windows) use the grid


def _piecewise_low_bins(
    t: npt.NDArray[np.float64],
    x: npt.NDArray[np.float64],
    fs: float,
    n_grid: int,
    nbins: int,
) -> npt.NDArray[np.float64]:
    """The Welch bins 0..nbins-1 of `psd_grid`, from the spline pieces instead of the grid.

    Times start at 0, so grid sample m lies at m/fs. Cutting the grid where a spline piece, the
    constant tail past the last beat (interp1d's fill value) or a Welch segment starts or ends
    gives sub-intervals [C_i, C_i+1) of M_i samples on which the resampled series is a quadratic
    in the local index u: y = q0 + q1 u + q2 u^2. With r = exp(-2 pi i k / nfft) and
    Q(u) = a0 + a1 u + a2 u^2 solving r Q(u+1) - Q(u) = y(u), i.e. a2 = q2/(r-1),
    a1 = (q1 - 2 r a2)/(r-1), a0 = (q0 - r (a1 + a2))/(r-1), a sub-interval contributes
    sum_u y(u) r^(C_i + u) = Q(M_i) r^C_(i+1) - Q(0) r^C_i, where Q(u) = v y(u) - r v^2 y'(u) +
    (2 r^2 v^3 - r v^2) y''/2 with v = 1/(r-1): linear in y, y' and y''/2 at the sub-interval's
    ends with factors that depend on k only, so each segment's plain DFT R_s[k] is one small
    matrix product (three weight rows per segment) over the cuts. The grid mean is removed in
    the frequency domain (the sum of r^j over a segment is ((-1)^k - 1)/(r - 1)), and the
    periodic Hann window as well: on the 2x padded length it is
    1/2 - (e^(2 pi i 2j/nfft) + e^(-2 pi i 2j/nfft))/4, so
    X_s[k] = R_s[k]/2 - (R_s[k-2] + R_s[k+2])/4 on the DFT from the segment's first sample a_s.
    On R_s (from sample 0) that is r_k^(-a_s) (R_s[k]/2 - (e_s R_s[k-2] + conj(e_s) R_s[k+2])/4)
    with e_s = r_2^(a_s): the power needs no per-bin shift. Everything that depends on the
    window length alone (`_Plan`) is computed once per length in samples.
    """
    pl = _plan(n_grid, nbins, fs)
    h = 1.0 / fs
    coef = quadratic_pieces(t, x)
    last = float(x[-1])  # taken out first so the sums stay small; it comes back with the mean
    starts = np.ceil(coef[0] * fs).astype(np.int64)
    m_tail = min(n_grid, math.floor(float(t[-1]) * fs) + 1)  # first sample past the last beat
    # a cut met twice leaves an empty sub-interval, which adds nothing
    cuts = np.concatenate((starts, pl.cuts))
    cuts[-1] = m_tail
    cuts.sort()
    ci = cuts[:-1]
    m = np.subtract(cuts[1:], ci, dtype=np.float64)
    b, c0, c1, c2 = coef.take(starts.searchsorted(ci, side="right") - 1, axis=1)
    d = ci * h - b  # from the piece's breakpoint to the sub-interval's first sample
    # rows 0-2: y(0), y'(0) and y''/2 of y(u) = q0 + q1 u + q2 u^2 (the start of each
    # sub-interval); rows 3-5: y(M), y'(M), y''/2 (its end, one sample past its last)
    qe = np.empty((6, len(ci)))
    c2d = c2 * d
    np.subtract(c0 + d * (c1 + c2d), last, out=qe[0])
    np.multiply(c1 + 2.0 * c2d, h, out=qe[1])
    np.multiply(c2, h * h, out=qe[2])
    if m_tail < n_grid:  # the sample past the last beat holds its value (0 once shifted)
        qe[:3, int(ci.searchsorted(m_tail)) :] = 0.0  # cuts are sorted: the last ones
    q2m = qe[2] * m
    np.add(qe[1], q2m + q2m, out=qe[4])
    np.add(qe[0], m * (qe[1] + q2m), out=qe[3])
    qe[5] = qe[2]
    # k = 0: the plain sums of each sub-interval, q0 M + q1 M(M-1)/2 + q2 M(M-1)(2M-1)/6
    mp = np.empty((3, len(ci)))  # M, M^2, M^3
    mp[0] = m
    np.multiply(m, m, out=mp[1])
    np.multiply(mp[1], m, out=mp[2])
    dc = (qe[:3] * (_DC_SUMS @ mp)).sum(axis=0)

    z = _phases(cuts, pl.nfft, pl.nk)  # z[k, i] = r_k^C_i
    seg = cuts.searchsorted(pl.seg_bounds)  # first cut of each segment, and past its last
    # Q(M) r^C_(i+1) - Q(0) r^C_i has the factor v on y, -r v^2 on y' and 2 r^2 v^3 - r v^2
    # on y''/2 (`_bin_factors`), at both ends: three weight rows per segment, each cut
    # weighted with the end of the sub-interval before it minus the start of the one after
    sub = np.arange(len(ci))
    inside = (sub >= seg[0][:, None]) & (sub < seg[1][:, None])
    qs = qe * inside[:, None, :]  # nseg x 6 x sub-intervals
    w = np.zeros((pl.nseg, 3, len(cuts)))
    w[:, :, 1:] = qs[:, 3:]
    w[:, :, :-1] -= qs[:, :3]
    # a real product on (re, im) pairs: a complex one (zgemm) of this size already runs on
    # OpenBLAS's threads, whose wake-up on a busy machine costs milliseconds (measured)
    zc = np.ascontiguousarray(z.T).view(np.float64)
    sums = _product(w.reshape(pl.nseg * 3, -1), zc).view(np.complex128)
    spec = (sums.reshape(pl.nseg, 3, pl.nk) * pl.factors).sum(axis=1)
    # k = 0 summed directly, minus the grid mean r^a_s sum_(j<n) r^j per segment (`ones`)
    spec[:, 0] = inside @ dc
    spec -= (float(dc.sum()) / n_grid) * pl.ones
    # k = -2 .. nk-1 (R[-k] = conj(R[k])), then the Hann window with the per-segment shift
    full = np.concatenate((np.conj(spec[:, 2:0:-1]), spec), axis=1)
    win = full[:, 2 : nbins + 2] - pl.e * full[:, :nbins] - pl.ec * full[:, 4 : nbins + 4]
    pairs = win.view(np.float64)  # (re, im) per bin
    p = (pairs * pairs).reshape(pl.nseg, nbins, 2).sum(axis=(0, 2))
    p *= pl.scale  # mean over segments, one-sided, the Hann combination's 1/2 squared
    return np.asarray(p, dtype=np.float64)


# sum_(u<M) of u^0, u^1, u^2 from M, M^2, M^3: M, (M^2 - M)/2, (2 M^3 - 3 M^2 + M)/6
_DC_SUMS = np.array([[1.0, 0.0, 0.0], [-0.5, 0.5, 0.0], [1.0 / 6.0, -0.5, 1.0 / 3.0]])


@dataclass(frozen=True, slots=True)
class _Plan:
    """What `_piecewise_low_bins` needs that depends on the window length in samples alone."""

    nfft: int
    nk: int
    nseg: int
    cuts: npt.NDArray[np.int64]  # segment bounds and the grid's end (the last one: m_tail)
    seg_bounds: npt.NDArray[np.int64]  # 2 x nseg: first sample and one past the last
    factors: npt.NDArray[np.complex128]  # 3 x nk, see `_bin_factors`
    ones: npt.NDArray[np.complex128]  # nseg x nk: r^a_s sum_(j<n) r^j
    e: npt.NDArray[np.complex128]  # nseg x 1: r_2^a_s / 2 (the Hann neighbours, halved)
    ec: npt.NDArray[np.complex128]  # its conjugate
    scale: npt.NDArray[np.float64]  # per bin: the factor of the summed |.|^2


def _plan(n_grid: int, nbins: int, fs: float) -> _Plan:
    """The plan of a window of `n_grid` samples, least recently used ones dropped past
    PLAN_CACHE. A live window's length in samples varies with the beat that starts it (span in
    (W - RR, W]), ~100 values at rest for 120 s, so they recur; building one costs a tenth to a
    fifth of a spectrum, a hit ~0.3 µs."""
    key = (n_grid, nbins, fs)
    pl = _PLANS.pop(key, None)
    if pl is None:
        if len(_PLANS) >= PLAN_CACHE:
            del _PLANS[next(iter(_PLANS))]
        pl = _make_plan(n_grid, nbins, fs)
    _PLANS[key] = pl  # newest last
    return pl


PLAN_CACHE = 256  # ~7 KB of arrays each: every length of a 120 s window down to 30 bpm
_PLANS: dict[tuple[int, int, float], _Plan] = {}


def _make_plan(n_grid: int, nbins: int, fs: float) -> _Plan:
    n = n_grid // 2
    nfft = 2 * n
    step = n - n // 2
    nseg = (n_grid - n) // step + 1
    nk = nbins + 2  # R_s at k = 0..nbins+1: the Hann combination reaches k + 2
    seg_lo = np.arange(0, nseg * step, step, dtype=np.int64)
    cuts = np.concatenate((seg_lo + n, seg_lo[1:], (n_grid, n_grid)))
    factors, ones = _bin_factors(nfft, nk)
    k = np.arange(nk)
    shift = np.exp((-2j * np.pi / nfft) * np.outer(seg_lo % nfft, k))  # r_k^a_s
    e = 0.5 * np.exp((-2j * np.pi / nfft) * 2.0 * (seg_lo % nfft))[:, None]
    # 1/2 of the Hann combination is folded into the scale: X = (R - 2 e R[k-2] - ...)/2
    norm = 0.25 * 2.0 / (nseg * fs * 3.0 * n / 8.0)  # (1/2)^2, one-sided, mean; hann^2: 3n/8
    scale = np.full(nbins, norm)
    scale[0] *= 0.5  # one-sided: every bin but 0 (and Nyquist) counted twice
    if nbins == nfft // 2 + 1:
        scale[-1] *= 0.5
    return _Plan(
        nfft,
        nk,
        nseg,
        cuts,
        np.stack((seg_lo, seg_lo + n)),
        factors,
        ones * shift,
        e,
        np.conj(e),
        scale,
    )


def quadratic_pieces(t: npt.NDArray[np.float64], x: npt.NDArray[np.float64]) -> F64:
    """The interpolating quadratic spline of `scipy.interpolate.make_interp_spline(t, x, k=2)`
    (the one `interp1d(kind="quadratic")` builds) as pieces: rows (breakpoints, a0, a1, a2) of
    one 4 x pieces array with S(b_p + d) = a0_p + a1_p d + a2_p d^2 on [b_p, b_p+1).

    scipy's knots for k = 2: t0 and t_(N-1) three times, between them the midpoints of t_1..t_(N-2)
    (the first and the last midpoint left out). Interpolation at the beats is then a tridiagonal
    system in the B-spline coefficients (each beat lies in one knot interval, where three
    B-splines are non-zero), solved by LAPACK's gtsv; scipy's general banded path costs ~5x more.
    """
    global _dgtsv
    if _dgtsv is None:
        from scipy.linalg.lapack import dgtsv  # lazy: scipy is slow to import

        _dgtsv = dgtsv
    n = len(t)
    mid = 0.5 * (t[1:-1] + t[2:])  # the midpoints after t_1 .. before t_(N-1)
    knots = np.concatenate(((t[0],) * 3, mid[: n - 3], (t[-1],) * 3))
    # B-spline values in knot interval l = j + 1 of beat j (1 <= j <= N-2): l-2, l-1, l
    lo, hi = knots[2:n], knots[3 : n + 1]  # [T_l, T_l+1) for l = 2..N-1
    d1 = hi - knots[1 : n - 1]  # T_l+1 - T_l-1
    d2 = knots[4 : n + 2] - lo  # T_l+2 - T_l
    tj = t[1:-1]
    w = hi - lo
    left = (hi - tj) ** 2 / (d1 * w)
    right = (tj - lo) ** 2 / (d2 * w)
    sub = np.concatenate((left, [0.0]))
    sup = np.concatenate(([0.0], right))
    diag = np.concatenate(([1.0], 1.0 - left - right, [1.0]))
    *_, c, info = _dgtsv(sub, diag, sup, x.reshape(-1, 1))
    if info != 0:  # a singular system: beat times not strictly increasing
        raise ValueError(f"quadratic spline: beat times must increase (LAPACK gtsv info {info})")
    c = c[:, 0]
    # the same intervals hold the pieces: S = c_l-1 + (c_l-2 - c_l-1) B_l-2 + (c_l - c_l-1) B_l
    dl = c[: n - 2] - c[1 : n - 1]  # c_l-2 - c_l-1
    dr = c[2:n] - c[1 : n - 1]  # c_l - c_l-1
    out = np.empty((4, n - 2))
    out[0] = lo
    np.add(c[1 : n - 1], dl * (w / d1), out=out[1])
    np.divide(-2.0 * dl, d1, out=out[2])
    np.add(dl / (d1 * w), dr / (d2 * w), out=out[3])
    return out


_dgtsv: Any = None  # scipy.linalg.lapack.dgtsv once imported


SINGLE_THREAD_PRODUCT = 1 << 18  # OpenBLAS runs a product of m*n*k above this on its threads


def _product(a: F64, b: F64) -> F64:
    """a @ b in pieces along the shared dimension, each small enough for OpenBLAS to keep on
    the calling thread: its threads sleep between spectra, and waking them on a busy machine
    cost ~50 ms for one 240 s window's product (measured), a thousand times the work."""
    rows, inner = a.shape
    cols = b.shape[1]
    step = max(1, SINGLE_THREAD_PRODUCT // (rows * cols))
    out = a[:, :step] @ b[:step]
    for i in range(step, inner, step):
        out += a[:, i : i + step] @ b[i : i + step]
    return out


def _phases(cuts: npt.NDArray[np.int64], nfft: int, nk: int) -> npt.NDArray[np.complex128]:
    """exp(-2 pi i k cuts_i / nfft) as rows k < nk, columns cuts: r^C from its exact phase (mod
    nfft), its powers by doubling (log2 nk products, error ~1e-14; a complex exp per entry
    costs ~10x more). Each product runs along whole contiguous rows: in the (cuts, k) layout
    the same doubling took twice as long, more than the transposing copy after it."""
    out = np.empty((nk, len(cuts)), dtype=np.complex128)
    out[0] = 1.0
    z = np.exp((-2j * np.pi / nfft) * (cuts % nfft))
    out[1] = z
    filled = 2
    while filled < nk:
        w = min(filled, nk - filled)
        np.multiply(out[:w], out[filled - 1] * z, out=out[filled : filled + w])
        filled += w
    return out


def _bin_factors(
    nfft: int, nk: int
) -> tuple[npt.NDArray[np.complex128], npt.NDArray[np.complex128]]:
    """Per bin k < nk, with r = exp(-2 pi i k / nfft) and v = 1/(r - 1): the factors of y, y'
    and y''/2 at a sub-interval's ends in Q(M) r^C_(i+1) - Q(0) r^C_i, namely v, -r v^2 and
    2 r^2 v^3 - r v^2 (k = 0 is summed directly); and the sum of r^j over a segment's nfft/2
    samples, ((-1)^k - 1) v (nfft/2 at k = 0)."""
    k = np.arange(nk)
    r = np.exp(-2j * np.pi * k / nfft)
    v = np.zeros(nk, dtype=np.complex128)
    v[1:] = 1.0 / (r[1:] - 1.0)
    rv2 = r * v * v
    ones = np.where(k % 2 == 1, -2.0 * v, 0.0)
    ones[0] = nfft // 2
    return np.stack((v, -rv2, 2.0 * r * rv2 * v - rv2)), ones


def psd_grid(
    t_s: Sequence[float] | npt.NDArray[np.float64],
    rr_ms: Sequence[float] | npt.NDArray[np.float64],
    resample_hz: float = RESAMPLE_HZ,
    max_hz: float | None = None,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """`psd` on the even grid itself: the reference arithmetic the closed form is tested against.

    The arithmetic of `scipy.interpolate.interp1d(kind="quadratic")` and `scipy.signal.welch`
    (Hann, half-length segments, 50 % overlap, 2x zero padding, density, mean), written out with
    numpy, on times from the first beat: with a session clock in epoch seconds (~1.8e9 s, where a
    double resolves 0.24 µs) the grid itself would otherwise be rounded. With `max_hz` only the
    low bins are computed, by Bluestein's chirp transform on FFTs of a fast length: the padded
    length 2 x segment is often a product with a large prime factor (12,002 = 2 x 17 x 353),
    where a plain FFT is several times slower.
    """
    from scipy.interpolate import make_interp_spline  # lazy: scipy is slow to import

    t = np.asarray(t_s, dtype=np.float64)
    t = t - t[0]  # exact; a spectrum does not depend on the clock's origin
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
    *,
    on_grid: bool = False,
) -> FrequencyDomain:
    """LF, HF, LF/HF, RSA breathing rate and coherence at `paced_hz` of the beats given.

    Fields are None when the beats span less than 60 s or the spectrum is empty. `on_grid`
    computes the spectrum on the resampled grid (`psd_grid`), the reference the closed form is
    tested and benchmarked against.
    """
    none = FrequencyDomain(t, window_s, None, None, None, None, None, paced_hz)
    if len(t_s) < 16 or t_s[-1] - t_s[0] < MIN_SPAN_S * 0.98:
        return none
    f, p = (psd_grid if on_grid else psd)(t_s, rr_ms, max_hz=BREATHING_BAND[1])
    edges = np.searchsorted(  # the first bin at or above each band limit, in one call
        f,
        (
            *LF_BAND,
            *HF_BAND,
            *TOTAL_BAND,
            paced_hz - half_width_hz,
            paced_hz + half_width_hz + 1e-12,
            BREATHING_BAND[0],
            SPONTANEOUS_MIN_HZ,
            BREATHING_BAND[1],
        ),
    ).tolist()
    df = float(f[1] - f[0])
    pl = p.tolist()  # a few dozen bins: plain floats are cheaper than numpy calls here
    lf = _trapezoid(pl, df, edges[0], edges[1])
    hf = _trapezoid(pl, df, edges[2], edges[3])
    total = _trapezoid(pl, df, edges[4], edges[5])
    paced = _trapezoid(pl, df, edges[6], edges[7])
    coherence = min(1.0, paced / total) if total > 0 else None
    # Spontaneous breathing is searched above the Mayer-wave region (~0.1 Hz); slow breathing
    # below it is reported only when the rhythm is locked to a slow pacer (coherence >= 0.5).
    locked = (coherence or 0.0) >= SLOW_BREATHING_COHERENCE
    i, j = edges[8] if locked else edges[9], edges[10]
    breathing = None
    if j > i:
        peak = max(pl[i:j])
        if peak > 0:  # the first bin holding the peak, as np.argmax
            breathing = float(f[pl.index(peak, i, j)] * 60.0)
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
