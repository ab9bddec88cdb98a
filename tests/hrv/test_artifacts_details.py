"""Details of the native detector that the mutation run (docs/testing.md) found untested.

Also a fixed, fast form of the per-beat = vectorised check: the hypothesis test in
test_native_artifacts.py explores more, this one runs the same cases every time (and is the one
the artifacts mutants are tested against: tools/mutate.sh MUTATE_TESTS=artifacts).
"""

from __future__ import annotations

import numpy as np
import pytest

from biofeedback.signal.artifacts import (
    ABRUPT_RATIO,
    ALPHA,
    EXTRA,
    FLOOR_US,
    LABELS,
    LONGSHORT,
    MIN_LAG,
    MIN_SEGMENT_BEATS,
    MISSED,
    NEVER,
    NORMAL,
    Q1_RATIO,
    QD_BEATS,
    SMOOTH_PCT,
    UNJUDGED,
    Detector,
    _chain,
    _course_fails,
    _judge_rows,
    _lower_bounds,
    _ls_class,
    _ls_classes,
    _medians,
    _qd_rows,
    _quantiles,
    _smooth,
    _smooth_rows,
    _thresholds,
    detect,
    interpolate,
    judge_segment,
)
from tests.hrv.test_native_artifacts import assert_same, calm


def walk(n: int, seed: int, step: int, share: float, bigeminy: bool) -> np.ndarray:
    """The hypothesis strategy's random walk with odd beats, for a fixed seed (whole µs)."""
    return quantised_walk(n, seed, step, share, bigeminy, 1)


FIXED = [
    (400, 1, 3_000, 0.02, False, MIN_LAG),
    (400, 2, 15_000, 0.1, True, MIN_LAG),
    (300, 3, 40_000, 0.3, False, 8),
    (350, 4, 15_000, 0.02, True, 12),
    (250, 5, 3_000, 0.1, True, 7),
    (500, 6, 40_000, 0.0, False, MIN_LAG),
    (120, 7, 15_000, 0.3, True, MIN_LAG),
    (60, 8, 3_000, 0.1, False, MIN_LAG),
    (1500, 9, 15_000, 0.3, True, MIN_LAG),
    (1200, 10, 3_000, 0.05, True, 9),
]


@pytest.mark.parametrize(("n", "seed", "step", "share", "bigeminy", "lag"), FIXED)
def test_per_beat_and_vectorised_forms_agree_on_fixed_series(
    n: int, seed: int, step: int, share: float, bigeminy: bool, lag: int
) -> None:
    assert_same(walk(n, seed, step, share, bigeminy), lag)


def test_frequent_premature_beats_agree_in_both_forms() -> None:
    x = calm(1500, seed=3)
    at = np.arange(100, len(x) - 1, 9)
    x[at + 1] += x[at] * 38 // 100
    x[at] = x[at] * 62 // 100
    assert_same(x)


# ---- the helpers: each vectorised one equals its per-beat twin, each against a plain reference


def test_quantiles_is_5_2_quartile_deviations_capped_and_floored() -> None:
    rng = np.random.default_rng(0)
    for w in [0, 1, 2, 3, 4, 5, 7, 10, 46, 90, 91]:
        for scale in (1_000.0, 30_000.0, 200_000.0):
            s = sorted(np.abs(rng.normal(0, scale, w)).round().tolist())
            if w < 2:
                want = float(FLOOR_US)
            else:
                q1, q3 = np.percentile(s, [25, 75])
                want = max(min(ALPHA * (q3 - q1) / 2, ALPHA * Q1_RATIO * q1), FLOOR_US)
            assert _quantiles(s) == pytest.approx(want, rel=1e-12), (w, scale)
    # the cap: ectopy fills the upper quartile, so the threshold follows the lower one
    s = sorted([10_000.0] * 50 + [900_000.0] * 41)
    assert _quantiles(s) == pytest.approx(ALPHA * Q1_RATIO * 10_000.0)
    # the floor: a regular rhythm of quantised RR
    assert _quantiles([0.0] * 91) == FLOOR_US
    assert _quantiles([7_812.0] * 60 + [15_625.0] * 31) == FLOOR_US


@pytest.mark.parametrize("width", [4, 5, 9, QD_BEATS])
def test_qd_rows_equals_quantiles_row_by_row(width: int) -> None:
    rng = np.random.default_rng(width)
    for scale in (2_000, 40_000, 400_000):
        vals = np.abs(rng.normal(0, scale, (40, width))).round() / 2  # integers and halves of µs
        rows = np.sort(np.rint(vals * 2).astype(np.int32), axis=1)
        got = _qd_rows(rows)
        assert got.dtype == np.float64
        want = [_quantiles(sorted(r.tolist())) for r in vals]
        assert got.tolist() == want


def test_thresholds_are_the_quantiles_of_the_91_values_up_to_each_end() -> None:
    rng = np.random.default_rng(1)
    vals = np.abs(rng.normal(0, 30_000, 300)).round()
    vals[::7] /= 2  # halves of µs (|mRR| of an even window)
    vals[150:170] = 700_000.0  # a run of ectopy
    ends = np.arange(300, dtype=np.int64)
    need = rng.random(300) < 0.7
    got = _thresholds(vals, ends, need)
    for r in range(300):
        if need[r]:
            want = _quantiles(sorted(vals[max(0, r - QD_BEATS + 1) : r + 1].tolist()))
            assert got[r] == want, r
        else:
            assert np.isnan(got[r]), r
    assert np.isnan(_thresholds(vals, ends, np.zeros(300, dtype=np.bool_))).all()


