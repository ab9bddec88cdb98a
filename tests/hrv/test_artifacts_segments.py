"""How `judge_segment` stitches the vectorised rows and the per-beat detector together.

The vectorised form judges a raw stretch row by row until its first artifact, hands the segment
to the per-beat detector (`Detector.resume`) from there, and takes it back once the detector's
windows are free of corrections. These tests put beats exactly at the seams (where the detector
hands back, the segment's last judgement) and want the stream's every label, value and arrival;
written for the mutation run's survivors of `_judge_rows` and `judge_segment`
(docs/mutation/artifacts-judge-segment.md).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from biofeedback.signal.artifacts import (
    C1,
    C2,
    FLOOR_US,
    LABELS,
    MIN_LAG,
    NEVER,
    NORMAL,
    UNJUDGED,
    judge_segment,
)
from tests.hrv.test_artifacts_details import quantised_walk
from tests.hrv.test_native_artifacts import assert_same, calm

PREMATURE = 100  # a premature beat and its pause at 100-101: the per-beat detector takes over


def with_premature_beat(n: int) -> np.ndarray:
    x = calm(n, seed=0)
    x[PREMATURE] = x[PREMATURE] * 65 // 100
    x[PREMATURE + 1] += x[PREMATURE] * 35 // 65
    return x


@pytest.mark.parametrize("j", range(188, 203))
def test_a_step_tested_with_its_successor_where_the_detector_hands_back(j: int) -> None:
    """A lasting step up of 100 ms at beat j: past Th1, not an artifact, and beat j+1 (a step of
    0 before one of 5 ms) is tested with it, so beat j+1 is judged one arrival early. The per-beat
    detector, which took over at the premature beat, hands the segment back about 95 beats after
    it: one of these j is its last judgement, with beat j+1 still to come on its own turn. The
    vectorised form must not judge beat j+1 again, nor skip the beat after it."""
    x = with_premature_beat(400)
    x[j:] += 100_000
    x[j + 1] = x[j]
    x[j + 2] = x[j] + 5_000
    sj = judge_segment(x)
    assert sj.labels[PREMATURE] > 0
    assert sj.labels[j] == NORMAL
    assert sj.labels[j + 1] == NORMAL
    assert sj.judged_at[j + 1] == j + MIN_LAG  # with beat j, not on its own turn
    assert (sj.labels[j + 2 : len(x) - MIN_LAG] == NORMAL).all()
    assert_same(x)


@pytest.mark.parametrize("lag", [MIN_LAG, 9])
@pytest.mark.parametrize("off", [0, 1])
@pytest.mark.parametrize("early", [False, True])
def test_two_long_beats_judged_together_at_the_end_stay_unjudged(
    lag: int, off: int, early: bool
) -> None:
    """Two doubled beats among the last judged ones (after a first artifact, or none): the first
    is judged with the second, both artifacts, and no normal beat is judged after them, so both
    keep their raw values, unjudged, as the stream leaves them."""
    n = 300
    x = with_premature_beat(n) if early else calm(n, seed=0)
    j = n - 1 - lag - off
    raw = x.copy()
    x[j] *= 2
    x[j + 1] *= 2
    sj = judge_segment(x, lag)
    assert (sj.labels[j : j + 2] == UNJUDGED).all()
    assert (sj.judged_at[j : j + 2] == NEVER).all()
    assert np.array_equal(sj.values[j : j + 2], 2 * raw[j : j + 2])
    assert bool(sj.labels[PREMATURE] > 0) is early
    assert_same(x, lag)


def shortening_after_a_missed_beat(s: int, lag: int, c: int = 120) -> tuple[np.ndarray, int]:
    """A steady walk (steps of 0-3 ms), a missed beat (doubled) at c, then 14 chosen steps and a
    beat r = c + 16 shortened by `s` µs before a lengthening by 2 s that lasts: premature for
    the rhythm, but within 13 % of its smooth course. The median |dRR| of the 15 beats before r
    (c + 1 .. c + 15) is 10 ms with the missed beat corrected (14 ms with its raw value)."""
    rng = np.random.default_rng(0)
    n = c + 16 + lag + 60
    x = 800_000 + np.cumsum(rng.choice(np.arange(-3_000, 3_001, 1_000), n))
    steps = [4, -6, 10, -8, 2, -10, 9, -14, 15, -16, 14, -18, 20, -15]
    x[c + 1] = x[c - 1]
    for i, step in enumerate(steps):
        x[c + 2 + i] = x[c + 1 + i] + step * 1_000
    x[c] = 2 * x[c - 1]
    r = c + 16
    base = int(x[r - 1])
    tail = x[r + 3 :] - x[r + 2]
    x[r] = base - s
    x[r + 1 : r + 3] = base + s
    x[r + 3 :] = base + s + tail
    return x, r


@pytest.mark.parametrize("s", [44_000, 48_000, 54_000])
def test_the_rhythm_a_beat_is_judged_against_reads_the_corrected_missed_beat(s: int) -> None:
    """With a lag of 90 the per-beat detector may hand back 17 beats after its last correction
    (the rhythm tests read the 16 judged beats before a beat), not 16: here beat r's rhythm step
    comes from the corrected missed beat 16 beats earlier. A shortening of more than 4 x that
    step (40 ms) lifts the breathing veto, so beat r is an artifact; with the missed beat's raw
    value the step would be 14 ms and the shortening no longer abrupt."""
    lag = 90
    x, r = shortening_after_a_missed_beat(s, lag)
    sj = judge_segment(x, lag)
    assert sj.labels[r - 16] > 0  # the missed beat
    assert sj.labels[r] > 0
    assert (sj.labels[r - 15 : r] == NORMAL).all()
    assert_same(x, lag)


def steady(n: int, seed: int) -> np.ndarray:
    """A steady rhythm: steps of 0-3 ms, so Th1 is the 30 ms floor."""
    rng = np.random.default_rng(seed)
    x: np.ndarray = 800_000 + np.cumsum(rng.choice(np.arange(-3_000, 3_001, 1_000), n))
    return x


def test_a_lengthening_exactly_on_the_ectopic_boundary_tests_the_next_beat_with_it() -> None:
    """Beat j lengthens by 170.1 ms after a shortening of 27.213 ms: S12 = -27213 / 30000 is
    exactly -0.13 x S11 - 0.17 in floating point, so beat j is not ectopic (the paper's `<`):
    it goes to the long/short test, which tests beat j+1 with it (|dRR(j+1)| < |dRR(j+2)|) and
    finds j+1, 122 ms above its median, an artifact. Beat j itself lies on its smooth course
    (normal). Were the tie called ectopic, beat j+1 would be judged on its own turn (a step
    below Th1: normal) and its artifact lost."""
    d_j, d_before = 170_100, -27_213
    assert d_before / FLOOR_US == -C1 * (d_j / FLOOR_US) - C2
    j = 150
    x = steady(300, 1)
    base = int(x[j - 2])
    x[j - 1] = base + d_before
    x[j] = x[j - 1] + d_j
    x[j + 1] = x[j] - 29_500
    x[j + 2] = base
    x[j + 3] = base + 400_000
    sj = judge_segment(x)
    assert sj.labels[j] == NORMAL
    assert sj.labels[j + 1] > 0
    assert_same(x)


def test_a_shortening_exactly_on_the_ectopic_boundary_tests_the_next_beat_with_it() -> None:
    """The mirror case: beat j shortens by 200 ms after a lengthening of 31.1 ms, and S12 =
    31100 / 30000 is exactly -0.13 x S11 + 0.17: not ectopic (the paper's `>`), so beat j+1 is
    tested with it (found normal) and judged on beat j's arrival, not on its own turn: the
    offline pipeline reads that arrival (`judged_at`) as the moment the live stream knew the
    beat. A ramp of 50 ms steps before keeps beat j's shortening below 4 x the rhythm's step,
    so the breathing veto holds for beat j itself."""
    d_j, d_before = -200_000, 31_100
    assert d_before / FLOOR_US == -C1 * (d_j / FLOOR_US) + C2
    j = 150
    x = steady(300, 1)
    start = int(x[j - 17])
    x[j - 16 : j - 1] = start + 50_000 * np.arange(1, 16)
    base = int(x[j - 2])
    x[j - 1] = base + d_before
    x[j] = x[j - 1] + d_j
    x[j + 1] = x[j] + 31_400
    x[j + 2] = base
    x[j + 3] = base
    x[j + 4 :] += base - x[j + 4]
    sj = judge_segment(x)
    assert (sj.labels[j : j + 2] == NORMAL).all()
    assert (sj.judged_at[j : j + 2] == j + MIN_LAG).all()
    assert_same(x)


@pytest.mark.parametrize("lag", [MIN_LAG, 9])
def test_a_late_premature_beat_in_the_last_judged_row_is_found_without_other_candidates(
    lag: int,
) -> None:
    """A steady segment whose only odd beats are a late premature beat (25 ms early: below the
    30 ms Th1) in its last judged row and the pause after it (35 ms long), which no row judges on
    its own turn: no beat of the segment is past Th1, yet the premature beat is ectopic (the
    paper's pattern centred on the pause) and the pause is judged with it (on its smooth course:
    normal)."""
    n = 120
    rng = np.random.default_rng(2)
    x = 800_000 + np.cumsum(rng.choice(np.arange(-2_000, 2_001, 1_000), n))
    j = n - 1 - lag
    before = int(x[j - 1])
    x[j] = before - 25_000
    x[j + 1] = before + 35_000
    x[j + 2 :] += before - x[j + 2]
    sj = judge_segment(x, lag)
    assert sj.labels[j] > 0
    assert sj.values[j] == before + 17_500  # halfway from beat j-1 to the pause
    assert sj.labels[j + 1] == NORMAL
    assert (sj.labels[:j] == NORMAL).all()
    assert_same(x, lag)


def test_a_beat_only_the_ectopic_criterion_finds_is_ectopic() -> None:
    """In a rhythm with steps of about 15 ms, beat j lengthens by 5 Th1 (150 ms) between two
    shortenings of 0.97 Th1: ectopic by the paper's S11/S12 boundaries, though neither long nor
    short (S22 = -0.97) nor far from its median (the rhythm stays up after it), and off its smooth
    course. The shortening before it stays within 4 x the rhythm's step, so nothing before beat
    j is an artifact: beat j is the first, and the only criterion that finds it is the ectopic
    one."""
    th1 = FLOOR_US
    j = 150
    rng = np.random.default_rng(2)
    x = 800_000 + np.cumsum(np.rint(rng.normal(0, 15_000, 300))).astype(np.int64)
    x[j - 1] = x[j - 2] - 97 * th1 // 100
    x[j] = x[j - 1] + 5 * th1
    x[j + 1] = x[j] - 97 * th1 // 100
    x[j + 2] = x[j + 1] + 3 * th1
    x[j + 3 :] += x[j + 2] - x[j + 3]
    sj = judge_segment(x)
    assert LABELS[sj.labels[j]] == "ectopic"
    assert (sj.labels[:j] == NORMAL).all()
    assert_same(x)


def test_a_series_on_a_20_ms_clock_is_judged_without_warnings() -> None:
    """RR on a coarse clock (20 ms steps) with odd beats: runs of equal intervals make the
    rhythm's median step 0 before some premature beats. Judging must divide by nothing that can
    be 0 (numpy would warn, and our warnings are errors) and agree with the per-beat detector."""
    x = quantised_walk(300, 3, 15_000, 0.05, False, 20_000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sj = judge_segment(x)
    assert (sj.labels > 0).any()
    assert_same(x)


def test_an_early_beat_half_a_microsecond_above_its_median_counts_in_th2() -> None:
    """RR on four levels 10 ms apart (600-630 ms: no step reaches Th1), beat 4 at 620 ms and beat
    5 1 µs short of it: beat 4's centred median, truncated at the segment's start to beats 0-9,
    is 619,999.5 µs, so its |mRR| is 0.5 µs. Ten other |mRR| of beats 0-42 are 0, which puts that
    0.5 µs at the lower quartile of the 43 values beat 41 is judged against: Th2 = 90,999.35 µs.
    Beat 41 (raised with 42 and 43 to about 900 ms: not long by its steps) lies 272,999 µs above
    its median, 3 x Th2 + 1.95 µs: an artifact by |mRR| > 3 Th2 alone. Any other value for that
    0.5 µs (a beat above its median taken as below it, doubled) moves Th2 by 0.65 µs and loses
    beat 41."""
    levels = (
        "113221202003202303300220110230303331100330003032103333220111"
        "033123102103000321233013213030201132103032101002203130100133"
    )
    x = 600_000 + 10_000 * np.array([int(c) for c in levels], dtype=np.int64)
    x[5] = 619_999  # 1 µs short of the 620 ms level
    x[41:44] = 900_000
    x[41] += 2_999
    sj = judge_segment(x)
    assert sj.labels[41] > 0
    assert (sj.labels[:41] == NORMAL).all()
    assert_same(x)
