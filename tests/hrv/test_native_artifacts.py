"""The native Lipponen-Tarvainen detector: the paper's criteria, the per-beat form equal to the
vectorised one, the intake screen's two forms, and agreement with neurokit2 on real series."""

from __future__ import annotations

import itertools
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from biofeedback.signal.artifacts import (
    LABELS,
    MIN_LAG,
    MIN_SEGMENT_BEATS,
    UNJUDGED,
    Detector,
    detect,
    judge_segment,
)
from biofeedback.signal.intake import ProvisionalScreen, screen_offline
from biofeedback.signal.synthetic import rr_series


def stream(x: np.ndarray, lag: int = MIN_LAG) -> dict[int, tuple[str | None, int, int]]:
    """Every judgement of the per-beat detector: beat -> (label, value, arrival it came with)."""
    det = Detector(lag)
    out: dict[int, tuple[str | None, int, int]] = {}
    for e, v in enumerate(x.tolist()):
        for j in det.push(v):
            assert j.k not in out, "a beat is judged once"
            out[j.k] = (j.artifact, j.value_us, e)
    return out


def assert_same(x: np.ndarray, lag: int = MIN_LAG) -> None:
    got = stream(x, lag)
    sj = judge_segment(x, lag)
    for k in range(len(x)):
        code = int(sj.labels[k])
        if code == UNJUDGED:
            assert k not in got, k
            assert sj.values[k] == x[k]
            continue
        assert got[k] == (LABELS[code], int(sj.values[k]), int(sj.judged_at[k])), k


def calm(n: int, seed: int = 0) -> np.ndarray:
    _, rr = rr_series(n * 0.9, seed=seed, hr_bpm=67.0, rsa_ms=25.0, noise_ms=6.0)
    return np.rint(rr[:n] * 1000).astype(np.int64)


rr_values = st.integers(min_value=250_000, max_value=2_500_000)


@st.composite
def series(draw: st.DrawFn) -> tuple[np.ndarray, int]:
    """A random walk of RR with premature beats, pauses, missed and extra beats, bigeminy runs."""
    n = draw(st.integers(min_value=30, max_value=400))
    seed = draw(st.integers(min_value=0, max_value=2**32 - 1))
    rng = np.random.default_rng(seed)
    x = 800_000 + np.cumsum(rng.normal(0, draw(st.sampled_from([3_000, 15_000, 40_000])), n))
    share = draw(st.sampled_from([0.0, 0.02, 0.1, 0.3]))
    odd = rng.random(n) < share
    x[odd] *= rng.uniform(0.4, 2.1, int(odd.sum()))
    if draw(st.booleans()):
        a = int(rng.integers(0, n))
        x[a : a + 60 : 2] *= 0.6
    x = np.clip(np.rint(x), 250_000, 2_500_000).astype(np.int64)
    for i, v in draw(st.lists(st.tuples(st.integers(0, n - 1), rr_values), max_size=5)):
        x[i] = v
    return x, draw(st.integers(min_value=MIN_LAG, max_value=12))


@settings(max_examples=150, deadline=None)
@given(series())
def test_per_beat_detector_equals_the_vectorised_form(case: tuple[np.ndarray, int]) -> None:
    x, lag = case
    assert_same(x, lag)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(rr_values, min_size=0, max_size=300),
    st.sampled_from([0.0, 0.05, 0.2, 0.25, 0.5]),
    st.integers(min_value=3, max_value=12),
)
def test_intake_screen_per_beat_equals_the_vectorised_form(
    values: list[int], threshold: float, beats: int
) -> None:
    x = np.asarray(values, dtype=np.int64)
    scr = ProvisionalScreen(threshold, beats)
    got = np.asarray([scr.push(int(v)) for v in x.tolist()], dtype=np.int64)
    assert np.array_equal(got, screen_offline(x, threshold, beats))


