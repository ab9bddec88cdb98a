"""Artifact detection works per beat on bounded state, spectra at a bounded cadence; flat memory."""

from __future__ import annotations

import itertools

import numpy as np

from biofeedback.signal import SignalConfig, SignalPipeline
from biofeedback.signal.artifacts import MIN_SEGMENT_BEATS, Detector
from biofeedback.signal.synthetic import fast_rr_series


def test_detector_judges_each_beat_once_six_beats_later_on_bounded_state() -> None:
    """The native detector works per beat: each beat is judged once (an artifact when its next
    normal neighbour is judged), never later than a few beats after `artifact_lag_beats`, and its
    state stays bounded over a long recording."""
    _, rr = fast_rr_series(20_000, seed=5)
    x = np.rint(rr * 1000).astype(np.int64)
    x[500::97] = x[500::97] * 65 // 100  # a premature beat now and then
    det = Detector()
    judged_at: dict[int, int] = {}
    sizes = []
    for e, v in enumerate(x.tolist()):
        for j in det.push(v):
            assert j.k not in judged_at
            judged_at[j.k] = e
        if e % 1000 == 999:
            sizes.append(len(det._x) + len(det._dsorted) + len(det._msorted) + len(det._art))
    assert len(judged_at) == len(x) - 6
    delay = [e - k for k, e in judged_at.items() if k >= MIN_SEGMENT_BEATS]
    # 6 beats; 5 for a beat tested with its predecessor; an artifact waits for its next normal one
    assert min(delay) == 5
    assert max(delay) <= 10
    assert max(sizes) < 1000  # trimmed in blocks: a few hundred beats, whatever the length


def test_store_stays_bounded_over_a_long_recording() -> None:
    t, rr = fast_rr_series(30_000)
    p = SignalPipeline(SignalConfig(artifact_correction=False, frequency_cadence_s=1e9))
    sizes = []
    for i, (a, b) in enumerate(zip(t.tolist(), rr.tolist(), strict=True)):
        p.push_rr(a, b)
        if i % 1000 == 999:
            sizes.append(p.retained_beats)
    # 120 s of beats at 75 bpm (150) + compaction slack (512) + trim period (256)
    assert max(sizes) < 1000
    assert sizes[-1] <= max(sizes[:5])


def test_running_sums_do_not_drift_over_a_day() -> None:
    """After 108,000 beats the running sums equal a from-scratch recomputation exactly."""
    from biofeedback.signal.timedomain import NN50_US, time_domain

    t, rr = fast_rr_series(108_000, seed=4)
    p = SignalPipeline(SignalConfig(artifact_correction=False, frequency_cadence_s=1e9))
    u = None
    for a, b in zip(t.tolist(), rr.tolist(), strict=True):
        u = p.push_rr(a, b)
    assert u is not None
    x = [round(v * 1000) for v in p.window_values_ms("long")]
    d = [b - a for a, b in itertools.pairwise(x)]
    fresh = time_domain(
        60.0,
        len(x),
        sum(x),
        sum(v * v for v in x),
        sum(v * v for v in d),
        sum(abs(v) > NN50_US for v in d),
    )
    assert u.long == fresh
