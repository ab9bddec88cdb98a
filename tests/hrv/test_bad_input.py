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


def expected_rr_reason(t: float, v: float, last_t: float | None) -> str | None:
    """The rejection an RR input must get, written from the documented limits (250-2500 ms,
    strictly increasing finite times), not from the pipeline."""
    if not math.isfinite(t):
        return "beat time is not a finite number"
    if math.isnan(v):
        return "RR interval is not a number"
    if v <= 0:
        return f"RR interval {v:g} ms is not positive"
    if v < 250.0:
        return f"RR interval {v:g} ms is below 250 ms"
    if v > 2500.0:
        return f"RR interval {v:g} ms is above 2500 ms"
    if last_t is not None and t <= last_t:
        return f"beat time {t:.3f} s is not after the previous beat at {last_t:.3f} s"
    return None


def expected_hr_reason(t: float, v: float, last_t: float | None) -> str | None:
    """The rejection a heart-rate-only input must get (20-250 bpm, increasing finite times)."""
    if not math.isfinite(t):
        return "sample time is not a finite number"
    if not math.isfinite(v):
        return "heart rate is not a finite number"
    if not 20.0 <= v <= 250.0:
        return f"heart rate {v:g} bpm is outside 20..250 bpm"
    if last_t is not None and t <= last_t:
        return f"sample time {t:.3f} s is not after the previous sample at {last_t:.3f} s"
    return None


def assert_verdict(u: BeatUpdate, hr_only: bool, t: float, v: float, why: str | None) -> None:
    """An accepted input comes back as a beat (RR) or a heart rate (HR-only) at its own time;
    a rejected one comes back with exactly the expected reason and neither."""
    assert u.rejected == why
    if why is not None:
        assert u.beat is None
        assert u.hr_bpm is None
        return
    assert u.t == t
    if hr_only:
        assert u.beat is None
        assert u.hr_bpm == v
    else:
        assert u.beat is not None
        assert (u.beat.t, u.beat.raw_rr_ms) == (t, v)
        assert u.hr_bpm is not None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(times, anything, st.booleans(), st.sampled_from([None, True, False]))))
def test_random_inputs_never_raise_or_give_nan(
    items: list[tuple[float, float, bool, bool | None]],
) -> None:
    _, b, _ = _BASE
    p = SignalPipeline(NO_NK, baseline=b)
    last_rr_t: float | None = None
    last_hr_t: float | None = None
    for t, v, hr_only, contact in items:
        if hr_only:
            u = p.push_hr(t, v, contact)
            why = expected_hr_reason(t, v, last_hr_t)
            last_hr_t = t if why is None else last_hr_t
        else:
            u = p.push_rr(t, v, contact)
            why = expected_rr_reason(t, v, last_rr_t)
            last_rr_t = t if why is None else last_rr_t
        assert_sane(u)
        assert_verdict(u, hr_only, t, v, why)


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
    last: float | None = None
    for i in range(2000):
        t += 0.8
        v = float(rng.choice([800.0, math.nan, -1.0, 0.0, 1e9, 251.0, 2499.0, 800.0 + i % 7]))
        u = p.push_rr(t, v)
        assert_sane(u)
        why = expected_rr_reason(t, v, last)
        assert_verdict(u, False, t, v, why)
        last = t if why is None else last
        if i % 97 == 0:
            p.mark_gap(t)
        if i % 13 == 0:
            u = p.push_rr(t - 5.0, 800.0)  # out of order
            assert_sane(u)
            assert_verdict(u, False, t - 5.0, 800.0, expected_rr_reason(t - 5.0, 800.0, last))


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
