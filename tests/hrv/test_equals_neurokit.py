"""Streaming time-domain metrics equal neurokit2.hrv_time on the same cleaned window (1e-9)."""

from __future__ import annotations

import numpy as np
import pytest

from biofeedback.signal import BeatUpdate, SignalPipeline, TimeDomain
from biofeedback.signal.synthetic import rr_series
from tests.hrv.helpers import NO_ARTIFACTS, nk_time, rel

TOL = 1e-9


def check_window(td: TimeDomain | None, values: list[float]) -> None:
    assert td is not None
    assert td.n == len(values)
    ref = nk_time(values)
    assert rel(td.mean_nn_ms, ref["MeanNN"]) <= TOL
    assert rel(td.hr_bpm, 60000.0 / ref["MeanNN"]) <= TOL
    assert td.sdnn_ms is not None
    assert rel(td.sdnn_ms, ref["SDNN"]) <= TOL
    assert td.rmssd_ms is not None
    assert rel(td.rmssd_ms, ref["RMSSD"]) <= TOL
    assert td.pnn50_pct is not None
    assert rel(td.pnn50_pct, ref["pNN50"]) <= TOL


def run_and_check(p: SignalPipeline, t: np.ndarray, rr: np.ndarray, every: int) -> int:
    checked = 0
    u: BeatUpdate | None = None
    for i, (a, b) in enumerate(zip(t, rr, strict=True)):
        u = p.push_rr(float(a), float(b))
        if i >= 3 and i % every == 0:
            check_window(u.short, p.window_values_ms("short"))
            check_window(u.long, p.window_values_ms("long"))
            checked += 1
    return checked


def test_synthetic_without_correction() -> None:
    t, rr = rr_series(400, seed=11, rsa_ms=60.0, noise_ms=20.0)
    assert run_and_check(SignalPipeline(NO_ARTIFACTS), t, rr, every=17) > 20


def test_synthetic_with_corrections_swapped_in() -> None:
    t, rr = rr_series(300, seed=12)
    rr = rr.copy()
    rr[40::37] *= 0.65  # premature beats the detector corrects after the fact
    p = SignalPipeline()
    n = 0
    corrected = 0
    for i, (a, b) in enumerate(zip(t, rr, strict=True)):
        u = p.push_rr(float(a), float(b))
        corrected += len(u.revised)
        if i >= 3 and (u.revised or i % 23 == 0):
            check_window(u.short, p.window_values_ms("short"))
            check_window(u.long, p.window_values_ms("long"))
            n += 1
    assert corrected >= 6
    assert n > 10


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_walk_series(seed: int) -> None:
    rng = np.random.default_rng(seed)
    rr = np.clip(800 + np.cumsum(rng.normal(0, 25, 600)), 300, 2400)
    t = 50.0 + np.cumsum(rr) / 1000
    assert run_and_check(SignalPipeline(NO_ARTIFACTS), t, rr, every=29) > 15
