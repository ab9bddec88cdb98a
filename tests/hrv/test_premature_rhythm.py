"""Premature beats judged against the rhythm's own step (docs/arousal.md, difference 7).

A premature beat is premature for its rhythm: where frequent ectopy the detector missed inflates
Th1 (a quadrigeminy: two steps in five are ectopic), 10 % early beats with full compensatory
pauses in a steady rhythm pass under the paper's threshold. `_premature_for_rhythm` tests the
same pattern against 4 x the median |dRR| of the beats before; `_second_premature` names the
second beat of a couplet, between the first premature beat and the pause. Both forms (per beat
and vectorised) must give the same labels, values and judgement times.
"""

from __future__ import annotations

import itertools

import numpy as np

from biofeedback.signal.artifacts import (
    Detector,
    _before_pause,
    _premature_for_rhythm,
    _second_premature,
    judge_segment,
)
from tests.hrv.test_native_artifacts import assert_same, calm, stream

SAMPLE_US = 1_000_000 / 128  # MIT-LTDB annotations: 128 Hz


def _diffs(x_ms: list[int]) -> tuple[list[int], list[int]]:
    x = [v * 1000 for v in x_ms]
    return x, [0] + [b - a for a, b in itertools.pairwise(x)]


def _rhythm_case(x_ms: list[int], j: int) -> bool:
    x, d = _diffs(x_ms)
    return _premature_for_rhythm(j, x, d, 0)


STEADY = [742, 750, 742, 734, 742, 750, 742, 734, 742, 750, 742, 734, 742, 750, 742, 742]


def test_a_late_premature_beat_is_premature_for_a_steady_rhythm() -> None:
    j = len(STEADY)
    # 70 ms early with its full compensatory pause (742, 672, 828, 742 ms: MIT-LTDB 15814's
    # opening quadrigeminy); the steps before are 8 ms, so the threshold is 4 x 8 = 32 ms
    case = [*STEADY, 672, 828, 742, 742]
    assert _rhythm_case(case, j)
    x, d = _diffs(case)
    assert not _before_pause(j, x, d, 183_000)  # Th1 where the cap rests on one 7.8 ms step
    # the shortening must exceed the threshold
    assert not _rhythm_case([*STEADY, 710, 828, 742, 742], j)
    assert _rhythm_case([*STEADY, 709, 828, 742, 742], j)
    calm_steps = [742 + (0 if k % 2 else 1) for k in range(16)]  # steps of 1 ms: the 30 ms floor
    assert not _rhythm_case([*calm_steps, 712, 828, 742, 742], j)
    assert _rhythm_case([*calm_steps, 711, 828, 742, 742], j)
    # the rhythm resumes after the pause where it left off, within half the shortening (35 ms)
    assert _rhythm_case([*STEADY, 672, 828, 777, 742], j)
    assert not _rhythm_case([*STEADY, 672, 828, 778, 790], j)
    # ... and the interval before continues the one before it, within half the shortening
    before = [*STEADY[:-1], 742 - 36]
    assert not _rhythm_case([*before, 672 - 36, 828, 706, 706], j)
    # the pause reaches the interval before the premature beat
    assert not _rhythm_case([*STEADY, 672, 741, 742, 742], j)


def test_a_lively_rhythm_needs_a_larger_step() -> None:
    # steps of ~40 ms around 800 ms (a lively resting rhythm): 4 x 40 = 160 ms is the threshold
    lively = [800, 840, 800, 760, 800, 840, 800, 760, 800, 840, 800, 760, 800, 840, 800, 800]
    j = len(lively)
    assert not _rhythm_case([*lively, 700, 900, 800, 800], j)  # 100 ms early: its own swing
    assert _rhythm_case([*lively, 620, 980, 800, 800], j)  # 180 ms early: premature


def test_the_second_beat_of_a_couplet_is_premature_too() -> None:
    rhythm = [930, 922, 930, 938, 930, 922, 930, 938, 930, 922, 930, 938, 930, 922, 930, 930]
    j = len(rhythm)
    x, _ = _diffs([*rhythm, 562, 859, 1312, 922, 930])  # MIT-LTDB 14157
    assert _second_premature(j, x, 0)
    x, _ = _diffs([*rhythm, 562, 901, 1312, 922, 930])  # 29 ms short of 930: not premature
    assert not _second_premature(j, x, 0)
    x, _ = _diffs([*rhythm, 562, 859, 929, 922, 930])  # no pause: not a couplet
    assert not _second_premature(j, x, 0)
    x, _ = _diffs([*rhythm, 940, 859, 1312, 922, 930])  # beat j is not premature
    assert not _second_premature(j, x, 0)


def _quantised(samples: list[int]) -> np.ndarray:
    """RR in whole µs from intervals in samples of 1/128 s (annotation times on that grid)."""
    t = np.cumsum([0, *samples]) * SAMPLE_US
    return np.diff(np.rint(t).astype(np.int64))


