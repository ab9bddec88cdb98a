"""Junk samples (NaN, inf, huge values, time going backwards or jumping) never raise and never
produce a non-finite output in the ECG, movement and breathing stages (hypothesis); importing them
pulls in nothing impure or heavy."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from biofeedback.signal.chest_breathing import ChestBreathing
from biofeedback.signal.ecg import EcgPeakDetector
from biofeedback.signal.ecg_beats import BeatClassifier
from biofeedback.signal.movement import MovementMeter
from tests.ecg.synthetic_ecg import beat_times, synthetic_ecg
from tests.support import REPO_ROOT

T, X = synthetic_ecg(beat_times(40, seed=5), seed=5)

junk = st.sampled_from([math.nan, math.inf, -math.inf, 1e12, -1e12, 0.0])


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, T.size - 1), junk), max_size=20),
    st.lists(st.tuples(st.integers(1, T.size - 1), st.floats(-5.0, 5.0)), max_size=5),
    st.integers(1, 300),
)
def test_ecg_junk_never_raises_nor_yields_nan(
    bad: list[tuple[int, float]], jumps: list[tuple[int, float]], chunk: int
) -> None:
    t, x = T.copy(), X.copy()
    for i, v in bad:
        x[i] = v
    for i, dt in jumps:
        t[i:] += dt
    det = EcgPeakDetector()
    cl = BeatClassifier()
    for i in range(0, t.size, chunk):
        for b in det.push(t[i : i + chunk], x[i : i + chunk]):
            assert math.isfinite(b.t)
            assert b.rr_ms is None or (math.isfinite(b.rr_ms) and b.rr_ms > 0)
            for c in cl.push(b):
                assert c.prematurity is None or math.isfinite(c.prematurity)


@settings(max_examples=20, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 1999), st.integers(0, 2), junk), max_size=10),
    st.lists(st.tuples(st.integers(1, 1999), st.floats(-3.0, 3.0)), max_size=3),
)
def test_acc_junk_never_raises_nor_yields_nan(
    bad: list[tuple[int, int, float]], jumps: list[tuple[int, float]]
) -> None:
    fs = 50.0
    t = np.arange(2000) / fs
    rng = np.random.default_rng(0)
    acc = np.array([0.0, -1000.0, 0.0]) + 3.0 * rng.standard_normal((2000, 3))
    acc[:, 2] += 8.0 * np.sin(2 * np.pi * 0.2 * t)
    for i, k, v in bad:
        acc[i, k] = v
    for i, dt in jumps:
        t[i:] += dt
    mm = MovementMeter(fs)
    cb = ChestBreathing(fs)
    for i in range(0, 2000, 25):
        for s in mm.push(t[i : i + 25], acc[i : i + 25]):
            assert math.isfinite(s.index_mg)
        for u in cb.push(t[i : i + 25], acc[i : i + 25]):
            assert u.rate_bpm is None or math.isfinite(u.rate_bpm)
            assert all(math.isfinite(b.depth_mg) for b in u.breaths)


def test_importing_the_ecg_and_acc_stages_stays_pure() -> None:
    forbidden = ("asyncio", "bleak", "paho", "aiohttp", "neurokit2", "scipy", "pandas")
    code = (
        "import sys\n"
        "import biofeedback.signal.ecg, biofeedback.signal.ecg_beats\n"
        "import biofeedback.signal.ecg_reconcile, biofeedback.signal.movement\n"
        "import biofeedback.signal.chest_breathing\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {forbidden!r})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""