def test_long_clean_and_ectopic_series_are_equal_in_both_forms() -> None:
    x = calm(6000, seed=3)
    assert_same(x)
    at = np.arange(300, len(x) - 1, 41)
    x[at + 1] += x[at] * 38 // 100  # frequent premature beats and pauses: the detector path runs
    x[at] = x[at] * 62 // 100
    assert_same(x)


def test_a_premature_beat_and_its_pause_are_corrected_six_beats_later() -> None:
    x = calm(200)
    x[120] = x[120] * 65 // 100
    x[121] = x[121] + x[120] * 35 // 65
    det = Detector()
    when: dict[int, int] = {}
    labels: dict[int, str | None] = {}
    values: dict[int, int] = {}
    for e, v in enumerate(x.tolist()):
        for j in det.push(v):
            when[j.k], labels[j.k], values[j.k] = e, j.artifact, j.value_us
    assert labels[120] is not None
    assert labels[121] is not None
    assert {k for k, v in labels.items() if v} == {120, 121}
    assert when[120] - 120 <= MIN_LAG + 2  # the pair waits for its next normal neighbour
    lo, hi = int(x[119]), int(x[122])
    for k in (120, 121):
        assert min(lo, hi) - 1 <= values[k] <= max(lo, hi) + 1  # interpolated between them


def test_missed_and_extra_beats_are_named() -> None:
    x = calm(200, seed=1)
    x[100] = x[100] + x[101]  # a beat the strap missed: one interval spans two
    labels = detect(x.tolist())
    assert labels[100] == "missed"
    y = calm(200, seed=2)
    half = int(y[100]) // 2
    y = np.r_[y[:100], [half, int(y[100]) - half], y[101:]]  # a spurious beat splits one
    labels = detect(y.tolist())
    assert "extra" in (labels[100], labels[101])


def test_clean_series_is_left_alone_and_its_tail_waits() -> None:
    x = calm(400, seed=4)
    sj = judge_segment(x)
    assert (sj.labels[: len(x) - MIN_LAG] == 0).all()
    assert (sj.labels[len(x) - MIN_LAG :] == UNJUDGED).all()
    short = judge_segment(x[: MIN_SEGMENT_BEATS - 1])
    assert (short.labels == UNJUDGED).all()


def test_lag_below_the_criteria_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 6"):
        Detector(5)


# ---- neurokit2 (the reference) on whole real series ----------------------------------------


