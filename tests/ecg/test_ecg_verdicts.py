"""The ECG's verdict reaches the RR artifact stage: a normal-to-normal interval is never corrected,
an ectopic one always is (SignalPipeline.set_ecg_verdict, ecg_reconcile.overrule)."""

from __future__ import annotations

import numpy as np
import pytest

from biofeedback.signal import SignalPipeline
from biofeedback.signal.artifacts import Judgement
from biofeedback.signal.ecg_beats import BeatClass
from biofeedback.signal.ecg_reconcile import (
    ECG_ECTOPIC,
    EcgVerdict,
    interval_verdict,
    overrule,
)
from biofeedback.signal.synthetic import paced_breathing_series

N, V, A, U = (
    BeatClass.NORMAL,
    BeatClass.PREMATURE_VENTRICULAR,
    BeatClass.PREMATURE_OTHER,
    BeatClass.UNKNOWN,
)


def run(
    t: np.ndarray, rr: np.ndarray, verdicts: dict[int, EcgVerdict] | None = None
) -> dict[int, str | None]:
    """Push the series; the final artifact label of every beat (None: normal, kept raw)."""
    p = SignalPipeline()
    index = {float(x): i for i, x in enumerate(t)}
    labels: dict[int, str | None] = {}
    for i, (ti, ri) in enumerate(zip(t.tolist(), rr.tolist(), strict=True)):
        u = p.push_rr(ti, ri)
        if verdicts is not None and i in verdicts:
            assert p.set_ecg_verdict(ti, verdicts[i])
        for b in u.revised:
            labels[index[b.t]] = b.artifact if b.corrected else None
    return labels


def swing_with_odd_normal_beats() -> tuple[np.ndarray, np.ndarray, list[int]]:
    """6/min paced breathing with a 30 bpm swing, plus three abrupt but (by the ECG) normal
    beats: a sudden vagal lengthening and shortening that RR alone takes for ectopy."""
    t, rr = paced_breathing_series(6.0, 300.0, hr_bpm=65.0, seed=7)
    odd = [120, 200, 260]
    for k in odd:
        rr[k] *= 0.72
        rr[k + 1] *= 1.25
    t = t[0] + np.cumsum(rr) / 1000.0
    return t, rr, odd


def test_the_rr_detector_alone_corrects_the_odd_normal_beats() -> None:
    t, rr, odd = swing_with_odd_normal_beats()
    labels = run(t, rr)
    # the case the ECG must prevent: around each odd beat the RR detector corrects something
    assert all(any(labels.get(m) is not None for m in (k - 1, k, k + 1)) for k in odd)


def test_an_ecg_saying_normal_means_nothing_is_corrected() -> None:
    t, rr, _ = swing_with_odd_normal_beats()
    labels = run(t, rr, {i: EcgVerdict.NORMAL for i in range(t.size)})
    assert all(v is None for v in labels.values())


def test_a_pvc_the_ecg_marks_is_corrected_even_when_rr_alone_misses_it() -> None:
    t, rr = paced_breathing_series(6.0, 300.0, hr_bpm=65.0, seed=11)
    k = 150  # a late-coupled PVC: 6 % early, its pause 6 % long (RR alone sees a swing)
    rr[k] *= 0.94
    rr[k + 1] *= 1.06
    t = t[0] + np.cumsum(rr) / 1000.0
    assert run(t, rr).get(k) is None
    assert run(t, rr).get(k + 1) is None
    verdicts = {i: EcgVerdict.NORMAL for i in range(t.size)}
    verdicts[k] = verdicts[k + 1] = EcgVerdict.ECTOPIC
    labels = run(t, rr, verdicts)
    assert labels[k] == ECG_ECTOPIC
    assert labels[k + 1] == ECG_ECTOPIC
    assert sum(v is not None for v in labels.values()) == 2


