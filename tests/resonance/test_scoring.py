"""Resonance-frequency scoring (biofeedback/signal/resonance.py): per-block spectra equal
neurokit2.hrv_frequency on the same window, each criterion means what docs/resonance.md says, and
on simulated clients with a known resonance the assessment finds it."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from biofeedback.errors import ParseError
from biofeedback.signal.resonance import (
    DEFAULT_RATES_BPM,
    Pacer,
    Weights,
    assessment_from_json,
    assessment_to_json,
    block_window,
    choose,
    score_block,
)
from tests.hrv.helpers import rel
from tests.resonance.sim import assess, client, harsh_client, simulate

TOL_LONG = 1e-6  # docs/arousal.md: windows of 100 s and longer (tests/hrv/test_frequency.py)


def nk_freq(t: np.ndarray, rr: np.ndarray) -> tuple[float, float]:
    import neurokit2 as nk

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df = nk.hrv_frequency({"RRI": rr, "RRI_Time": t}, normalize=False)
    return float(df["HRV_LF"].iloc[0]), float(df["HRV_HF"].iloc[0])


@pytest.mark.parametrize("res", [4.5, 5.5, 6.5])
def test_block_spectra_equal_neurokit_on_the_same_window(res: float) -> None:
    run = simulate(client(res, 1), 1)
    for pacer, (a, b) in zip(run.pacers, run.windows, strict=True):
        assert b - a >= 100.0  # whole cycles at every default rate keep the 1e-6 tolerance
        s = score_block(run.t, run.rr_ms, pacer, start_t=a, end_t=b, corrected=run.corrected)
        sel = (run.t >= a) & (run.t <= b)
        lf, hf = nk_freq(run.t[sel], run.rr_ms[sel])
        assert s.lf_ms2 is not None
        assert s.hf_ms2 is not None
        assert rel(s.lf_ms2, lf) <= TOL_LONG
        assert rel(s.hf_ms2, hf) <= TOL_LONG
        assert s.n_beats == int(sel.sum())


def test_block_window_is_whole_cycles_after_settling() -> None:
    for rate in DEFAULT_RATES_BPM:
        p = Pacer(100.0, rate)
        a, b = block_window(p, 220.0, 10.0)
        period = 60.0 / rate
        assert a >= 110.0
        assert a - period < 110.0
        assert b <= 220.0 + 1e-9
        assert b + period > 220.0
        cycles = (b - a) / period
        assert cycles == pytest.approx(round(cycles), abs=1e-9)


def _sine_block(
    rate: float, amp_ms: float, lag_s: float = 0.0, noise_ms: float = 0.0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, Pacer]:
    """RR with a pure oscillation at the pacer rate: HR highest `lag_s` after the pacer's
    volume peak (inhale share 0.5, volume peak at half a cycle)."""
    rng = np.random.default_rng(seed)
    pacer = Pacer(0.0, rate, 0.5)
    f = rate / 60.0
    t = [0.0]
    rr: list[float] = []
    while t[-1] < 130.0:
        mid = t[-1] + 0.45
        # RR shortest (HR highest) when cos(...) = 1: at the volume peak + lag
        x = 900.0 - amp_ms * math.cos(2 * math.pi * f * (mid - lag_s) - math.pi)
        x += float(rng.normal(0, noise_ms))
        rr.append(x)
        t.append(t[-1] + x / 1000.0)
    return np.array(t[1:]), np.array(rr), pacer


def test_phase_is_zero_in_phase_positive_when_hr_leads() -> None:
    t, rr, p = _sine_block(6.0, 40.0)
    s = score_block(t, rr, p, start_t=10.0, end_t=120.0)
    assert s.phase_deg == pytest.approx(0.0, abs=6.0)
    assert s.phase_source == "pacer"
    t, rr, p = _sine_block(6.0, 40.0, lag_s=-2.5)  # HR peaks 2.5 s (90 deg) before the volume
    s = score_block(t, rr, p, start_t=10.0, end_t=120.0)
    assert s.phase_deg == pytest.approx(90.0, abs=6.0)
    t, rr, p = _sine_block(6.0, 40.0, lag_s=2.5)
    s = score_block(t, rr, p, start_t=10.0, end_t=120.0)
    assert s.phase_deg == pytest.approx(-90.0, abs=6.0)


def test_phase_from_a_breathing_trace_overrides_the_pacer() -> None:
    t, rr, p = _sine_block(6.0, 40.0, lag_s=2.5)
    # the client actually breathed 2.5 s behind the pacer: against the chest, HR is in phase
    bt = np.arange(0.0, 130.0, 0.1)
    chest = Pacer(2.5, 6.0, 0.5).volume(bt)
    s = score_block(t, rr, p, start_t=10.0, end_t=120.0, breathing=(bt, chest))
    assert s.phase_source == "breathing"
    assert s.phase_deg == pytest.approx(0.0, abs=6.0)


def test_amplitude_lf_peak_smoothness_and_coherence() -> None:
    t, rr, p = _sine_block(5.0, 60.0)
    s = score_block(t, rr, p, start_t=12.0, end_t=120.0)
    # HR = 60000 / RR swings between 60000/960 and 60000/840 bpm
    assert s.peak_to_trough_bpm == pytest.approx(60000 / 840 - 60000 / 960, rel=0.05)
    assert s.lf_peak_hz == pytest.approx(5.0 / 60.0, abs=0.005)
    assert s.smoothness is not None
    assert s.smoothness > 0.95
    # the live coherence definition (+-0.015 Hz of Welch with half-window segments): a pure sine
    # over ~108 s reaches ~0.57, its ceiling at every rate (docs/resonance.md)
    assert s.coherence is not None
    assert s.coherence > 0.5
    assert s.usable
    assert s.quality > 0.95
    tn, rrn, _ = _sine_block(5.0, 60.0, noise_ms=40.0, seed=3)
    n = score_block(tn, rrn, p, start_t=12.0, end_t=120.0)
    assert n.smoothness is not None
    assert n.smoothness < s.smoothness - 0.2
    assert n.coherence is not None
    assert n.coherence < s.coherence


def test_poor_signal_blocks_do_not_compete() -> None:
    t, rr, p = _sine_block(6.0, 40.0)
    keep = (t < 40.0) | (t > 75.0)  # a 35 s dropout
    s = score_block(t[keep], rr[keep], p, start_t=10.0, end_t=120.0)
    assert not s.usable
    assert any("cover" in n for n in s.notes)
    corrected = np.zeros(len(t), bool)
    corrected[::5] = True
    s2 = score_block(t, rr, p, start_t=10.0, end_t=120.0, corrected=corrected)
    assert not s2.usable
    assert s2.corrected_share == pytest.approx(0.2, abs=0.02)
    short = score_block(t, rr, p, start_t=10.0, end_t=50.0)
    assert not short.usable
    assert short.lf_ms2 is None
    good = score_block(t, rr, p, start_t=10.0, end_t=120.0)
    a = choose([s, s2, good], planned_rates_bpm=(6.0,))
    assert a.rate_bpm == 6.0
    assert a.combined[0] is None
    assert a.combined[1] is None
    none = choose([s], planned_rates_bpm=(6.0, 5.0))
    assert none.rate_bpm is None
    assert not none.complete
    assert any("no block" in n for n in none.notes)


def test_choose_prefers_the_bigger_in_phase_swing() -> None:
    blocks = []
    for rate, amp, lag in ((6.0, 30.0, 1.5), (5.5, 55.0, 0.0), (5.0, 40.0, -1.5)):
        t, rr, p = _sine_block(rate, amp, lag_s=lag)
        blocks.append(score_block(t, rr, p, start_t=12.0, end_t=120.0))
    a = choose(blocks, planned_rates_bpm=(6.0, 5.5, 5.0))
    assert a.rate_bpm == 5.5
    assert a.complete
    partial = choose(blocks[:1], planned_rates_bpm=(6.0, 5.5, 5.0))
    assert partial.rate_bpm == 6.0
    assert not partial.complete
    with pytest.raises(ValueError, match="weights"):
        Weights(amplitude=-1.0)


def test_json_round_trip_and_bad_fields() -> None:
    a = assess(simulate(client(5.0, 2), 2))
    d = assessment_to_json(a)
    import json

    back = assessment_from_json(json.loads(json.dumps(d)))
    assert back == a
    bad = json.loads(json.dumps(d))
    bad["blocks"][1]["coherence"] = "high"
    with pytest.raises(ParseError, match=r"blocks\[1\].*coherence"):
        assessment_from_json(bad)
    bad = json.loads(json.dumps(d))
    del bad["complete"]
    with pytest.raises(ParseError, match="complete"):
        assessment_from_json(bad)
    with pytest.raises(ParseError, match="object"):
        assessment_from_json([1, 2])


SEEDS = 12  # per resonance rate; the share is printed (run with -s) and asserted


def test_finds_the_simulated_resonance_in_at_least_90_percent_of_seeds() -> None:
    hits = exact = n = 0
    misses: list[tuple[float, int, float | None]] = []
    for res in (4.5, 5.0, 5.5, 6.0, 6.5):
        for seed in range(SEEDS):
            a = assess(simulate(client(res, seed), seed))
            n += 1
            if a.rate_bpm is not None and abs(a.rate_bpm - res) <= 0.5 + 1e-9:
                hits += 1
            else:
                misses.append((res, seed, a.rate_bpm))
            exact += a.rate_bpm == res
    print(f"resonance found within 0.5/min: {hits}/{n}; exactly: {exact}/{n}; misses {misses}")
    assert hits / n >= 0.9, misses


def test_noisier_clients_still_mostly_found() -> None:
    """Beyond the target: a noisier heart and a client trailing the pacer by up to 2 s. Measured
    on seeds 100-139 per rate: 188/200 (94 %) within 0.5/min (docs/resonance.md)."""
    hits = n = 0
    for res in (4.5, 5.0, 5.5, 6.0, 6.5):
        for seed in range(100, 100 + SEEDS):
            a = assess(simulate(harsh_client(res, seed), seed))
            n += 1
            hits += a.rate_bpm is not None and abs(a.rate_bpm - res) <= 0.5 + 1e-9
    print(f"noisier clients: within 0.5/min {hits}/{n}")
    assert hits / n >= 0.85