@pytest.mark.parametrize("block", [1, 2, 7, 32])
def test_lower_bounds_never_exceed_the_threshold(block: int) -> None:
    """The bound only prunes beats that cannot be candidates: it must never exceed the exact
    threshold of any of its windows (a bound too high would hide artifacts)."""
    rng = np.random.default_rng(block)
    for shape in range(12):
        n = int(rng.integers(91, 400))
        if shape % 3 == 0:
            vals = np.abs(rng.normal(0, 60_000, n)).round()
        elif shape % 3 == 1:  # steps: whole windows of small and of large values
            vals = np.repeat(rng.choice([0.0, 1_000.0, 50_000.0, 900_000.0], n // 10 + 1), 10)[:n]
        else:  # rising and falling ramps: the newest and oldest values are the extremes
            vals = np.abs(np.sin(np.arange(n) / rng.uniform(3, 40))) * 600_000
            vals = vals.round()
        ends = np.arange(QD_BEATS - 1, n, dtype=np.int64)
        exact = _thresholds(vals, ends, np.ones(len(ends), dtype=np.bool_))
        lb = _lower_bounds(vals, ends, block)
        assert lb.shape == exact.shape
        assert (lb <= exact).all(), (block, shape, np.flatnonzero(lb > exact)[:5])
    assert len(_lower_bounds(vals, ends[:0], block)) == 0


def test_medians_are_the_centred_11_beat_medians_truncated_at_the_ends() -> None:
    rng = np.random.default_rng(2)
    for n in [1, 2, 5, 6, 10, 11, 12, 17, 40]:
        x = rng.integers(300_000, 1_500_000, n).astype(np.int64)
        want = [float(np.median(x[max(0, k - 5) : k + 6])) for k in range(n)]
        assert _medians(x).tolist() == want, n


def long_short_inputs(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dRR (0 for the first beat), the centred medians and |mRR| with negative values doubled:
    what `_ls_classes` and `_ls_class` read, built as `judge_segment` builds them."""
    d = np.zeros(len(x), dtype=np.int64)
    d[1:] = np.diff(x)
    med = _medians(x)
    m = x - med
    return d, med, np.where(m < 0, -2.0 * m, m)


def test_ls_classes_and_smooth_rows_equal_their_per_beat_twins() -> None:
    rng = np.random.default_rng(3)
    n = 400
    x = (800_000 + rng.normal(0, 20_000, n)).round().astype(np.int64)
    odd = rng.random(n) < 0.25
    x[odd] = (x[odd] * rng.uniform(0.4, 2.1, int(odd.sum()))).round().astype(np.int64)
    split = np.arange(20, n - 20, 37)  # a spurious beat splits one interval in two
    x[split + 1] = x[split] - x[split] // 2
    x[split] //= 2
    d, med, mabs = long_short_inputs(x)
    j = np.arange(1, n - 2)
    t1 = rng.choice([0.0, 20_000.0, 45_000.0, 90_000.0], len(j))
    t2 = rng.choice([0.0, 20_000.0, 45_000.0, 90_000.0], len(j))
    with np.errstate(divide="ignore", invalid="ignore"):
        t1s = np.where(t1 > 0, t1, 45_000.0)
        got = _ls_classes(j, x, d, med, mabs, t1s, t2)
    xs, ds, ms = x.tolist(), d.tolist(), med.tolist()
    want = [
        _ls_class(jj, xs, ds, ms, float(mabs[jj]), float(a), float(b))
        for jj, a, b in zip(j.tolist(), t1s.tolist(), t2.tolist(), strict=True)
    ]
    assert got.tolist() == want
    assert {EXTRA, MISSED, LONGSHORT, NORMAL} <= set(want)
    js = j[j < n - 3]  # the veto also reads beat j+1's course, through j+3
    got_s = _smooth_rows(js, x)
    want_s = [_smooth(jj, xs, 0) for jj in js.tolist()]
    assert got_s.tolist() == want_s
    assert True in want_s
    assert False in want_s


@pytest.mark.parametrize("first", [False, True])
def test_chain_marks_every_other_row_of_a_run_of_extending_rows(first: bool) -> None:
    rng = np.random.default_rng(int(first))
    for _ in range(50):
        ext = rng.random(int(rng.integers(0, 30))) < 0.6
        want = [first]
        for e in ext.tolist():
            want.append(e and not want[-1])
        assert _chain(ext, first).tolist() == want


# ---- what the detector emits: values, timing, names -------------------------------------


def test_interpolate_takes_the_nearest_normal_beats_on_each_side() -> None:
    # the nearest normal beat before is two back (one artifact between)
    assert interpolate([10, 0, 0, 40], [None, "ectopic", "ectopic", None], 2) == 30
    # ... and not one past the start of the series, from its end
    assert interpolate([5, 9, 7, 3], ["missed", "ectopic", None, None], 1) == 7
    # both neighbours away from the start: the fraction is (i - lo) / (hi - lo)
    assert interpolate([0, 10, 99, 40], [None, None, "extra", None], 2) == 25
    assert interpolate([0, 10, 99, 98, 40], [None, None, "extra", "extra", None], 3) == 30


def walks() -> list[tuple[np.ndarray, int]]:
    return [(walk(*case[:5]), case[5]) for case in FIXED]


@pytest.mark.parametrize("case", range(len(FIXED)))
def test_every_artifact_is_interpolated_from_the_normal_beats_around_it(case: int) -> None:
    """The output's own rules, checked on the output: an artifact's value is the linear
    interpolation between the nearest beats judged normal (rounded), emitted when the later of
    them is judged; a normal beat keeps its raw value and is judged `lag` beats later (with its
    predecessor when the two are tested together), never before the segment has 46 beats."""
    x, lag = walks()[case]
    sj = judge_segment(x, lag)
    labels, values, at = sj.labels.tolist(), sj.values.tolist(), sj.judged_at.tolist()
    normal = [k for k, c in enumerate(labels) if c == NORMAL]
    for k, c in enumerate(labels):
        own = max(k + lag, MIN_SEGMENT_BEATS - 1)
        if c == UNJUDGED:
            assert values[k] == x[k]
            assert at[k] == NEVER
            assert set(labels[k:]) == {UNJUDGED}, k  # only a tail waits: nothing after it
        elif c == NORMAL:
            assert values[k] == x[k], k
            assert at[k] in (own, max(k - 1 + lag, MIN_SEGMENT_BEATS - 1)), k
        else:
            before = [j for j in normal if j < k]
            after = [j for j in normal if j > k]
            assert after, k  # an artifact waits for a normal successor to be emitted
            hi = after[0]
            if before:
                lo = before[-1]
                want = round(x[lo] + (x[hi] - x[lo]) * (k - lo) / (hi - lo))
            else:
                want = int(x[hi])
            assert values[k] == want, k
            assert at[k] == at[hi], k
    assert labels[len(x) - lag :] == [UNJUDGED] * lag


def test_detect_names_each_kind_as_labels_does() -> None:
    x = walk(200, 1, 15_000, 0.3, True)
    codes = judge_segment(x).labels.tolist()
    names = detect(x.tolist())
    assert names == [LABELS[c] if c > 0 else None for c in codes]
    assert {"ectopic", "missed", "extra", "longshort"} <= set(names)
    assert None in names


@pytest.mark.parametrize("n", [90, 91, 92, 123])
def test_segments_just_past_one_threshold_window(n: int) -> None:
    """The vectorised form's lower bound works on the judgements past the first 91 values: from
    one row on (a segment of 91 beats with lag 6 has exactly one)."""
    for seed in range(2):
        x = walk(n, seed, 15_000, 0.1, True)
        assert_same(x)
        assert_same(x, 7)


def test_a_beat_tested_with_its_predecessor_is_pending_until_its_turn() -> None:
    y = calm(200, seed=2)
    half = int(y[100]) // 2
    y = np.r_[y[:100], [half, int(y[100]) - half], y[101:]]  # a spurious beat splits one
    det = Detector()
    emitted: dict[int, str | None] = {}
    pending: dict[int, int] = {}
    for v in y.tolist():
        for j in det.push(v):
            emitted[j.k] = j.artifact
        k = det.next_beat
        p = det.pending(k)
        if p is not None:
            pending[k] = p
        assert det.pending(k - 1) is None  # its turn came: no longer pending
    assert det.pending(10_000) is None
    # the split's second half, and normal beats tested with a normal predecessor
    assert len(pending) >= 3
    assert {k: LABELS[p] for k, p in pending.items()} == {k: emitted[k] for k in pending}
    assert pending[101] == LONGSHORT  # the second half of the split, tested with the first


@pytest.mark.parametrize("case", [1, 3, 4])
def test_a_resumed_detector_continues_exactly_like_the_stream(case: int) -> None:
    """`Detector.resume` from the stream's own judged values, wherever nothing is pending,
    judges the rest of the segment exactly as the stream goes on to (the vectorised form starts
    one at each correction)."""
    x, lag = walks()[case]
    det = Detector(lag)
    values = x.copy()
    labels = np.full(len(x), UNJUDGED)
    points = 0
    for e, v in enumerate(x.tolist()):
        for j in det.push(v):
            values[j.k] = j.value_us
            labels[j.k] = LABELS.index(j.artifact)
        nb = det.next_beat
        if e % 37 or det.open_artifacts or det.pending(nb) is not None or e + 1 < 50:
            continue
        normals = np.flatnonzero(labels[:nb] == NORMAL)
        res = Detector.resume(
            values,
            e + 1,
            nb,
            int(normals[-1]) if len(normals) else None,
            np.flatnonzero(labels[:nb] > 0).tolist(),
            lag,
        )
        assert res.next_beat == nb
        twin = _copy_stream(x[: e + 1], lag)
        for v2 in x[e + 1 :].tolist():
            assert res.push(v2) == twin.push(v2), (case, e)
        points += 1
    assert points >= 3


def _copy_stream(x: np.ndarray, lag: int) -> Detector:
    det = Detector(lag)
    for v in x.tolist():
        det.push(v)
    return det


@pytest.mark.parametrize("factor", [1.5, 1.3, 0.75, 0.6])
def test_a_run_of_three_long_or_short_beats_is_caught_by_its_distance_from_the_median(
    factor: float,
) -> None:
    """Three beats off the rhythm together: no dRR pattern of the paper (the second and third
    differ little from the first), only |mRR| > 3 Th2 names the first. The vectorised form must
    hand such a beat to the per-beat detector, in a calm rhythm and in a very variable one."""
    x = calm(300, seed=5)
    x[150:153] = (x[150:153] * factor).astype(np.int64)
    assert_same(x)
    assert judge_segment(x).labels[150] == LONGSHORT
    y = walk(300, 11, 40_000, 0.0, False)
    y[150:153] = (y[150:153] * factor).astype(np.int64)
    assert_same(y)


# ---- the veto's exception for abrupt shortenings (`_course_fails`), at its edges ---------------


def beats_with_steps(steps: list[int], start: int = 800_000) -> list[int]:
    """RR whose successive differences alternate in sign with the given sizes."""
    y = [start]
    for i, s in enumerate(steps):
        y.append(y[-1] + (s if i % 2 else -s))
    return y


def abrupt(history: list[int], drop: int, tail: list[int]) -> tuple[list[int], int]:
    """The history's beats, then beat j `drop` shorter than beat j-1, then `tail`: (y, j)."""
    y = beats_with_steps(history)
    y.append(y[-1] - drop)
    return y + tail, len(y) - 1


# |dRR| of the 15 beats before j: 1..15 ms, median 8 ms, so "abrupt" is more than 32 ms
HISTORY = [5_000] * 5 + [k * 1_000 for k in (3, 14, 8, 1, 15, 6, 11, 2, 13, 9, 4, 12, 7, 10, 5)]
COUPLET = [539_000, 1_492_000, 800_000]  # a second premature beat and the pause: j+1 off course


def test_an_abrupt_shortening_is_more_than_4_median_steps_of_the_15_beats_before() -> None:
    y, j = abrupt(HISTORY, 32_000, COUPLET)
    assert not _course_fails(j, y, 0, 0)
    y, j = abrupt(HISTORY, 32_001, COUPLET)
    assert _course_fails(j, y, 0, 0)


def test_next_to_the_segment_start_the_median_is_of_the_steps_since() -> None:
    # the segment starts 4 beats before j: the steps of beats first+1..j-1 are 2, 7, 1 ms
    y, j = abrupt([50_000] * 16 + [2_000, 7_000, 1_000], 8_001, COUPLET)
    first = j - 4
    assert _course_fails(j, y, first, 0)
    y, j = abrupt([50_000] * 16 + [2_000, 7_000, 1_000], 8_000, COUPLET)
    assert not _course_fails(j, y, first, 0)
    # no beat of the segment before j-1: nothing to compare with
    assert not _course_fails(j, y, j - 1, 0)
    assert not _course_fails(j, y, j, 0)


def test_a_late_premature_beat_is_one_far_below_its_course_before_a_longer_beat() -> None:
    # beat j+1 exactly on its own course (j-1, j, j+2, j+3): only the last rule can fail it
    y, j = abrupt(HISTORY, 40_000, [0, 900_000, 870_000])
    q6 = -y[j - 1] + 4 * y[j] + 4 * y[j + 2] - y[j + 3]
    y[j + 1] = q6 // 6
    assert y[j + 1] > y[j]
    assert not _course_fails(j, y, 0, 0)  # on its course
    edge = 6 * ABRUPT_RATIO * 8_000  # 6 x (4 x the median step), as r6 is 6 x the deviation
    assert not _course_fails(j, y, 0, -edge)
    assert _course_fails(j, y, 0, -edge - 1)
    assert not _course_fails(j, y, 0, edge + 1)  # above its course: not premature
    y2 = list(y)
    y2[j + 1] = y2[j]  # no longer beat after it: no pause begins
    q6 = -y2[j - 1] + 4 * y2[j] + 4 * y2[j + 2] - y2[j + 3]
    assert 100 * abs(6 * y2[j + 1] - q6) < SMOOTH_PCT * q6  # still on its course
    assert not _course_fails(j, y2, 0, -edge - 1)


def test_beat_j_plus_1_off_its_course_by_13_percent_fails_the_course() -> None:
    y, j = abrupt(HISTORY, 40_000, [0, 900_000, 870_000])
    q6 = -y[j - 1] + 4 * y[j] + 4 * y[j + 2] - y[j + 3]
    # 100 |6 y - q6| < 13 q6 is "on the course": find the first integer y off it, above and below
    hi = (113 * q6) // 600
    while 100 * abs(6 * hi - q6) < SMOOTH_PCT * q6:
        hi += 1
    lo = (87 * q6) // 600
    while 100 * abs(6 * lo - q6) < SMOOTH_PCT * q6:
        lo -= 1
    for v, fails in ((hi, True), (hi - 1, False), (lo, True), (lo + 1, False)):
        y[j + 1] = v
        assert _course_fails(j, y, 0, 0) is fails, v


def test_a_lone_candidate_in_the_last_judged_row_is_handed_over() -> None:
    """One beat past its threshold in the whole segment, judged at the last arrival: it waits
    for a normal successor (unjudged in both forms), not "normal" in the vectorised one."""
    rng = np.random.default_rng(0)
    x = 800_000 + rng.integers(-2_000, 2_000, 200)
    j = len(x) - MIN_LAG - 1
    x[j] = 560_000
    assert int(_judge_rows(x, MIN_LAG).main.sum()) == 1
    assert_same(x)
    assert judge_segment(x).labels[j] == UNJUDGED


def test_the_beat_judged_at_the_90th_value_gets_its_own_threshold() -> None:
    """The first row judged with a full 91-value window is at the 91st value; the one before
    (judged at the 90th) has no full window, so no lower bound from another window (here: the
    wildly alternating end of the segment) may prune it."""
    y = calm(300, seed=1)
    k = QD_BEATS - 2 - MIN_LAG  # judged when beat 89 (the 90th) arrives
    y[k] = y[k] * 70 // 100
    y[-130:] = np.where(np.arange(130) % 2 == 0, 500_000, 1_300_000)
    assert judge_segment(y).labels[k] > 0
    assert_same(y)


def test_judge_segment_types_and_its_first_judgement() -> None:
    x = walk(200, 2, 15_000, 0.1, True)
    sj = judge_segment(x)
    for given in (x.astype(np.int32), x.tolist(), x.astype(np.float64)):
        other = judge_segment(given)
        assert other.labels.dtype == np.int8
        assert other.values.dtype == np.int64
        assert other.judged_at.dtype == np.int64
        assert np.array_equal(other.labels, sj.labels)
        assert np.array_equal(other.values, sj.values)
    # a segment of exactly 46 beats: its first 40 are judged when the 46th arrives
    y = calm(MIN_SEGMENT_BEATS, seed=6)
    first = judge_segment(y)
    assert (first.labels[: MIN_SEGMENT_BEATS - MIN_LAG] == NORMAL).all()
    assert (first.judged_at[: MIN_SEGMENT_BEATS - MIN_LAG] == MIN_SEGMENT_BEATS - 1).all()
    assert_same(y)
    with pytest.raises(ValueError, match="lag must be at least 6 beats"):
        judge_segment(y, MIN_LAG - 1)
    # a lag of 45: one beat judged (beat 0, when the 46th arrives)
    one = judge_segment(y, MIN_SEGMENT_BEATS - 1)
    assert one.labels.tolist() == [NORMAL] + [UNJUDGED] * (MIN_SEGMENT_BEATS - 1)
    assert one.judged_at[0] == MIN_SEGMENT_BEATS - 1
    # too short to judge anything: raw values, never judged
    for short in (judge_segment(y[:-1]), judge_segment(y, MIN_SEGMENT_BEATS)):
        assert (short.labels == UNJUDGED).all()
        assert np.array_equal(short.values, y[: len(short.values)])
        assert (short.judged_at == NEVER).all()


@pytest.mark.parametrize("n", range(198, 207))
def test_the_per_beat_detector_hands_back_at_the_end_of_the_segment(n: int) -> None:
    """A premature beat and its pause at 100-101: the per-beat detector hands the segment back
    100 beats after its last change, which for n = 202 is exactly the last beat."""
    x = calm(n, seed=0)
    x[100] = x[100] * 65 // 100
    x[101] += x[100] * 35 // 65
    sj = judge_segment(x)
    assert sj.labels[100] > 0
    assert sj.labels[101] > 0
    assert_same(x)


def test_a_run_of_150_artifacts_is_corrected_when_the_rhythm_returns() -> None:
    """Artifacts waiting 150 beats for a normal one: the per-beat detector must not hand back
    while they wait (a shorter run than the one the xfail below crashes on)."""
    x = calm(500, seed=3)
    x[100:250] = np.resize(np.array([400_000, 1_600_000]), 150)
    sj = judge_segment(x)
    assert (sj.labels[100:250] > 0).mean() > 0.9
    assert (sj.labels[300:494] == NORMAL).all()
    assert_same(x)


def test_a_long_run_of_artifacts_is_corrected_when_the_rhythm_returns() -> None:
    # found on the mutation run's Detector._trim mutant: a run of about 300 artifacts with no
    # normal beat (a loose strap alternating 400/1600 ms for 5 minutes) left artifacts waiting
    # in the queue older than the trimmed buffer (IndexError at the first normal beat); the
    # buffer now keeps what a waiting artifact's correction reads
    x = calm(600, seed=3)
    x[100:400] = np.resize(np.array([400_000, 1_600_000]), 300)
    sj = judge_segment(x)
    assert (sj.labels[100:400] > 0).mean() > 0.9
    assert (sj.labels[450:594] == NORMAL).all()
    assert_same(x)


def test_smooth_rows_equals_smooth_at_the_segment_start_and_on_abrupt_shortenings() -> None:
    """The vectorised veto against the per-beat one where the random twin test rarely goes:
    beats 1 and 2 (the short course, the first steps), beats 15 and 16 (the median of steps
    from the segment start or of a full 15), and the abrupt shortenings pinned above, alone
    and among other beats."""
    rng = np.random.default_rng(7)
    cases: list[tuple[list[int], list[int]]] = []
    for _ in range(200):
        y = (800_000 + rng.normal(0, 30_000, 24)).round().astype(np.int64).tolist()
        y[int(rng.integers(1, 18))] -= int(rng.integers(0, 250_000))  # now and then abrupt
        cases.append((y, [1, 2, 3, 14, 15, 16, 17]))
    for drop in (32_000, 32_001, 40_000, 120_000):
        for tail in (COUPLET, [0, 900_000, 870_000], [700_000, 800_000, 810_000]):
            y, j = abrupt(HISTORY, drop, tail)
            if tail[0] == 0:
                y[j + 1] = (-y[j - 1] + 4 * y[j] + 4 * y[j + 2] - y[j + 3]) // 6
            cases.append((y, [j]))
            cases.append((y, [2, j - 1, j]))
    vetoed = 0
    for y, js in cases:
        want = [_smooth(j, y, 0) for j in js]
        got = _smooth_rows(np.asarray(js, dtype=np.intp), np.asarray(y, dtype=np.int64))
        assert got.dtype == np.bool_
        assert got.tolist() == want, (y, js)
        vetoed += sum(want)
    assert vetoed > 100


def quantised_walk(
    n: int, seed: int, step: int, share: float, bigeminy: bool, q: int
) -> np.ndarray:
    """`walk` with every value rounded to a multiple of q µs, as a strap's clock quantises RR
    (Polar: 1/1024 s, about 977 µs): equal |dRR| and values exactly at a boundary are common."""
    rng = np.random.default_rng(seed)
    x = 800_000 + np.cumsum(rng.normal(0, step, n))
    odd = rng.random(n) < share
    x[odd] *= rng.uniform(0.4, 2.1, int(odd.sum()))
    if bigeminy:
        a = int(rng.integers(0, n))
        x[a : a + 60 : 2] *= 0.6
    y: np.ndarray = np.clip(np.rint(x / q) * q, 250_000, 2_500_000).astype(np.int64)
    return y


# Found by a search against the mutated copy (docs/testing.md, artifacts.py: "killed since"):
# each makes the vectorised form differ from the per-beat detector under at least one mutant.
QUANTISED = [
    (252, 49, 2_000, 0.02, False, 20_000, 11),
    (123, 76, 15_000, 0.02, False, 10_000, 6),
    (226, 98, 40_000, 0.02, False, 7_812, 7),
    (116, 234, 15_000, 0.02, False, 10_000, 8),
    (110, 242, 2_000, 0.05, False, 20_000, 11),
    (115, 1008, 40_000, 0.3, False, 10_000, 8),
    (140, 20, 40_000, 0.02, False, 20_000, 7),
    (222, 145, 40_000, 0.2, True, 7_812, 10),
    (226, 334, 40_000, 0.05, False, 1, 10),
]


@pytest.mark.parametrize(("n", "seed", "step", "share", "bigeminy", "q", "lag"), QUANTISED)
def test_quantised_series_with_ties_agree_in_both_forms(
    n: int, seed: int, step: int, share: float, bigeminy: bool, q: int, lag: int
) -> None:
    x = quantised_walk(n, seed, step, share, bigeminy, q)
    if q > 1:
        assert len(np.unique(x)) < n // 2  # quantised: ties everywhere
    labels = judge_segment(x, lag).labels
    assert (labels > 0).any()  # something for the two forms to agree on
    assert_same(x, lag)


def test_smooth_rows_equals_smooth_on_abrupt_shortenings_at_the_13_percent_edges() -> None:
    """The vectorised veto against the per-beat one on 3000 abrupt shortenings (values in 3 ms
    steps, so the median step and 13 % ties are exact): beat j or beat j+1 set exactly on the
    13 % edge of its course in two thirds of them, the rest with random courses after j."""
    rng = np.random.default_rng(3)
    vetoed = edges = 0
    for t in range(3000):
        y = beats_with_steps([int(v) for v in rng.integers(0, 30, 20) * 3_000])
        y.append(y[-1] - int(rng.integers(0, 60)) * 3_000)
        j = len(y) - 1
        y += [int(v) for v in y[j] + rng.integers(-40, 120, 4) * 3_000]
        if t % 3 == 1:  # beat j+1 on the edge of its course (j-1, j, j+2, j+3)
            q6 = -y[j - 1] + 4 * y[j] + 4 * y[j + 2] - y[j + 3]
            if q6 > 0 and q6 % 600 == 0:
                y[j + 1] = (113 if rng.random() < 0.5 else 87) * q6 // 600
                edges += 1
        if t % 3 == 2:  # beat j on the edge of its course (j-2, j-1, j+1, j+2)
            p6 = -y[j - 2] + 4 * y[j - 1] + 4 * y[j + 1] - y[j + 2]
            if p6 > 0 and p6 % 600 == 0:
                y[j] = (87 if rng.random() < 0.5 else 113) * p6 // 600
                edges += 1
        want = _smooth(j, y, 0)
        got = _smooth_rows(np.asarray([j], dtype=np.intp), np.asarray(y, dtype=np.int64))
        assert got.tolist() == [want], (y, j)
        vetoed += want
    assert vetoed > 300
    assert edges > 500


# ---- the per-beat detector against its rules, recomputed from scratch at every judgement


def _quartiles_th(vals: list[float]) -> float:
    """5.2 QD of the values (pandas' linear quantiles), capped at 5.2 x 4.5 x Q1, floored."""
    s = sorted(vals)
    if len(s) < 2:
        return float(FLOOR_US)

    def q(p: float) -> float:
        pos = (len(s) - 1) * p
        lo = int(pos)
        frac = pos - lo
        return s[lo] + (s[lo + 1] - s[lo]) * frac if frac else float(s[lo])

    q1, q3 = q(0.25), q(0.75)
    return max(min(ALPHA * ((q3 - q1) / 2), ALPHA * Q1_RATIO * q1), float(FLOOR_US))


def reference_stream(raw: list[int], lag: int = MIN_LAG) -> list[tuple[int, int, int, str | None]]:
    """The module docstring's detector, written plainly: no sorted windows, no trimming, no
    incremental updates. At each judgement the thresholds, medians and |mRR| are computed anew
    from the series as judged so far (an artifact's corrected value, or its centred median until
    it has one), artifacts and the steps into and out of them left out of the windows.

    Returns every judgement as (arrival, beat, value, label), in the order they are made.
    A change to the detector's rules must be made here too (the test below then says so)."""
    x: list[int] = []  # current values: final when judged, raw before
    art: set[int] = set()
    queue: list[tuple[int, str]] = []  # artifacts waiting for a normal successor
    last_normal: tuple[int, int] | None = None
    consumed: set[int] = set()
    out: list[tuple[int, int, int, str | None]] = []

    def drr(k: int) -> int:
        return x[k] - x[k - 1] if k else 0

    def med(k: int) -> float:
        w = sorted(x[max(0, k - 5) : k + 6])
        h = len(w) // 2
        return float(w[h]) if len(w) % 2 else (w[h - 1] + w[h]) / 2

    def mabs(k: int) -> float:
        m = x[k] - med(k)
        return -2.0 * m if m < 0 else float(m)

    def course6(j: int) -> int:  # 6 x the value interpolated from the neighbours
        if j >= 2:
            return -x[j - 2] + 4 * x[j - 1] + 4 * x[j + 1] - x[j + 2]
        return 3 * (x[j - 1] + x[j + 1])

    def on_course(j: int) -> bool:
        p6 = course6(j)
        return p6 > 0 and 100 * abs(6 * x[j] - p6) < SMOOTH_PCT * p6

    def rhythm_step(j: int) -> int:  # the median |dRR| of the 15 beats before j (upper median)
        steps = sorted(abs(drr(i)) for i in range(max(1, j - 15), j))
        return steps[len(steps) // 2] if steps else 0

    def dipole(j: int) -> bool:  # j bends down, j+1 up, by 4 x the median |2nd difference|
        short = x[j - 1] - x[j]
        if short <= FLOOR_US or 2 * abs(x[j + 2] - x[j - 1]) > short:
            return False
        bends = sorted(abs(x[i - 1] - 2 * x[i] + x[i + 1]) for i in range(max(1, j - 15), j - 1))
        if not bends:
            return False
        t = ABRUPT_RATIO * bends[len(bends) // 2]
        return x[j - 1] - 2 * x[j] + x[j + 1] > t and x[j] - 2 * x[j + 1] + x[j + 2] < -t

    def vetoed(j: int) -> bool:
        if not on_course(j):
            return False
        if j < 2:
            return True  # no step before it: nothing to call it abrupt against
        step = rhythm_step(j)
        if x[j - 1] - x[j] <= ABRUPT_RATIO * step and not dipole(j):
            return True  # no abrupt shortening: the course vouches for the beat
        r6 = 6 * x[j] - course6(j)
        late = r6 < 0 and x[j + 1] > x[j] and -r6 > 6 * ABRUPT_RATIO * step
        return on_course(j + 1) and not late

    def ectopic(a: float, p: float, q: float) -> bool:
        if a > 0:
            return max(p, q) < -0.13 * a - 0.17
        return min(p, q) > -0.13 * a + 0.17

    def before_pause(j: int, t1: float) -> bool:  # the shortening before a pause
        if not (drr(j) < 0 < drr(j + 1)) or x[j + 1] < x[j - 1]:
            return False
        a = drr(j + 1) / t1
        return a > 1 and ectopic(a, drr(j) / t1, drr(j + 2) / t1)

    def rhythm_th(j: int) -> int:
        return max(ABRUPT_RATIO * rhythm_step(j), FLOOR_US)

    def premature_for_rhythm(j: int) -> bool:  # the same pattern, against the rhythm's step
        dj, t = drr(j), rhythm_th(j)
        if not (-dj > t and drr(j + 1) > 0 and x[j + 1] >= x[j - 1]):
            return False
        if abs(x[j + 2] - x[j - 1]) > -dj / 2 or abs(drr(j - 1)) > -dj / 2:
            return False  # not a steady rhythm on both sides
        a = drr(j + 1) / t
        return a > 1 and ectopic(a, dj / t, drr(j + 2) / t)

    def second_premature(j: int) -> bool:  # beat j+1 still short of the rhythm before j
        return x[j] < x[j - 1] <= x[j + 2] and x[j - 1] - x[j + 1] > rhythm_th(j)

    def long_short(j: int, t1: float, t2: float) -> str | None:
        s21 = drr(j) / t1
        n1, n2 = drr(j + 1) / t1, drr(j + 2) / t1
        s22 = min(n1, n2) if s21 >= 0 else max(n1, n2)
        long_, short = s21 > 1 and s22 < -1, s21 < -1 and s22 > 1
        if short and n1 < 0 and abs(x[j] + x[j + 1] - med(j)) >= t2:
            short = False  # the next beat is shorter still and no split: not this beat's pause
        if not (long_ or short or mabs(j) / t2 > 3):
            return None
        if short and abs(x[j] + x[j + 1] - med(j)) < t2:
            return "extra"
        if long_ and abs(x[j] / 2 - med(j)) < t2:
            return "missed"
        return "longshort"

    def judge(i: int, e: int) -> None:
        nonlocal last_normal
        t1 = _quartiles_th(
            [abs(drr(k)) for k in range(max(0, e - 90), e + 1) if k not in art and k - 1 not in art]
        )
        newest = e - 5
        t2 = _quartiles_th(
            [mabs(k) for k in range(max(0, newest - 90), newest + 1) if k not in art]
        )
        label: str | None = None
        nxt: str | None = None
        with_next = False
        a = drr(i) / t1
        if abs(a) > 1:
            if ectopic(a, drr(i - 1) / t1, drr(i + 1) / t1):
                label = "ectopic"
            else:
                label = long_short(i, t1, t2)
                if abs(drr(i + 1) / t1) < abs(drr(i + 2) / t1):
                    with_next = True
                    nxt = long_short(i + 1, t1, t2)
                    if nxt and vetoed(i + 1):
                        nxt = None
            if label and vetoed(i):
                label = None
            elif label and with_next and nxt is None and second_premature(i):
                nxt = "ectopic"
        pause = before_pause(i, t1) or (i - 1 not in art and premature_for_rhythm(i))
        if not label and not with_next and pause and not vetoed(i):
            label, with_next = "ectopic", True  # the premature beat of the pause
            nxt = None if vetoed(i + 1) else "ectopic"
        verdicts = [(i, label)]
        if with_next:
            consumed.add(i + 1)
            verdicts.append((i + 1, nxt))
        for k, lab in verdicts:
            if lab is None:
                for q, qlab in queue:
                    if last_normal is None:
                        v = x[k]
                    else:
                        lk, lv = last_normal
                        v = round(lv + (x[k] - lv) * (q - lk) / (k - lk))
                    out.append((e, q, v, qlab))
                    x[q] = v
                queue.clear()
                last_normal = (k, x[k])
                out.append((e, k, x[k], None))
            else:
                queue.append((k, lab))
                art.add(k)
        for k, _ in queue:
            if k >= i:
                x[k] = round(med(k))

    nxt_beat = 0
    for e, v in enumerate(raw):
        x.append(v)
        if e + 1 < MIN_SEGMENT_BEATS:
            continue
        while nxt_beat <= e - lag:
            i = nxt_beat
            nxt_beat += 1
            if i in consumed:
                consumed.discard(i)
                continue
            judge(i, e)
    return out


def detector_stream(raw: list[int], lag: int = MIN_LAG) -> list[tuple[int, int, int, str | None]]:
    det = Detector(lag)
    return [(e, j.k, j.value_us, j.artifact) for e, v in enumerate(raw) for j in det.push(v)]


EARLY_CORRECTIONS = [
    798209,
    499247,
    559821,
    946203,
    798209,
    600578,
    780623,
    793324,
    792347,
    790393,
    789416,
    527580,
    789416,
    787462,
    1221250,
    1638429,
    785508,
    784531,
    780623,
    780623,
    783554,
    782577,
    1332628,
    788439,
    784531,
    787462,
    896886,
    1468431,
    1485040,
    789416,
    1343375,
    1126481,
    789416,
    786485,
    787462,
    786485,
    790393,
    788439,
    631142,
    1194871,
    414248,
    788439,
    788439,
    786485,
    851944,
    1057114,
    787462,
    1354122,
    379076,
    790393,
]


EARLY_MEDIANS = [
    785508,
    805048,
    1532913,
    1298568,
    871484,
    865556,
    866599,
    979931,
    845105,
    829473,
    791370,
    785508,
    791370,
    798209,
    1106941,
    773784,
    750336,
    736658,
    1329697,
    448443,
    747405,
    727865,
    1370731,
    1429351,
    679992,
    765968,
    670222,
    1108895,
    1362915,
    691716,
    674130,
    456259,
    660452,
    620395,
    370283,
    658498,
    665337,
    672176,
    681946,
    1318950,
    803094,
    662406,
    642866,
    629188,
    643843,
    637981,
    646774,
    1157745,
    1001425,
    606717,
    637004,
    648728,
    660452,
    665337,
    1063953,
]


def _reference_cases() -> list[tuple[str, np.ndarray, int]]:
    cases = [(f"walk{i}", x, lag) for i, (x, lag) in enumerate(walks())]
    cases += [(f"quantised{i}", quantised_walk(*c[:6]), c[6]) for i, c in enumerate(QUANTISED)]
    x = calm(1000, seed=3)
    at = np.arange(100, len(x) - 1, 9)  # frequent premature beats with their pauses
    x[at + 1] += x[at] * 38 // 100
    x[at] = x[at] * 62 // 100
    cases.append(("premature every 9", x, MIN_LAG))
    x = calm(600, seed=3)  # a loose strap: 300 artifacts with no normal beat between
    x[100:400] = np.resize(np.array([400_000, 1_600_000]), 300)
    cases.append(("300 artifacts", x, 7))
    x = calm(200, seed=5)  # artifacts among the first beats judged: no normal beat before them
    x[1] = x[1] * 55 // 100
    x[2] = x[2] * 16 // 10
    x[3] = x[3] * 2
    cases.append(("artifacts first", x, MIN_LAG))
    x = calm(120, seed=5)  # beat 1 premature, its pause judged after its correction
    x[1] = x[1] * 6 // 10
    x[2] = x[2] * 14 // 10
    cases.append(("premature beat 1", x, MIN_LAG))
    # found by a search against Detector._correct 60 (beat 0's median not updated when an
    # artifact among beats 1-5 is corrected): a quantised walk with early odd beats, 50 beats
    x = np.array(EARLY_CORRECTIONS, dtype=np.int64)
    cases.append(("early corrections", x, MIN_LAG))
    # found by a search against Detector._median_dev 7, 25, 27, 30, 31 (the truncated medians
    # of beats 0-4: from beat 1, the upper or a wrong middle value of an even window)
    cases.append(("early medians", np.array(EARLY_MEDIANS, dtype=np.int64), 9))
    # premature dips of 45 ms with 80 ms pauses in a calm rhythm: not abrupt for the veto's
    # step test, found by the dipole exception (`_dipole`)
    x = calm(400, seed=6)
    at = np.arange(100, 390, 17)
    x[at] -= 45_000
    x[at + 1] += 80_000
    cases.append(("dips with pauses", x, MIN_LAG))
    # premature beats 8 % early with full compensatory pauses (only the pause rules find them)
    # past beat 760, where the detector has trimmed its buffer: its segment start is then far
    # before its first kept beat
    x = calm(1100, seed=3)
    at = np.arange(760, 1090, 17)
    early = x[at] * 8 // 100
    x[at] -= early
    x[at + 1] += early
    cases.append(("late premature beats after a trim", x, MIN_LAG))
    # lags the config allows (up to 10,000): an artifact leaves the threshold windows only
    # while it is inside them (beat e - 91, e - 96 are their edges)
    cases += [(f"lag {lag}", walk(400, 2, 15_000, 0.1, True), lag) for lag in (91, 92, 96, 150)]
    return cases


REFERENCE_CASES = _reference_cases()


@pytest.mark.parametrize("case", range(len(REFERENCE_CASES)))
def test_the_per_beat_detector_follows_its_rules_recomputed_at_every_judgement(case: int) -> None:
    """`Detector` (sorted windows kept up to date beat by beat, a trimmed buffer, corrections
    spread into medians and windows) against `reference_stream`, which recomputes everything at
    each judgement: the same judgements, values and arrivals, in the same order. And the
    vectorised form gives the same labels, values and arrivals."""
    name, x, lag = REFERENCE_CASES[case]
    want = reference_stream(x.tolist(), lag)
    assert any(lab for *_, lab in want) or name == "walk5"  # (walk5 is clean)
    got = detector_stream(x.tolist(), lag)
    # (if a rule changed on purpose: reference_stream above must follow it)
    diff = [(g, w) for g, w in zip(got, want, strict=False) if g != w][:1]
    assert got == want, (name, diff or "lengths differ")
    assert_segment_equals_stream(x.tolist(), want, lag, name)


def assert_segment_equals_stream(
    x: list[int], want: list[tuple[int, int, int, str | None]], lag: int = MIN_LAG, note: str = ""
) -> None:
    """`judge_segment` on the whole series gives the stream's labels, values and judgement times
    (`want`: the stream's judgements, `reference_stream`'s form)."""
    sj = judge_segment(np.array(x, dtype=np.int64), lag)
    labels = np.full(len(x), UNJUDGED)
    values, at = np.array(x, dtype=np.int64), np.full(len(x), NEVER)
    for e, k, v, lab in want:
        labels[k], values[k], at[k] = LABELS.index(lab), v, e
    assert sj.labels.tolist() == labels.tolist(), note
    assert sj.values.tolist() == values.tolist(), note
    assert sj.judged_at.tolist() == at.tolist(), note


@pytest.mark.parametrize("lag", [175, 180, 300])
def test_a_lag_longer_than_the_kept_buffer_is_judged_like_any_other(lag: int) -> None:
    # found on the mutation run (Detector._exclude at the window edges with long lags): with
    # artifact_lag_beats of about 175 or more (the config allows 10,000) Detector._trim dropped
    # beats not judged yet (IndexError in push at 180, in judge_segment at 175); a strict xfail
    # until 6c73e36 fixed it
    x = walk(700, 2, 15_000, 0.1, True)
    want = reference_stream(x.tolist(), lag)
    assert any(lab for *_, lab in want)
    assert detector_stream(x.tolist(), lag) == want
    assert (
        judge_segment(x, lag).labels.tolist()
        == [LABELS.index(lab) for _, _, _, lab in sorted(want, key=lambda w: w[1])]
        + [UNJUDGED] * lag
    )