def quadrigeminy(n_cycles: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A steady rhythm of 95 +- 1 samples (742 ms) with a PVC every fifth beat, 8-12 samples
    early, and a full compensatory pause: (RR µs, premature-beat mask)."""
    rng = np.random.default_rng(seed)
    samples: list[int] = []
    pvc: list[bool] = []
    for _ in range(n_cycles):
        sinus = [95 + int(v) for v in rng.integers(-1, 2, size=4)]
        early = int(rng.integers(8, 13))
        samples += [*sinus[:3], sinus[3] - early, 95 + early]
        pvc += [False, False, False, True, False]
    return _quantised(samples), np.asarray(pvc)


def test_a_quadrigeminy_in_a_steady_quantised_rhythm_is_found_in_both_forms() -> None:
    x, pvc = quadrigeminy(120)
    assert_same(x)
    labels = judge_segment(x).labels
    judged = labels >= 0
    found = (labels > 0) & pvc & judged
    assert found.sum() >= 0.9 * (pvc & judged).sum()  # measured 113 of 118 (before: 22 of 119)
    pause = np.r_[False, pvc[:-1]]
    assert ((labels > 0) & ~pvc & ~pause & judged).sum() == 0  # no sinus beat corrected


def test_a_couplet_is_corrected_whole_in_both_forms() -> None:
    x = calm(400)
    at = np.arange(100, 300, 20)
    x[at] = x[at - 1] * 60 // 100  # first premature beat
    x[at + 1] = x[at - 1] * 90 // 100  # second, still early for the rhythm
    x[at + 2] = x[at - 1] * 160 // 100  # the pause
    assert_same(x)
    labels = judge_segment(x).labels
    assert (labels[at] > 0).all()
    assert (labels[at + 2] > 0).all()
    assert (labels[at + 1] > 0).sum() >= 0.8 * len(at)


def test_the_rule_costs_nothing_on_a_clean_stream() -> None:
    # a clean resting series: no beat corrected, per beat as vectorised
    x = calm(600, seed=3)
    got = stream(x)
    assert all(lab is None for lab, _, _ in got.values())
    assert Detector().lag == 6
    assert_same(x)


def _short_case(x_ms: list[int], med_ms: float) -> int:
    from biofeedback.signal.artifacts import _ls_class

    x, d = _diffs(x_ms)
    med = [med_ms * 1000] * len(x)
    return _ls_class(2, x, d, med, abs(x[2] - med[2]) * 2.0, 100_000, 100_000)


def test_the_sinus_interval_before_a_premature_beat_is_not_short() -> None:
    from biofeedback.signal.artifacts import EXTRA, LONGSHORT, NORMAL

    # after a pause, the sinus interval (780) is followed by a premature beat (500) and its
    # pause: the lengthening belongs to the premature beat, not to the sinus interval
    assert _short_case([800, 1000, 780, 500, 1000, 800], 800) == NORMAL
    # a short beat followed by its own lengthening stays short
    assert _short_case([800, 1000, 780, 900, 1000, 800], 800) == LONGSHORT
    # an extra beat split unevenly (500 + 300 = the median) is still named
    assert _short_case([800, 800, 500, 300, 800, 800], 800) == EXTRA


def test_a_trigeminy_corrects_its_premature_beats_and_not_the_sinus_beats() -> None:
    x = calm(600)
    at = np.arange(100, 500, 3)
    ref = x[at - 1].copy()
    x[at] = ref * 62 // 100  # PVC
    x[at + 1] = ref * 140 // 100  # its pause; beat at + 2 is the sinus interval
    assert_same(x)
    labels = judge_segment(x).labels
    assert (labels[at] > 0).mean() >= 0.95
    assert (labels[at + 2] > 0).sum() <= 2  # measured 0 (without this rule 9, a stage ago 83)


def test_a_premature_dip_and_its_pause_lift_the_breathing_veto() -> None:
    from biofeedback.signal.artifacts import _dipole, _dipoles

    # MIT-LTDB 15814: 734, 695, 797, 742 ms in a rhythm of 1-2 sample steps: 39 ms early is
    # 2.5 x its step, but the dip and the pause bend the series by 141 and -157 ms, 9-10 x
    # the rhythm's median bend
    rhythm = [742, 734, 742, 742, 734, 742, 750, 742, 734, 742, 742, 734, 742, 750, 742, 734]
    j = len(rhythm)

    def dip(tail: list[int]) -> bool:
        y = [v * 1000 for v in [*rhythm, *tail]]
        got = _dipole(j, y, j - 15)
        assert bool(_dipoles(np.array([j]), np.asarray(y, dtype=np.int64))[0]) is got
        return got

    assert dip([695, 797, 742, 742])
    assert not dip([705, 797, 742, 742])  # 29 ms early: within the floor
    assert not dip([695, 797, 760, 742])  # the rhythm does not resume within half the shortening
    assert not dip([695, 720, 742, 742])  # no pause: the bend after the dip is not a peak
    # a slow breathing swing (7 beats per breath, 30 bpm peak to trough) never bends like that
    swing = [round(1000 + 250 * np.sin(2 * np.pi * k / 7)) for k in range(40)]
    y = np.asarray(swing, dtype=np.int64) * 1000
    jj = np.arange(3, 37)
    assert not _dipoles(jj, y).any()
    assert not any(_dipole(int(k), y.tolist(), max(1, int(k) - 15)) for k in jj)


def test_dipoles_equal_dipole_on_random_series() -> None:
    from biofeedback.signal.artifacts import _dipole, _dipoles

    rng = np.random.default_rng(5)
    for _ in range(200):
        n = int(rng.integers(8, 60))
        y = (800 + np.cumsum(rng.integers(-40, 41, size=n))).astype(np.int64) * 1000
        k = rng.integers(3, n - 2, size=8)
        y[k] -= 90_000  # some premature dips
        jj = np.arange(2, n - 2)
        want = [_dipole(int(j), y.tolist(), max(1, int(j) - 15)) for j in jj]
        assert _dipoles(jj, y).tolist() == want


def test_a_long_lag_keeps_what_the_oldest_unjudged_beat_reads() -> None:
    # artifact_lag_beats may be far beyond the 91-beat windows: the detector keeps the beats its
    # next judgement reads, and the vectorised form hands back only once those are uncorrected
    x, _ = quadrigeminy(150, seed=2)
    for lag in (90, 175, 200):
        assert_same(x, lag)
    assert (judge_segment(x, 200).labels > 0).any()
