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


def paced_breathing_series(
    breaths_per_min: float,
    duration_s: float = 600.0,
    *,
    hr_bpm: float = 65.0,
    swing_bpm: tuple[float, float] = (6.0, 30.0),
    noise_ms: float = 6.0,
    jitter: float = 0.1,
    seed: int = 0,
    t0: float = 1000.0,
) -> tuple[FloatArray, FloatArray]:
    """Slow paced breathing: heart rate swings `swing_bpm` peak to trough, rising linearly from
    the first value to the second over the series, at `breaths_per_min`; each breath's length and
    depth vary by about `jitter` (people do not breathe like metronomes), plus white noise on RR.
    Every beat is normal: the series for false-positive counts of artifact correction."""
    rng = np.random.default_rng(seed)
    ts: list[float] = []
    rrs: list[float] = []
    t = 0.0
    phase = 0.0
    period = 60.0 / breaths_per_min
    depth = 1.0
    while t < duration_s:
        swing = swing_bpm[0] + (swing_bpm[1] - swing_bpm[0]) * min(1.0, t / duration_s)
        hr = hr_bpm - 0.5 * swing * depth * np.cos(phase)
        rr = 60000.0 / hr + noise_ms * rng.standard_normal()
        t += rr / 1000.0
        phase += 2 * np.pi * rr / 1000.0 / period
        if phase >= 2 * np.pi:  # a new breath: its own length and depth
            phase -= 2 * np.pi
            period = 60.0 / breaths_per_min * (1.0 + jitter * rng.uniform(-1.0, 1.0))
            depth = 1.0 + jitter * rng.uniform(-1.0, 1.0)
        ts.append(t0 + t)
        rrs.append(float(rr))
    return np.asarray(ts), np.asarray(rrs)
