"""Artifact detection and spectra run at a bounded cadence on bounded buffers; memory stays flat."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import pytest

from biofeedback.signal import SignalConfig, SignalPipeline
from biofeedback.signal import artifacts as artifacts_mod
from biofeedback.signal.synthetic import fast_rr_series, rr_series


def test_detector_runs_every_8_beats_on_at_most_64(monkeypatch: pytest.MonkeyPatch) -> None:
    sizes: list[int] = []
    real = artifacts_mod.detect

    def counting(rr_us: Sequence[int]) -> list[str | None]:
        sizes.append(len(rr_us))
        return real(rr_us)

    monkeypatch.setattr(artifacts_mod, "detect", counting)
    t, rr = rr_series(330, seed=9)  # about 360 beats
    p = SignalPipeline()
    for a, b in zip(t.tolist(), rr.tolist(), strict=True):
        p.push_rr(a, b)
    n = len(t)
    assert len(sizes) == (n // 8) - 1  # first run once 16 beats are in
    assert max(sizes) == 64
    assert min(sizes) == 16


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
