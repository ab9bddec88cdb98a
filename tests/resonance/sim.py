"""Simulated assessments: a client with a known baroreflex resonance follows the paced blocks."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from biofeedback.devices.physiology import Physiology, SimProfile
from biofeedback.signal import compute_offline
from biofeedback.signal.resonance import (
    DEFAULT_RATES_BPM,
    Assessment,
    Pacer,
    block_window,
    choose,
    score_block,
)

BLOCK_S = 120.0
REST_S = 30.0
SETTLE_S = 10.0


@dataclass(frozen=True, slots=True)
class SimRun:
    t: np.ndarray
    rr_ms: np.ndarray  # after the project's artifact correction
    corrected: np.ndarray
    pacers: tuple[Pacer, ...]
    windows: tuple[tuple[float, float], ...]


def client(resonance_bpm: float, seed: int) -> SimProfile:
    """A person drawn around the defaults: RSA, noise, Mayer waves and loop shape vary by seed."""
    rng = np.random.default_rng(10_000 + seed)
    return SimProfile(
        resonance_bpm=resonance_bpm,
        resting_hr_bpm=float(rng.uniform(60, 82)),
        rsa_ms=float(rng.uniform(20, 45)),
        resonance_gain=float(rng.uniform(2.5, 4.5)),
        resonance_q=float(rng.uniform(1.5, 3.5)),
        lf_ms=float(rng.uniform(8, 20)),
        noise_ms=float(rng.uniform(5, 12)),
        pacer_lag_s=float(rng.uniform(0.0, 1.5)),
        ectopic_per_min=0.5,
    )


def harsh_client(resonance_bpm: float, seed: int) -> SimProfile:
    """The same people with a noisier heart and a sloppier follower: beat noise 12-20 ms, 2
    ectopic beats/min, Mayer waves 20-30 ms, HR wander 3 bpm, trailing the pacer by 0-2 s."""
    rng = np.random.default_rng(50_000 + seed)
    return replace(
        client(resonance_bpm, seed),
        noise_ms=float(rng.uniform(12, 20)),
        ectopic_per_min=2.0,
        pacer_lag_s=float(rng.uniform(0.0, 2.0)),
        lf_ms=float(rng.uniform(20, 30)),
        drift_bpm=3.0,
    )


def simulate(
    profile: SimProfile,
    seed: int,
    rates: tuple[float, ...] = DEFAULT_RATES_BPM,
    inhale_share: float = 0.4,
) -> SimRun:
    m = Physiology(start_t=0.0, seed=seed, profile=profile)
    t = 60.0  # a minute breathing freely first
    m.set_stimulus(exposure=0.0, paced_breathing_bpm=None)
    beats = m.beats_until(t)
    pacers: list[Pacer] = []
    windows: list[tuple[float, float]] = []
    for r in rates:
        m.set_stimulus(
            exposure=0.0, paced_breathing_bpm=r, pacer_t0=t, pacer_inhale_share=inhale_share
        )
        pacers.append(Pacer(t, r, inhale_share))
        windows.append(block_window(pacers[-1], t + BLOCK_S, SETTLE_S))
        t += BLOCK_S
        beats += m.beats_until(t)
        m.set_stimulus(exposure=0.0, paced_breathing_bpm=None)
        t += REST_S
        beats += m.beats_until(t)
    bt = np.array([b.t for b in beats])
    rr = np.rint(np.array([b.rr_s * 1000.0 for b in beats]) * 1000.0) / 1000.0
    off = compute_offline(bt, rr)
    ok = off.accepted
    return SimRun(bt[ok], off.final_rr_ms[ok], off.corrected[ok], tuple(pacers), tuple(windows))


def assess(run: SimRun) -> Assessment:
    blocks = [
        score_block(run.t, run.rr_ms, p, start_t=a, end_t=b, corrected=run.corrected)
        for p, (a, b) in zip(run.pacers, run.windows, strict=True)
    ]
    return choose(blocks)