def nk_labels(x: np.ndarray) -> list[str | None]:
    """neurokit2's signal_fixpeaks(method="kubios"), one pass, label per interval."""
    import neurokit2 as nk

    peaks = np.concatenate(([0], np.cumsum(x)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        info, _ = nk.signal_fixpeaks(
            peaks, sampling_rate=1_000_000, iterative=False, method="kubios"
        )
    out: list[str | None] = [None] * len(x)
    for kind in ("longshort", "ectopic", "missed", "extra"):
        for p in info[kind]:
            if 0 <= p - 1 < len(x):
                out[p - 1] = kind
    return out


def real_series(shared_data: Path) -> dict[str, np.ndarray]:
    import pandas as pd
    import wfdb

    out = {}
    a = wfdb.rdann(str(shared_data / "mitdb-100" / "100"), "atr")
    s = a.sample[np.isin(a.symbol, ["N", "A", "V"])]
    out["mitdb-100"] = np.diff(s) / 360.0 * 1000.0
    out["pyhrv"] = np.load(shared_data / "pyhrv" / "SampleNNISeriesLong.npy") * 1.0
    out["hrvanalysis"] = np.loadtxt(shared_data / "hrvanalysis-aura" / "test_nn_intervals.txt")
    rr = pd.read_csv(shared_data / "polar-h10-ecg-pvc" / "polar_h10.csv")["rr_ms"].dropna()
    out["polar"] = rr.to_numpy(dtype=float)
    for rec in ("14046", "14172", "14184"):
        a = wfdb.rdann(str(shared_data / "mit-ltdb-annotations" / rec), "atr")
        s = a.sample[np.isin(a.symbol, ["N", "V", "S", "F"])][:5001]
        out[rec] = np.diff(s) / 128.0 * 1000.0
    return out


# label-by-label agreement with neurokit2 over the beats both judge (measured, docs/arousal.md);
# where ectopy is frequent we deliberately correct more (history, cap, floor, and the premature
# beat of each pause neurokit2 flags): lower agreement
AGREEMENT = {
    "mitdb-100": 0.98,
    "pyhrv": 0.98,
    "hrvanalysis": 0.99,
    "polar": 0.43,  # measured 44.3 % (we correct its PVCs too, neurokit2 only their pauses)
    "14046": 0.78,  # measured 79.3 % (first 5,000 beats)
    "14172": 0.70,
    "14184": 0.60,
}


@pytest.mark.data
@pytest.mark.slow
def test_labels_agree_with_neurokit2_where_ectopy_is_rare(shared_data: Path) -> None:
    for name, rr in real_series(shared_data).items():
        x = np.rint(rr * 1000).astype(np.int64)
        ours = judge_segment(x).labels
        ref = nk_labels(x)
        judged = np.flatnonzero(ours != UNJUDGED)
        same = sum(LABELS[int(ours[k])] == ref[k] for k in judged.tolist())
        assert same / len(judged) >= AGREEMENT[name], (name, same / len(judged))
        # every beat both call an artifact is a deliberate agreement on where, not on chance:
        # on the near-clean records nearly all of neurokit2's flags are ours too
        if name in ("mitdb-100", "hrvanalysis"):
            theirs = {k for k in judged.tolist() if ref[k] is not None}
            mine = {k for k in judged.tolist() if ours[k] > 0}
            assert len(theirs - mine) <= max(25, len(theirs) // 3), name


@pytest.mark.data
def test_mitdb_100_every_premature_beat_and_few_others(shared_data: Path) -> None:
    import wfdb

    a = wfdb.rdann(str(shared_data / "mitdb-100" / "100"), "atr")
    sym = np.array(a.symbol)
    keep = np.isin(sym, ["N", "A", "V"])
    s, lab = a.sample[keep], sym[keep][1:]
    x = np.rint(np.diff(s) / 360.0 * 1e6).astype(np.int64)
    flagged = judge_segment(x).labels > 0
    ectopic = lab != "N"
    normal = ~ectopic & ~np.r_[False, ectopic[:-1]]
    assert (flagged & ectopic).sum() == ectopic.sum() == 34  # 33 APBs and 1 PVC
    assert (flagged & normal).sum() <= 6  # measured 4 (neurokit2 whole series: 11)


# ---- the breathing-aware veto and what it does not cover (docs/arousal.md, difference 4) ----


def _veto(y: list[int]) -> list[bool]:
    """`_smooth` for every beat with two neighbours each side, per beat and vectorised (equal)."""
    from biofeedback.signal.artifacts import _smooth, _smooth_rows

    j = np.arange(2, len(y) - 3)
    per_beat = [_smooth(int(k), y, 0) for k in j.tolist()]
    assert _smooth_rows(j, np.asarray(y, dtype=np.int64)).tolist() == per_beat
    return [False, False, *per_beat]


def test_the_veto_keeps_a_large_slow_swing_and_not_an_abrupt_premature_beat() -> None:
    # a breath of 10 beats swinging RR by +-300 ms: every beat on its course, none abrupt
    swing = [round(1000 + 300 * np.sin(2 * np.pi * k / 10)) * 1000 for k in range(60)]
    assert all(_veto(swing)[2:])
    # a late premature beat in a steady rhythm: 7 % early, within 13 % of its course, but its
    # 54 ms drop is 7 x the 8 ms median step before it, and its pause follows
    steady = [742, 750, 742, 734] * 5
    late = [x * 1000 for x in [*steady, 742, 688, 781, 734, 742, 742, 742]]
    k = len(steady) + 1
    assert not _veto(late)[k]
    assert _veto(late)[k - 3]  # the steady beats before it keep the veto
    # the same beat where the beats before it move by as much: part of the rhythm, kept
    lively = [800, 760, 805, 750, 810, 745, 800, 760] * 3
    kept = [x * 1000 for x in [*lively, 742, 688, 742, 790, 742, 742, 742]]
    assert _veto(kept)[len(lively) + 1]
    # the first beat of a premature couplet: its course runs through the second one and the
    # pause (883, 898, 625, 539, 1492 ms: the cubic dips to 562), which cannot vouch for it
    couplet = [x * 1000 for x in [*([883, 898, 890, 880] * 5), 883, 898, 625, 539, 1492, 914, 906]]
    j = 20 + 2
    assert not _veto(couplet)[j]


# ---- the premature beat before an ectopic pause (docs/arousal.md, difference 6) ------------


def _pause_case(x_ms: list[int], t1_ms: float, j: int = 2) -> bool:
    from biofeedback.signal.artifacts import _before_pause

    x = [v * 1000 for v in x_ms]
    d = [0] + [b - a for a, b in itertools.pairwise(x)]
    return _before_pause(j, x, d, t1_ms * 1000)


def test_the_beat_before_an_ectopic_pause_is_its_premature_beat() -> None:
    # 100 ms early (below Th1 = 120 ms on its own), then a 300 ms pause: N-P-N centred on it
    assert _pause_case([800, 800, 700, 1000, 800], 120)
    assert not _pause_case([800, 800, 700, 1000, 800], 300)  # the pause exactly at Th1: a = 1
    assert _pause_case([800, 800, 700, 1000, 800], 299)
    assert not _pause_case([800, 800, 800, 1000, 800], 120)  # no shortening before the pause
    assert not _pause_case([800, 800, 700, 700, 700], 50)  # no lengthening after it
    assert not _pause_case([800, 800, 700, 1000, 1010], 120)  # the rhythm stays long: no pause
    # the pause must reach the interval before the premature beat: shorter, it is a recovery
    # (heart rate turbulence), equal is enough
    assert not _pause_case([800, 1010, 700, 1000, 800], 120)
    assert _pause_case([800, 1000, 700, 1000, 800], 120)


def test_late_premature_beats_are_corrected_with_their_pauses_in_both_forms() -> None:
    # a premature beat every fourth beat, 10 % early, with a 25 % pause: the shortening is
    # often below Th1 in this rhythm, the pause is not; both are abnormal intervals
    x = calm(400)
    at = np.arange(100, 300, 4)
    x[at] = x[at] * 90 // 100
    x[at + 1] = x[at + 1] * 125 // 100
    assert_same(x)
    labels = judge_segment(x).labels
    assert (labels[at] > 0).sum() >= 45  # measured 48 of 50 (before this rule: 27)
    assert (labels[at + 1] > 0).all()
    normal = np.ones(len(x), dtype=np.bool_)
    normal[at] = normal[at + 1] = False
    assert (labels[normal] > 0).sum() == 0
    # judged as a pair, both take values between the normal beats around them, so the corrected
    # series keeps neither the premature beat nor the pause
    values = judge_segment(x).values
    found = at[labels[at] > 0]
    for k in found.tolist():
        lo, hi = sorted((int(x[k - 1]), int(x[k + 2])))
        assert lo - 1 <= values[k] <= hi + 1
        assert lo - 1 <= values[k + 1] <= hi + 1


def test_a_premature_beat_and_its_pause_are_judged_together() -> None:
    # late premature beats (10 % early, 25 % pause) every fourth beat: where the shortening is
    # below Th1 and the pause's pattern names it, the pause is judged with it, at once
    x = calm(400)
    at = np.arange(100, 300, 4)
    x[at] = x[at] * 90 // 100
    x[at + 1] = x[at + 1] * 125 // 100
    got = stream(x)
    pairs = [k for k in at.tolist() if got[k][0] == got[k + 1][0] == "ectopic"]
    assert len(pairs) >= 5  # measured 8 (the others are found by the paper's own tests)
    for k in pairs:
        assert got[k][2] == got[k + 1][2]  # one judgement
