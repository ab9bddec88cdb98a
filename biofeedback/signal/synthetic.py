"""Deterministic synthetic RR series for tests and benchmarks (seeded, no I/O).

RR = 60000 / HR(t) + RSA(t) * sin(2 pi f_breath t) + Mayer wave (0.1 Hz) + white noise.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def rr_series(
    duration_s: float,
    *,
    hr_bpm: Callable[[float], float] | float = 65.0,
    rsa_ms: Callable[[float], float] | float = 40.0,
    breath_hz: float = 0.25,
    mayer_ms: float = 15.0,
    noise_ms: float = 8.0,
    seed: int = 0,
    t0: float = 1000.0,
) -> tuple[FloatArray, FloatArray]:
    """(beat times in s, RR in ms) covering `duration_s`; HR and RSA may vary with time."""
    rng = np.random.default_rng(seed)
    hr = hr_bpm if callable(hr_bpm) else (lambda _t, v=float(hr_bpm): v)
    rsa = rsa_ms if callable(rsa_ms) else (lambda _t, v=float(rsa_ms): v)
    ts: list[float] = []
    rrs: list[float] = []
    t = 0.0
    while t < duration_s:
        rr = 60000.0 / hr(t)
        rr += rsa(t) * np.sin(2 * np.pi * breath_hz * t)
        rr += mayer_ms * np.sin(2 * np.pi * 0.1 * t + 1.0)
        rr += noise_ms * rng.standard_normal()
        rr = float(np.clip(rr, 300.0, 2000.0))
        t += rr / 1000.0
        ts.append(t0 + t)
        rrs.append(rr)
    return np.asarray(ts), np.asarray(rrs)


def fast_rr_series(n: int, seed: int = 0, t0: float = 1000.0) -> tuple[FloatArray, FloatArray]:
    """A long vectorised series (for 24-hour benchmarks): about 75 bpm with RSA and noise."""
    rng = np.random.default_rng(seed)
    k = np.arange(n)
    rr = 800.0 + 40.0 * np.sin(2 * np.pi * k / 4.0) + 15.0 * np.sin(2 * np.pi * k / 12.5)
    rr += 8.0 * rng.standard_normal(n)
    rr = np.round(rr * 1024 / 1000) * 1000 / 1024  # the 1/1024 s grid a strap sends
    return t0 + np.cumsum(rr) / 1000.0, rr
