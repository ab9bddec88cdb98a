"""A deterministic synthetic single-lead ECG with known R-peak times (for detector tests)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]

# (offset from R in s, width sigma in s, amplitude in µV): P, Q, R, S, T
WAVES = ((-0.16, 0.025, 120.0), (-0.025, 0.008, -150.0), (0.0, 0.010, 1000.0),
         (0.028, 0.009, -300.0), (0.25, 0.045, 250.0))  # fmt: skip


def synthetic_ecg(
    r_times: F64, fs: float = 130.0, noise_uv: float = 10.0, seed: int = 0, t0: float = 0.0
) -> tuple[F64, F64]:
    """(sample times, µV): Gaussian waves around each R time, baseline wander, white noise."""
    rng = np.random.default_rng(seed)
    end = float(r_times[-1]) + 1.0
    t = t0 + np.arange(0.0, end - t0, 1.0 / fs)
    x = 40.0 * np.sin(2 * np.pi * 0.2 * t) + noise_uv * rng.standard_normal(t.size)
    for r in r_times:
        near = np.abs(t - r) < 0.5
        for off, sd, amp in WAVES:
            x[near] += amp * np.exp(-0.5 * ((t[near] - r - off) / sd) ** 2)
    return t, x


def beat_times(n: int, rr_ms: float = 800.0, swing_ms: float = 80.0, seed: int = 0) -> F64:
    """R times with a breathing swing and a little noise, starting at 1 s."""
    rng = np.random.default_rng(seed)
    k = np.arange(n)
    rr = rr_ms + swing_ms * np.sin(2 * np.pi * k / 5.0) + 5.0 * rng.standard_normal(n)
    return 1.0 + np.cumsum(rr) / 1000.0
