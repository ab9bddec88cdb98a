"""Synthetic chest acceleration from a known breathing trace, with movement bursts (tests)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]


def breathing_trace(
    bpm: float,
    duration_s: float,
    fs: float,
    jitter: float = 0.05,
    seed: int = 0,
    inhale: float = 0.4,
) -> tuple[F64, F64, F64]:
    """(times, trace in -1..1, breath start times): each breath's length varies by `jitter`;
    a breath starts at the trace's minimum (start of inhalation)."""
    rng = np.random.default_rng(seed)
    t = np.arange(0.0, duration_s, 1.0 / fs)
    starts = [0.0]
    while starts[-1] < duration_s + 30.0:
        starts.append(starts[-1] + 60.0 / bpm * (1.0 + jitter * rng.uniform(-1.0, 1.0)))
    st = np.asarray(starts)
    k = np.clip(np.searchsorted(st, t, side="right") - 1, 0, st.size - 2)
    phase = (t - st[k]) / (st[k + 1] - st[k])
    # inhale over the first `inhale` of each breath, exhale over the rest (I:E 1:1.5)
    rising = phase < inhale
    shape = np.where(
        rising,
        -np.cos(np.pi * phase / inhale),
        np.cos(np.pi * (phase - inhale) / (1.0 - inhale)),
    )
    return t, shape, st


def chest_acc(
    t: F64,
    trace: F64,
    tilt_mg: float = 8.0,
    noise_mg: float = 2.0,
    bursts: tuple[tuple[float, float], ...] = (),
    burst_mg: float = 200.0,
    seed: int = 0,
) -> F64:
    """n x 3 mg: gravity (1 g, the strap upright, slightly turned) tilted by the breathing
    trace; white sensor noise; movement bursts (start, length s) of broadband acceleration."""
    rng = np.random.default_rng(seed + 1)
    g = np.array([120.0, -985.0, 120.0])
    g *= 1000.0 / np.linalg.norm(g)
    axis = np.array([0.3, 0.1, 0.95])  # the chest's rise moves mostly along the strap's z
    axis /= np.linalg.norm(axis)
    acc = g + np.outer(trace * tilt_mg, axis) + noise_mg * rng.standard_normal((t.size, 3))
    for start, length in bursts:
        sel = (t >= start) & (t < start + length)
        acc[sel] += burst_mg * rng.standard_normal((int(sel.sum()), 3))
        acc[sel] += 300.0 * np.sin(2 * np.pi * 1.5 * t[sel])[:, None]
    return acc
