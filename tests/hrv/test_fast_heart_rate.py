"""The fast heart rate behind arousal's fast component: the median of the newest `fast_beats`
raw RR of the segment (fewer right after the start or a gap), never of a rejected input."""

from __future__ import annotations

import statistics

import numpy as np

from biofeedback.signal import Baseline, SignalConfig, SignalPipeline
from biofeedback.signal.arousal import component
from biofeedback.signal.synthetic import rr_series

BASE = Baseline("c", 0.0, 120.0, 150, 0.0, 75.0, 3.0, 3.6, 0.15, 800.0)


def test_fast_component_is_the_median_of_the_newest_raw_beats_of_the_segment() -> None:
    cfg = SignalConfig()
    t, rr = rr_series(240, seed=5, hr_bpm=75.0, rsa_ms=60.0)
    rr = rr.copy()
    rr[100::37] *= 0.7  # premature beats: screened and corrected, but the fast rate stays raw
    beats = list(zip(t.tolist(), rr.tolist(), strict=True))
    # a gap (> gap_s) after beat 150, and implausible inputs, which are rejected
    beats = [(a + (30.0 if i > 150 else 0.0), b) for i, (a, b) in enumerate(beats)]
    beats[60] = (beats[60][0], 50.0)
    beats[155] = (beats[155][0], float("nan"))
    p = SignalPipeline(cfg, BASE)
    segment: list[int] = []
    last_t = None
    checked = 0
    for a, b in beats:
        u = p.push_rr(a, b)
        if u.rejected is not None:
            continue
        if last_t is not None and a - last_t > cfg.gap_s:
            segment = []
        last_t = a
        segment.append(round(b * 1000))
        median_us = statistics.median(segment[-cfg.fast_beats :])
        want = component((60_000_000.0 / median_us - BASE.hr_mean_bpm) / 4.0)  # floor 4 bpm
        assert u.arousal.fast == want
        checked += 1
    assert checked > 250


def test_guided_fast_rate_spans_a_breath_and_unguided_returns_to_five_beats() -> None:
    t, rr = rr_series(120, seed=6, hr_bpm=60.0, breath_hz=0.1, rsa_ms=80.0)
    p = SignalPipeline(SignalConfig(), BASE)
    raw: list[int] = []
    for i, (a, b) in enumerate(zip(t.tolist(), rr.tolist(), strict=True)):
        guided = 40 <= i < 80
        p.set_paced_breathing(0.1 if guided else None)
        u = p.push_rr(a, b)
        raw.append(round(b * 1000))
        recent = raw[-24:]
        if guided:
            n = max(5, int(np.ceil(10_000_000.0 * 5 / sum(raw[-5:]))))
            n = min(len(recent), n)
        else:
            n = 5
        median_us = statistics.median(raw[-n:])
        want = component((60_000_000.0 / median_us - BASE.hr_mean_bpm) / 4.0)
        assert u.arousal.fast == want, i
