"""Streaming time-domain metrics equal neurokit2.hrv_time on the same window (1e-9).

The reference window is built here from the beat times fed in: the beats with
`t > t_newest - window_s` (docs/arousal.md), never from the pipeline's own window. Its values are
the beats' published values: what each input's update said the beat entered with, replaced by any
later revision of that beat (`BeatUpdate.revised`). A pipeline that keeps a beat too many or too
few, or forgets a revision, differs from this reference.
"""

from __future__ import annotations

import numpy as np
import pytest

from biofeedback.signal import BeatUpdate, SignalConfig, SignalPipeline, TimeDomain
from biofeedback.signal.synthetic import rr_series
from tests.hrv.helpers import nk_time, rel

TOL = 1e-9


class Reference:
    """The beats fed in so far (time and published value), kept by the test itself."""

    def __init__(self) -> None:
        self.t: list[float] = []
        self.value: dict[float, float] = {}

    def take(self, u: BeatUpdate) -> None:
        if u.beat is not None:
            self.t.append(u.beat.t)
            self.value[u.beat.t] = u.beat.rr_ms
        for b in u.revised:
            self.value[b.t] = b.rr_ms

    def window(self, window_s: float) -> list[float]:
        """Values of the beats with t > t_newest - window_s, oldest first."""
        horizon = self.t[-1] - window_s
        return [self.value[t] for t in self.t if t > horizon]


def check_window(td: TimeDomain | None, values: list[float]) -> None:
    """`td` equals neurokit2.hrv_time on exactly `values` (ms)."""
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


def check_update(u: BeatUpdate, ref: Reference, config: SignalConfig) -> None:
    check_window(u.short, ref.window(config.short_window_s))
    check_window(u.long, ref.window(config.long_window_s))


def whole_us(rr: np.ndarray) -> np.ndarray:
    """RR on the whole-microsecond grid the pipeline holds, so the values fed in are the values
    the reference uses (no rounding on one side only)."""
    return np.rint(rr * 1000.0) / 1000.0


def run_and_check(p: SignalPipeline, t: np.ndarray, rr: np.ndarray, every: int) -> int:
    ref = Reference()
    checked = 0
    for i, (a, b) in enumerate(zip(t.tolist(), whole_us(rr).tolist(), strict=True)):
        u = p.push_rr(a, b)
        ref.take(u)
        assert u.beat is not None
        assert u.beat.rr_ms == b  # no screen, no correction: the value fed in
        if i >= 3 and i % every == 0:
            check_update(u, ref, p.config)
            checked += 1
    return checked


def test_synthetic_without_correction() -> None:
    t, rr = rr_series(400, seed=11, rsa_ms=60.0, noise_ms=20.0)
    cfg = SignalConfig(artifact_correction=False, provisional_threshold=None)
    assert run_and_check(SignalPipeline(cfg), t, rr, every=17) > 20


def test_synthetic_with_corrections_swapped_in() -> None:
    t, rr = rr_series(300, seed=12)
    rr = whole_us(rr)
    rr[40::37] *= 0.65  # premature beats the detector corrects after the fact
    rr = whole_us(rr)
    p = SignalPipeline()
    ref = Reference()
    n = 0
    corrected = 0
    for i, (a, b) in enumerate(zip(t.tolist(), rr.tolist(), strict=True)):
        u = p.push_rr(a, b)
        ref.take(u)
        corrected += sum(x.corrected for x in u.revised)
        if i >= 3 and (u.revised or i % 23 == 0):
            check_update(u, ref, p.config)
            n += 1
    assert corrected >= 6
    assert n > 10


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_walk_series(seed: int) -> None:
    rng = np.random.default_rng(seed)
    rr = np.clip(800 + np.cumsum(rng.normal(0, 25, 600)), 300, 2400)
    t = 50.0 + np.cumsum(rr) / 1000
    cfg = SignalConfig(artifact_correction=False, provisional_threshold=None)
    assert run_and_check(SignalPipeline(cfg), t, rr, every=29) > 15


def test_window_edge_beat_exactly_window_s_old_is_out() -> None:
    """A beat exactly `window_s` before the newest is outside (`t > t_newest - window_s`), one
    a millisecond younger is inside: beats 1 s apart put one on each edge."""
    cfg = SignalConfig(artifact_correction=False, provisional_threshold=None, short_window_s=5.0)
    p = SignalPipeline(cfg)
    ref = Reference()
    rr = [1000.0, 1080.0, 990.0, 1050.0, 1000.0, 940.0, 1010.0, 1060.0, 985.0]
    u = None
    for k, v in enumerate(rr):
        u = p.push_rr(100.0 + k, v)  # whole seconds: exact in binary floating point
        ref.take(u)
    assert u is not None
    assert u.short is not None
    # newest at 108 s: 103 s is exactly 5 s old (out); 104..108 are in
    assert u.short.n == 5
    assert ref.window(5.0) == rr[-5:]
    check_window(u.short, rr[-5:])
    u = p.push_rr(108.999, 1000.0)  # 104 s is now 4.999 s old: still in
    ref.take(u)
    assert u.short is not None
    assert u.short.n == 6
    check_window(u.short, [*rr[-5:], 1000.0])


def test_published_nn50_on_a_hand_made_series() -> None:
    """NN50 counts successive differences strictly above 50 ms (Task Force 1996; neurokit2 and
    pyHRV use `> 50`). Hand count for the series below: differences +50, -50.001, +50.001, -49,
    +0.5 → two are above 50 ms, so pNN50 = 2 / 6 intervals * 100 (neurokit2 divides by N)."""
    values = [800.0, 850.0, 799.999, 850.0, 801.0, 801.5]
    cfg = SignalConfig(artifact_correction=False, provisional_threshold=None, short_window_s=10.0)
    p = SignalPipeline(cfg)
    u = None
    for k, v in enumerate(values):
        u = p.push_rr(200.0 + k, v)
    assert u is not None
    assert u.short is not None
    assert u.short.n == 6
    assert u.short.pnn50_pct == pytest.approx(2 / 6 * 100, rel=1e-12)
    check_window(u.short, values)
