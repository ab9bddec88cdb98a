"""The real Polar H10 record with ventricular ectopy (../shared/data/polar-h10-ecg-pvc), through
the live chain in strap-frame chunks: R peaks against the strap's own RR, neurokit2's
ecg_peaks as the reference detector, PVCs against the strap's short-long timing, verdicts."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest

from biofeedback.signal import SignalPipeline
from biofeedback.signal.ecg import EcgPeakDetector, detect_r_peaks
from biofeedback.signal.ecg_beats import BeatClass, BeatClassifier
from biofeedback.signal.ecg_reconcile import Agreement, EcgVerdict, RrReconciler
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


@dataclass
class Live:
    final: dict[float, bool]  # beat time -> corrected, as last revised
    verdicts: dict[float, EcgVerdict]
    late: int  # verdicts refused: the beat was judged already
    rmssd: dict[float, float]  # beat time -> the long-window RMSSD published with it


def through_pipeline(rec: H10Record, use_ecg: bool) -> Live:
    """Service order: strap RR into the pipeline as it arrives, the ECG's verdicts set as the
    reconciler resolves them (or not at all)."""
    det = EcgPeakDetector()
    cl = BeatClassifier()
    rc = RrReconciler()
    p = SignalPipeline()
    live = Live({}, {}, 0, {})
    si = 0
    for i in range(0, rec.t.size, 73):
        for b in det.push(rec.t[i : i + 73], rec.ecg_uv[i : i + 73]):
            rc.push_ecg(cl.push(b))
        now = rec.t[min(i + 73, rec.t.size) - 1]
        while si < rec.strap_t.size and rec.strap_t[si] <= now:
            t, rr = float(rec.strap_t[si]), float(rec.strap_rr_ms[si])
            u = p.push_rr(t, rr)
            for b in u.revised:
                live.final[b.t] = b.corrected
            if u.beat is not None:
                rc.push_strap(t, rr)
                if u.long is not None and u.long.rmssd_ms is not None:
                    live.rmssd[t] = u.long.rmssd_ms
            si += 1
        for c in rc.resolve(cl.pending_t - 1e-6 if cl.pending_t is not None else None):
            if use_ecg and c.verdict is not EcgVerdict.UNKNOWN:
                if p.set_ecg_verdict(c.t, c.verdict):
                    live.verdicts[c.t] = c.verdict
                else:
                    live.late += 1
    return live


def test_the_real_record_through_the_rr_pipeline_with_verdicts(rec: H10Record) -> None:
    """Every interval the ECG calls normal keeps its raw value, every one it calls ectopic is
    corrected."""
    live = through_pipeline(rec, use_ecg=True)
    final = live.final
    normal = [t for t, v in live.verdicts.items() if v is EcgVerdict.NORMAL]
    ectopic = [t for t, v in live.verdicts.items() if v is EcgVerdict.ECTOPIC]
    assert live.late == 0  # every verdict came before the RR detector judged the beat
    assert len(normal) >= 290  # measured 300
    assert len(ectopic) >= 470  # measured 483, 476 of them judged by the end
    judged = set(final)
    assert not any(final[t] for t in normal if t in judged)
    assert all(final[t] for t in ectopic if t in judged)
    assert sum(t in judged for t in ectopic) >= 0.95 * len(ectopic)


def test_live_rmssd_with_the_ecg_is_near_the_normal_to_normal_truth(
    rec: H10Record, streamed: Streamed
) -> None:
    """The RMSSD published with each beat (60 s window) against the RMSSD of the ECG's own
    normal-to-normal intervals in the 60 s before that beat's R peak (the truth HRV wants)."""
    cls = streamed.classified
    ts = np.array([c.t for c in cls])
    rr = np.array([c.rr_ms if c.rr_ms is not None else np.nan for c in cls])
    nn = np.array([c.normal_to_normal for c in cls])
    ecg_t = {c.t: c.ecg_t for c in streamed.checks if c.ecg_t is not None}

    def truth(t_end: float) -> float:
        idx = np.flatnonzero((ts > t_end - 60.0) & (ts <= t_end))
        d = [rr[j] - rr[j - 1] for j in idx if j > 0 and nn[j] and nn[j - 1]]
        return float(np.sqrt(np.mean(np.square(d)))) if len(d) > 5 else math.nan

    def errors(live: Live) -> np.ndarray:
        out = []
        for t, v in live.rmssd.items():
            if t in ecg_t and t > 90.0:
                tr = truth(ecg_t[t])
                if math.isfinite(tr):
                    out.append(abs(v - tr))
        return np.asarray(out)

    with_ecg = errors(through_pipeline(rec, use_ecg=True))
    rr_only = errors(through_pipeline(rec, use_ecg=False))
    assert with_ecg.size >= 400
    # measured: median |error| 20 ms with the ECG, 119 ms with RR alone (205 ms before the RR
    # detector judged a premature beat together with its pause; truth median 18 ms)
    assert np.median(with_ecg) <= 30.0
    assert np.median(rr_only) >= 3 * np.median(with_ecg)
