"""The vectorised offline path returns exactly what the streaming path returned, input by input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from biofeedback.signal import (
    BeatUpdate,
    OfflineResult,
    SignalConfig,
    SignalPipeline,
    TimeDomain,
    WindowArrays,
    compute_offline,
)
from biofeedback.signal.synthetic import rr_series
from tests.hrv.test_api import calibrated


def opt(v: float | None) -> float:
    return math.nan if v is None else v


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def check_window(td: TimeDomain | None, w: WindowArrays, i: int) -> None:
    if td is None:
        assert w.n[i] == 0
        return
    assert td.n == w.n[i]
    for name in ("mean_nn_ms", "hr_bpm", "rmssd_ms", "sdnn_ms", "pnn50_pct"):
        got = float(getattr(w, name)[i])
        assert same(opt(getattr(td, name)), got), (i, name, getattr(td, name), got)


def compare(ups: list[BeatUpdate], off: OfflineResult) -> None:
    assert len(ups) == len(off.t)
    for i, u in enumerate(ups):
        assert (u.beat is not None) == bool(off.accepted[i]), i
        if u.beat is not None:
            assert u.beat.rr_ms == off.rr_ms[i]
        check_window(u.short, off.short, i)
        check_window(u.long, off.long, i)
        assert u.quality.score == off.quality[i], i
        assert u.quality.corrected_share == off.corrected_share[i], i
        assert u.quality.rejected_share == off.rejected_share[i], i
        assert u.quality.hrv_available == bool(off.hrv_available[i]), i
        a = u.arousal
        assert same(opt(a.value), float(off.arousal[i])), (i, a, off.arousal[i])
        assert same(opt(a.fast), float(off.arousal_fast[i])), i
        assert same(opt(a.slow), float(off.arousal_slow[i])), i
        assert a.confidence == off.confidence[i], i
        assert a.basis.value == off.basis[i], i
    # each beat's final state (its intake value, then every revision in order) is the
    # offline path's final state, screened beats restored or corrected alike
    final = {u.beat.t: u.beat for u in ups if u.beat is not None}
    for u in ups:
        final.update((b.t, b) for b in u.revised)
    assert len(final) == int(off.accepted.sum())
    for i in np.flatnonzero(off.accepted).tolist():
        b = final[float(off.t[i])]
        assert b.rr_ms == off.final_rr_ms[i], i
        assert b.corrected == bool(off.corrected[i]), i
        assert b.artifact == off.artifact[i], i
    intake = {float(off.t[i]) for i in np.flatnonzero(off.provisional)}
    assert intake == {u.beat.t for u in ups if u.beat is not None and u.beat.corrected}


def messy_series(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Synthetic beats with ectopics, bad values, out-of-order times, gaps and gap marks."""
    t, rr = rr_series(420, seed=seed, hr_bpm=lambda s: 62 + 25 * (s > 250), rsa_ms=30.0)
    t, rr = t.copy(), rr.copy()
    rng = np.random.default_rng(seed)
    rr[rng.choice(len(rr), 12, replace=False)] *= 0.6  # premature beats
    bad = rng.choice(len(rr), 15, replace=False)
    rr[bad[:5]] = np.nan
    rr[bad[5:10]] = -5.0
    rr[bad[10:]] = 3100.0
    t[rng.choice(len(t), 4, replace=False)] -= 3.0  # out of order
    t[len(t) // 3 :] += 12.0  # a silent gap
    gaps = np.zeros(len(t), dtype=bool)
    gaps[2 * len(t) // 3] = True  # an explicit mark_gap
    return t, rr, gaps


def stream(
    t: np.ndarray,
    rr: np.ndarray,
    gaps: np.ndarray,
    p: SignalPipeline,
    contact: list[bool | None] | None = None,
) -> list[BeatUpdate]:
    ups = []
    flags = contact or [None] * len(t)
    for a, b, g, c in zip(t.tolist(), rr.tolist(), gaps.tolist(), flags, strict=True):
        if g:
            p.mark_gap(a)
        ups.append(p.push_rr(a, b, c))
    return ups


@pytest.mark.parametrize("seed", [1, 2])
def test_offline_equals_streaming_with_artifacts_gaps_and_baseline(seed: int) -> None:
    _, b, _ = calibrated()
    t, rr, gaps = messy_series(seed)
    ups = stream(t, rr, gaps, SignalPipeline(baseline=b))
    off = compute_offline(t, rr, None, b, gap_before=gaps)
    assert off.corrected.sum() >= 5
    assert np.isfinite(off.arousal).sum() > 100
    compare(ups, off)


def test_offline_equals_streaming_without_baseline_or_correction() -> None:
    t, rr, gaps = messy_series(3)
    cfg = SignalConfig(artifact_correction=False, short_window_s=20.0, long_window_s=45.0)
    ups = stream(t, rr, gaps, SignalPipeline(cfg))
    compare(ups, compute_offline(t, rr, cfg, None, gap_before=gaps))


def test_offline_frequency_matches_streaming() -> None:
    t, rr = rr_series(200, seed=8)
    for cfg, least in ((SignalConfig(frequency_cadence_s=1.0), 50), (SignalConfig(), 5)):
        p = SignalPipeline(cfg)
        ups = [p.push_rr(a, b) for a, b in zip(t.tolist(), rr.tolist(), strict=True)]
        got = [(i, u.frequency) for i, u in enumerate(ups)]
        stream_f = [(i, f) for i, f in got if f is not None]
        off = compute_offline(t, rr, cfg, frequency=True)
        assert len(stream_f) > least
        assert off.frequency == stream_f


def test_offline_on_empty_and_all_bad_input() -> None:
    off = compute_offline(np.array([]), np.array([]))
    assert len(off.t) == 0
    off = compute_offline(np.array([1.0, 2.0, 0.5]), np.array([np.nan, -1.0, 9000.0]))
    assert not off.accepted.any()
    assert np.isnan(off.short.mean_nn_ms).all()


def test_offline_equals_streaming_with_contact_flags() -> None:
    _, b, _ = calibrated()
    t, rr, gaps = messy_series(4)
    rng = np.random.default_rng(4)
    codes = rng.choice(3, len(t), p=[0.8, 0.15, 0.05]).tolist()
    contact: list[bool | None] = [[True, None, False][k] for k in codes]
    ups = stream(t, rr, gaps, SignalPipeline(baseline=b), contact)
    off = compute_offline(t, rr, None, b, gap_before=gaps, contact=contact)
    compare(ups, off)
    revised = [x for u in ups for x in u.revised]
    assert revised
    by_t = dict(zip(t.tolist(), contact, strict=True))
    assert all(x.contact == by_t[x.t] for x in revised)
