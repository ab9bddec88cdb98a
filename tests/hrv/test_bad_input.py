"""Bad beats never raise and never produce NaN metrics (hypothesis)."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from biofeedback.signal import BeatUpdate, SignalConfig, SignalPipeline, compute_offline
from tests.hrv.test_api import calibrated

NO_NK = SignalConfig(artifact_correction=False)  # neurokit2 runs are covered elsewhere

anything = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=200, max_value=2600),
    st.sampled_from([0.0, -1.0, -800.0, math.nan, math.inf, -math.inf, 1e308, 5e-324]),
)
times = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=0, max_value=1000),
)


def finite_or_none(*values: float | None) -> bool:
    return all(v is None or math.isfinite(v) for v in values)


def assert_sane(u: BeatUpdate) -> None:
    assert math.isfinite(u.t)  # updates are published as JSON: no NaN anywhere
    assert math.isfinite(u.arousal.t)
    for td in (u.short, u.long):
        if td is not None:
            assert finite_or_none(td.mean_nn_ms, td.hr_bpm, td.rmssd_ms, td.sdnn_ms, td.pnn50_pct)
            assert td.n >= 1
    q = u.quality
    assert 0.0 <= q.score <= 1.0
    assert math.isfinite(q.corrected_share)
    assert math.isfinite(q.rejected_share)
    a = u.arousal
    assert finite_or_none(a.value, a.fast, a.slow, a.confidence)
    if a.value is not None:
        assert 0.0 <= a.value <= 100.0
    assert 0.0 <= a.confidence <= 1.0
    assert (u.beat is None) == (u.rejected is not None) or u.hr_bpm is not None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(times, anything, st.booleans(), st.sampled_from([None, True, False]))))
def test_random_inputs_never_raise_or_give_nan(
    items: list[tuple[float, float, bool, bool | None]],
) -> None:
    _, b, _ = _BASE
    p = SignalPipeline(NO_NK, baseline=b)
    for t, v, hr_only, contact in items:
        u = p.push_hr(t, v, contact) if hr_only else p.push_rr(t, v, contact)
        assert_sane(u)
        if v != v:  # NaN value
            assert u.rejected is not None


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(times, anything), max_size=80))
def test_offline_never_raises_and_matches_stream(items: list[tuple[float, float]]) -> None:
    t = np.array([a for a, _ in items], dtype=float)
    rr = np.array([v for _, v in items], dtype=float)
    p = SignalPipeline(NO_NK)
    ups = [p.push_rr(float(a), float(v)) for a, v in items]
    off = compute_offline(t, rr, NO_NK)
    for i, u in enumerate(ups):
        assert (u.beat is not None) == bool(off.accepted[i])
        if u.long is not None:
            assert u.long.n == off.long.n[i]
            assert u.long.mean_nn_ms == off.long.mean_nn_ms[i]


def test_monotone_beats_with_garbage_between_keep_metrics_finite() -> None:
    rng = np.random.default_rng(0)
    p = SignalPipeline(NO_NK)
    t = 0.0
    for i in range(2000):
        t += 0.8
        v = float(rng.choice([800.0, math.nan, -1.0, 0.0, 1e9, 251.0, 2499.0, 800.0 + i % 7]))
        assert_sane(p.push_rr(t, v))
        if i % 97 == 0:
            p.mark_gap(t)
        if i % 13 == 0:
            assert_sane(p.push_rr(t - 5.0, 800.0))  # out of order


def test_constant_rr_has_zero_variability_not_nan() -> None:
    p = SignalPipeline(NO_NK)
    u = None
    for i in range(100):
        u = p.push_rr(1.0 + i, 1000.0)
    assert u is not None
    assert u.long is not None
    assert u.long.rmssd_ms == 0.0
    assert u.long.sdnn_ms == 0.0
    assert not u.quality.hrv_available  # no variability: no vagal signal to read


_BASE = calibrated()
