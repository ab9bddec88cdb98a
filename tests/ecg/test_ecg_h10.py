"""The real Polar H10 record with ventricular ectopy (../shared/data/polar-h10-ecg-pvc), through
the live chain in strap-frame chunks: R peaks against the strap's own RR, neurokit2's
ecg_peaks as the reference detector, PVCs against the strap's short-long timing, verdicts."""

from __future__ import annotations

import numpy as np
import pytest

from biofeedback.signal.ecg import detect_r_peaks
from biofeedback.signal.ecg_beats import BeatClass
from biofeedback.signal.ecg_reconcile import Agreement, EcgVerdict
from tests.ecg.h10_record import (
    H10Record,
    Streamed,
    load_h10,
    pvc_reference,
    pvc_score,
    rr_score,
    stream,
)
from tests.support import require_module


@pytest.fixture(scope="module")
def rec() -> H10Record:
    return load_h10()


@pytest.fixture(scope="module")
def streamed(rec: H10Record) -> Streamed:
    return stream(rec)


def test_r_peaks_against_the_strap_rr(rec: H10Record, streamed: Streamed) -> None:
    s = rr_score(streamed.checks, rec.strap_rr_ms.size)
    # issue 13's targets: >= 99 % of beats matched, median |dRR| <= 8 ms (one sample)
    assert s.located / s.strap_beats >= 0.99  # measured 792 / 798
    assert s.median_abs_ms <= 1.0  # measured 0.51 ms: sub-sample peaks
    assert s.p99_abs_ms <= 5.0  # measured 3.4 ms
    assert len(streamed.checks) == rec.strap_rr_ms.size  # every strap interval answered


def test_the_strap_missed_two_pvcs_the_ecg_shows(streamed: Streamed) -> None:
    splits = [c for c in streamed.checks if c.agreement is Agreement.ECG_SPLITS]
    assert len(splits) == 3  # two missed PVCs, one muscle-noise detection (docs/ecg.md)
    assert all(abs(c.difference_ms or 99.0) < 2.0 for c in splits)  # the parts add up
    assert sum(c.verdict is EcgVerdict.ECTOPIC for c in splits) >= 2


def test_neurokit2_ecg_peaks_is_the_reference(rec: H10Record) -> None:
    nk = require_module("neurokit2", "neurokit2 (pip install neurokit2)")
    fs = 1.0 / float(np.median(np.diff(rec.t)))
    clean = nk.ecg_clean(rec.ecg_uv, sampling_rate=fs)
    _, info = nk.ecg_peaks(clean, sampling_rate=fs, method="neurokit")
    ref = rec.t[np.asarray(info["ECG_R_Peaks"])]
    ours = np.array([b.t for b in detect_r_peaks(rec.t, rec.ecg_uv)])

    def share_within(a: np.ndarray, b: np.ndarray, tol_s: float) -> float:
        j = np.clip(np.searchsorted(b, a), 1, b.size - 1)
        d = np.minimum(np.abs(b[j] - a), np.abs(b[j - 1] - a))
        return float(np.mean(d <= tol_s))

    assert share_within(ref[ref > 1.0], ours, 0.05) >= 0.99  # measured 0.993 (808 peaks)
    assert share_within(ours, ref, 0.05) >= 0.99


def test_pvcs_by_shape_and_timing(rec: H10Record, streamed: Streamed) -> None:
    s = pvc_score(rec, streamed)
    # measured: 240 agree, 2 + 2 disagree; all four are the reference's errors on review
    # (docs/ecg.md): two PVCs the strap missed, two first beats of a couplet after a pause
    assert s.precision >= 0.98
    assert s.recall >= 0.98
    assert s.ecg_only_pvcs == 2


def test_no_pvc_interval_is_called_normal(rec: H10Record, streamed: Streamed) -> None:
    ref = pvc_reference(rec.strap_rr_ms)
    index = {float(t): i for i, t in enumerate(rec.strap_t)}
    checks = streamed.checks
    for c, nxt in zip(checks, [*checks[1:], None], strict=True):
        i = index[c.t]
        after_pvc = i > 0 and ref[i - 1]
        # where the strap missed a PVC (next interval not matched one-to-one) its own
        # short-long rule points at the wrong beat
        strap_missed = nxt is not None and nxt.agreement is not Agreement.MATCH
        if (ref[i] or after_pvc) and c.ecg_t is not None and c.ecg_t > 10.0 and not strap_missed:
            assert c.verdict is not EcgVerdict.NORMAL, c


def test_classes_on_the_record(streamed: Streamed) -> None:
    n = {k: sum(b.beat_class is k for b in streamed.classified) for k in BeatClass}
    assert n[BeatClass.PREMATURE_VENTRICULAR] >= 240
    assert n[BeatClass.NORMAL] >= 530
    assert n[BeatClass.UNKNOWN] <= 15  # the 8-beat warm-up and muscle noise
