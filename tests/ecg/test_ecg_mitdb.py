"""MIT-BIH Arrhythmia record 100 (../shared/data/mitdb-100, expert annotations): R peaks within
50 ms of the annotations and the 33 atrial premature beats classified "premature other", at the
record's 360 Hz and resampled to the H10's 130 Hz."""

from __future__ import annotations

import numpy as np
import pytest

from biofeedback.signal.ecg import detect_r_peaks
from biofeedback.signal.ecg_beats import BeatClass, classify_beats
from tests.support import SHARED_DATA, require, require_module

F = np.ndarray


def load() -> tuple[F, F, float, F, F]:
    wfdb = require_module("wfdb", "wfdb (pip install wfdb)")
    base = SHARED_DATA / "mitdb-100" / "100"
    require(base.with_suffix(".dat").exists(), f"MIT-BIH record 100 at {base} (mitdb-100)")
    rec = wfdb.rdrecord(str(base))
    ann = wfdb.rdann(str(base), "atr")
    fs = float(rec.fs)
    x = rec.p_signal[:, 0] * 1000.0  # MLII, mV -> µV
    sym = np.asarray(ann.symbol)
    beat = np.isin(sym, ["N", "A", "V"])
    return np.arange(x.size) / fs, x, fs, ann.sample[beat] / fs, sym[beat]


def nearest(a: F, b: F) -> tuple[F, F]:
    """For each of a: index of the nearest of b, and the distance (s)."""
    j = np.clip(np.searchsorted(b, a), 1, b.size - 1)
    j = np.where(np.abs(b[j] - a) < np.abs(b[j - 1] - a), j, j - 1)
    return j, np.abs(b[j] - a)


@pytest.mark.parametrize("rate", [None, 130.0], ids=["360Hz", "130Hz"])
def test_mitdb_100(rate: float | None) -> None:
    t, x, fs, ref_t, ref_sym = load()
    if rate is not None:  # the H10's rate: linear resampling
        t2 = np.arange(0.0, t[-1], 1.0 / rate)
        x, t, fs = np.interp(t2, t, x), t2, rate
    beats = detect_r_peaks(t, x, fs=fs)
    found = np.array([b.t for b in beats])
    _, d = nearest(ref_t, found)
    _, d2 = nearest(found, ref_t)
    assert np.mean(d < 0.05) >= 0.998  # measured 2270 / 2273 (sensitivity)
    assert np.mean(d2 < 0.05) >= 0.999  # measured 2270 / 2271 (positive predictivity)
    cls = classify_beats(beats, fs=fs)
    k, dk = nearest(ref_t, np.array([c.t for c in cls]))
    ok = dk < 0.05
    normal = [cls[i].beat_class for i in k[ok & (ref_sym == "N")]]
    apb = [cls[i].beat_class for i in k[ok & (ref_sym == "A")]]
    # measured at both rates: 2230 of 2237 normal (7 unknown), 32 of 33 APBs premature other
    assert normal.count(BeatClass.NORMAL) >= 0.995 * len(normal)
    assert BeatClass.PREMATURE_VENTRICULAR not in normal
    assert apb.count(BeatClass.PREMATURE_OTHER) >= 31
    assert BeatClass.NORMAL not in apb