def test_unknown_leaves_the_rr_detector_to_decide() -> None:
    t, rr, _odd = swing_with_odd_normal_beats()
    assert run(t, rr, {i: EcgVerdict.UNKNOWN for i in range(t.size)}) == run(t, rr)


def test_a_verdict_for_no_such_beat_or_a_judged_one_is_refused() -> None:
    p = SignalPipeline()
    t, rr = paced_breathing_series(6.0, 60.0, seed=1)
    for ti, ri in zip(t.tolist(), rr.tolist(), strict=True):
        p.push_rr(ti, ri)
    assert not p.set_ecg_verdict(float(t[-1]) + 0.5, EcgVerdict.NORMAL)  # no beat there
    assert not p.set_ecg_verdict(float(t[0]), EcgVerdict.NORMAL)  # judged long ago
    assert p.set_ecg_verdict(float(t[-1]), EcgVerdict.NORMAL)


def test_interval_verdicts() -> None:
    assert interval_verdict(N, [N]) is EcgVerdict.NORMAL
    assert interval_verdict(N, [V]) is EcgVerdict.ECTOPIC  # coupling interval
    assert interval_verdict(V, [N]) is EcgVerdict.ECTOPIC  # compensatory pause
    assert interval_verdict(N, [A]) is EcgVerdict.ECTOPIC
    assert interval_verdict(N, [V, N]) is EcgVerdict.ECTOPIC  # the strap missed the PVC
    assert interval_verdict(N, [U, N]) is EcgVerdict.UNKNOWN
    assert interval_verdict(U, [N]) is EcgVerdict.UNKNOWN
    assert interval_verdict(None, [N]) is EcgVerdict.UNKNOWN
    assert interval_verdict(N, []) is EcgVerdict.UNKNOWN


def test_overrule() -> None:
    flagged = Judgement(5, 700_000, "ectopic")
    clean = Judgement(5, 900_000, None)
    assert overrule(flagged, EcgVerdict.NORMAL, [800_000]).artifact is None
    assert overrule(clean, EcgVerdict.ECTOPIC, [800_000, 820_000, 810_000]) == Judgement(
        5, 810_000, ECG_ECTOPIC
    )
    assert overrule(clean, EcgVerdict.ECTOPIC, []) == clean  # nothing to replace it with
    # the ECG's replacement wins over the RR detector's interpolation, its label is kept
    assert overrule(flagged, EcgVerdict.ECTOPIC, [800_000]) == Judgement(5, 800_000, "ectopic")
    # bigeminy: no normal interval near, half of coupling + pause
    assert overrule(clean, EcgVerdict.ECTOPIC, [], 740_000) == Judgement(5, 740_000, ECG_ECTOPIC)
    assert overrule(flagged, EcgVerdict.ECTOPIC, [], None) == flagged
    assert overrule(flagged, EcgVerdict.UNKNOWN, [1]) == flagged
    assert overrule(flagged, None, [1]) == flagged


def test_an_ectopic_verdict_corrects_the_live_window_at_once() -> None:
    t, rr = paced_breathing_series(6.0, 120.0, hr_bpm=65.0, seed=5)
    p = SignalPipeline()
    for ti, ri in zip(t[:100].tolist(), rr[:100].tolist(), strict=True):
        p.push_rr(ti, ri)
    # a PVC: coupling 450 ms, compensatory pause 1050 ms
    tc = float(t[99]) + 0.45
    p.push_rr(tc, 450.0)
    assert p.set_ecg_verdict(tc, EcgVerdict.ECTOPIC)
    tp = tc + 1.05
    p.push_rr(tp, 1050.0)
    assert p.set_ecg_verdict(tp, EcgVerdict.ECTOPIC)
    tail = p.window_values_ms("long")[-2:]
    # both replaced before the RR detector judged either, by the recent normal intervals
    assert tail[0] == tail[1] == pytest.approx(float(np.median(rr[95:100])), abs=0.001)
