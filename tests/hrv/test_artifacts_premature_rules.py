"""The edges of the premature-beat rules, and probe series for the per-beat detector.

Written for the mutation run's survivors (docs/mutation/artifacts-per-beat.md): each edge below is
a documented rule of the module docstring or of the helper's own docstring (a pause that
"reaches" the interval before, "within half the shortening", "by more than" the rhythm's
threshold, "at least `FLOOR_US`"), checked on hand-made intervals in ms as
test_premature_rhythm.py does. The probe series at the end are random rhythms with premature
beats, couplets, dips and pauses placed in them (late ones past the detector's first buffer
trim); the per-beat detector must follow `reference_stream`, the rules recomputed at every
judgement, on each.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from biofeedback.signal.artifacts import (
    EXTRA,
    LABELS,
    LONGSHORT,
    MISSED,
    NORMAL,
    _before_pause,
    _dipole,
    _ls_class,
    _premature_for_rhythm,
    _rhythm_step,
    _second_premature,
    _smooth,
    judge_segment,
)
from tests.hrv.test_artifacts_details import (
    assert_segment_equals_stream,
    detector_stream,
    reference_stream,
)

# a steady rhythm (steps of 8 ms: the rhythm's threshold is 4 x 8 = 32 ms), as MIT-LTDB 15814
STEADY = [742, 750, 742, 734, 742, 750, 742, 734, 742, 750, 742, 734, 742, 750, 742, 742]
J = len(STEADY)  # the beat tested: the first after the rhythm


def _us(x_ms: list[int]) -> tuple[list[int], list[int]]:
    x = [v * 1000 for v in x_ms]
    return x, [0] + [b - a for a, b in itertools.pairwise(x)]


def premature(x_ms: list[int], j: int = J) -> bool:
    x, d = _us(x_ms)
    return _premature_for_rhythm(j, x, d, 0)


def second(x_ms: list[int], j: int = J) -> bool:
    x, _ = _us(x_ms)
    return _second_premature(j, x, 0)


def test_a_pause_exactly_as_long_as_the_interval_before_the_premature_beat_is_a_pause() -> None:
    # 742, 672 (70 ms early), 742: the pause "reaches the interval before it"
    assert premature([*STEADY, 672, 742, 720, 742])
    assert not premature([*STEADY, 672, 741, 720, 742])


def test_the_pause_is_measured_against_the_interval_just_before_the_premature_beat() -> None:
    # 742, 760, 700, 750: the next beat is longer than 742 but shorter than 760, the interval
    # the premature beat cut short: a recovery, not a pause
    before = [*STEADY[:-1], 760]
    assert not premature([*before, 700, 750, 735, 742])
    assert premature([*before, 700, 760, 735, 742])


def test_the_rhythm_resumes_where_the_interval_before_the_premature_beat_left_it() -> None:
    # the interval before (742) follows 710 (32 ms: within half the 70 ms shortening); after the
    # pause the rhythm resumes at 770, 28 ms from 742 (and 60 ms from 710)
    before = [*STEADY[:-2], 710, 742]
    assert premature([*before, 672, 828, 770, 742])
    assert not premature([*before, 672, 828, 778, 742])  # 36 ms from 742


def test_the_interval_before_continues_the_rhythm_within_exactly_half_the_shortening() -> None:
    before = [*STEADY[:-2], 707, 742]  # 35 ms: exactly half of the 70 ms shortening
    assert premature([*before, 672, 828, 742, 742])
    before = [*STEADY[:-2], 706, 742]  # 36 ms
    assert not premature([*before, 672, 828, 742, 742])


def test_a_beat_slightly_early_before_a_much_longer_one_is_not_a_premature_beat() -> None:
    # 40 ms early (past the 32 ms threshold), then a beat 340 ms longer: the paper's ectopic
    # pattern wants the shortening beyond -c1 x the lengthening - c2 (here -1.55 x 32 ms)
    assert not premature([*STEADY, 702, 1042, 752, 742])
    # 60 ms early: beyond it
    assert premature([*STEADY, 682, 1042, 752, 742])


def test_the_rhythm_step_is_the_median_of_the_15_steps_before_the_beat() -> None:
    # steps of 1..15 ms in a shuffled order: the median is 8 ms, not 6 or 7
    steps = [3, 14, 8, 1, 15, 6, 11, 2, 13, 9, 4, 12, 7, 10, 5]
    x = [800_000]
    for i, s in enumerate(steps):
        x.append(x[-1] + (s if i % 2 else -s) * 1000)
    x += [700_000, 900_000]
    assert _rhythm_step(len(steps) + 1, x, 0) == 8000
    assert _rhythm_step(len(steps) + 6, [0] * 5 + x, 5) == 8000  # from the segment's start
    # an even number of steps: the upper of the two middle ones
    assert _rhythm_step(5, x, 0) == sorted(steps[:4])[2] * 1000


def test_next_to_the_segment_start_the_rhythm_step_is_of_the_segment_s_own_steps() -> None:
    # steps 100 and 5 ms since the segment began: the median (upper) is 100 ms, and the first
    # beat's step counts
    x = [800_000, 900_000, 905_000, 800_000]
    assert _rhythm_step(3, x, 0) == 100_000
    # the newest beats of the buffer (here 2 s) are not steps before the beat
    x = [800_000, 810_000, 800_000, 810_000, 800_000, 1_000_000, 2_000_000]
    assert _rhythm_step(2, x, 0) == 10_000
    # with no step yet the rhythm's threshold is the floor: a 30 ms shortening is not premature
    x, d = _us([742, 712, 900, 742, 742])
    assert not _premature_for_rhythm(1, x, d, 0)
    x, d = _us([742, 711, 900, 742, 742])
    assert _premature_for_rhythm(1, x, d, 0)


COUPLET_RHYTHM = [930, 922, 930, 938, 930, 922, 930, 938, 930, 922, 930, 938, 930, 922, 930, 930]


def test_a_second_premature_beat_shorter_than_the_first_is_premature_too() -> None:
    assert second([*COUPLET_RHYTHM, 600, 562, 1312, 922, 930])


def test_a_couplet_s_pause_exactly_as_long_as_the_interval_before_it_counts() -> None:
    assert second([*COUPLET_RHYTHM, 562, 859, 930, 922, 930])
    assert not second([*COUPLET_RHYTHM, 562, 859, 929, 922, 930])


def test_a_couplet_s_pause_is_measured_against_the_interval_just_before_it() -> None:
    # the interval before is 930; the one before that 950: a pause of 940 reaches 930
    rhythm = [*COUPLET_RHYTHM[:-2], 950, 930]
    assert second([*rhythm, 562, 859, 940, 922, 930])


def test_the_second_beat_must_be_short_by_more_than_the_rhythm_s_threshold() -> None:
    # steps of 8 ms: the threshold is exactly 32 ms
    assert not second([*COUPLET_RHYTHM, 562, 898, 1312, 922, 930])
    assert second([*COUPLET_RHYTHM, 562, 897, 1312, 922, 930])
    # a lively rhythm (steps of 40 ms): 160 ms, so 100 ms short is its own swing
    lively = [800, 840, 800, 760, 800, 840, 800, 760, 800, 840, 800, 760, 800, 840, 800, 800]
    assert not second([*lively, 600, 700, 1000, 800, 800])
    assert second([*lively, 600, 639, 1000, 800, 800])
    # steps of 1 ms: the threshold is the 30 ms floor, not 4 ms
    calm = [930 + (k % 2) for k in range(16)]
    assert not second([*calm, 562, calm[-1] - 20, 1312, 930, 930])
    assert second([*calm, 562, calm[-1] - 31, 1312, 930, 930])


def _alternating(a: int, b: int, n: int = 16) -> list[int]:
    return [a if k % 2 == (n - 1) % 2 else b for k in range(n)]  # ends with a


def test_a_dip_of_exactly_the_floor_is_not_premature_enough_for_a_dipole() -> None:
    # bends of 16 ms before (742, 750, ...): 4 x 16 = 64 ms; a dip then a peak well beyond it
    y, _ = _us([*_alternating(742, 750), 712, 820, 742, 742])
    assert not _dipole(16, y, 1)  # 30 ms: the floor
    y, _ = _us([*_alternating(742, 750), 711, 820, 742, 742])
    assert _dipole(16, y, 1)


def test_a_dipole_bends_by_more_than_4_median_bends() -> None:
    # bends of 30 ms before (742, 757, ...): 4 x 30 = 120 ms; the dip's bend is exactly 120 ms
    y, _ = _us([*_alternating(742, 757), 707, 792, 742, 742])
    assert y[15] - 2 * y[16] + y[17] == 120_000
    assert not _dipole(16, y, 1)
    y, _ = _us([*_alternating(742, 757), 707, 793, 742, 742])
    assert _dipole(16, y, 1)
    # ... and the peak's bend too: exactly -120 ms is not a dipole, -121 ms is
    y, _ = _us([*_alternating(742, 757), 707, 793, 759, 742])
    assert y[16] - 2 * y[17] + y[18] == -120_000
    assert not _dipole(16, y, 1)
    y, _ = _us([*_alternating(742, 757), 707, 793, 758, 742])
    assert _dipole(16, y, 1)


# ---- probe series: the per-beat detector against its rules recomputed at every judgement


def _probe(rng: np.random.Generator, prev: int) -> list[int]:
    """A premature beat with its pause (sometimes exactly as long as the interval before), a
    couplet, a dip, two pairs in a row, an outlier then a pair, or a pair with a short pause."""
    kind = int(rng.integers(0, 6))
    sh = int(rng.choice([30_000, int(rng.integers(10_000, 200_000))]))
    if kind == 0:
        pa = int(rng.choice([0, sh, int(rng.integers(0, 300_000))]))
        r = int(rng.choice([0, sh // 2, -(sh // 2), int(rng.integers(-60_000, 60_000))]))
        return [prev - sh, prev + pa, prev + r]
    if kind == 1:
        s2 = int(rng.choice([30_000, int(rng.integers(-50_000, 200_000))]))
        pa = int(rng.choice([0, int(rng.integers(0, 500_000))]))
        return [prev - sh, prev - s2, prev + pa]
    if kind == 2:
        return [
            prev - sh,
            prev + int(rng.integers(0, 150_000)),
            prev + int(rng.integers(-20_000, 20_000)),
        ]
    if kind == 3:
        pa = int(rng.integers(0, 250_000))
        sh2 = int(rng.integers(10_000, 200_000))
        pa2 = int(rng.integers(0, 250_000))
        return [prev - sh, prev + pa, prev - sh2, prev + pa2]
    if kind == 4:
        out = int(rng.choice([-300_000, 400_000, int(rng.integers(-300_000, 600_000))]))
        pa = int(rng.integers(0, 250_000))
        return [prev + out, prev - sh, prev + pa, prev]
    return [
        prev - sh,
        prev + int(rng.integers(0, sh + 40_000)),
        prev - int(rng.integers(0, 40_000)),
    ]


def probe_series(seed: int) -> np.ndarray:
    """A rhythm (quantised to 1 µs, 1 ms, 7.812 or 8 ms), lively or calm, with probes placed in
    it; in three of ten series the probes start past beat 380 (after the first buffer trim)."""
    rng = np.random.default_rng(seed)
    q = int(rng.choice([1, 1000, 7812, 8000]))
    base = int(rng.integers(600_000, 1_000_000))
    late = rng.random() < 0.3
    lively = float(rng.choice([0, 20_000, 50_000, 90_000]))
    n0 = int(rng.integers(380, 900)) if late else int(rng.integers(0, 80))
    s = float(rng.choice([1_000, 4_000, 8_000, 12_000, 20_000]))

    def beat(sd: float) -> int:
        v = base + rng.normal(0, sd)
        return int(round(v / q) * q) if q > 1 else int(v)

    x = [beat(lively if k < n0 - 30 else s) for k in range(n0)]
    for _ in range(int(rng.integers(1, 12 if late else 5))):
        x += [beat(s) for _ in range(int(rng.integers(3, 25)))]
        x += _probe(rng, x[-1])
    x += [beat(s) for _ in range(max(20, 60 - len(x)))]
    return np.clip(np.array(x, dtype=np.int64), 250_000, 2_500_000)


# found by searches against the survivors (docs/mutation/artifacts-per-beat.md says which)
PROBE_SEEDS = [1926751966, 1665772335, 483628757, 612176794, 2123775745, 814704260, 1558749761]


@pytest.mark.parametrize("seed", PROBE_SEEDS)
def test_the_per_beat_detector_follows_its_rules_on_probe_series(seed: int) -> None:
    x = probe_series(seed)
    want = reference_stream(x.tolist())
    assert any(lab for *_, lab in want)
    got = detector_stream(x.tolist())
    diff = [(g, w) for g, w in zip(got, want, strict=False) if g != w][:1]
    assert got == want, (seed, diff or "lengths differ")
    assert_segment_equals_stream(x.tolist(), want)


# ---- the segment's first step is 0, and it counts in the first thresholds

# 46 beats whose 44 |dRR| left after the missed beat at 10 (its two steps leave the window) hold
# exactly 11 zeros (beat 0's step and 10 equal neighbours), then 44 ms, ..., 100 ms at the upper
# quartile's two ranks: Th1 = 5.2 x (100 - 0.75 x 44) / 2 = 174.2 ms at the first judgement.
# Beat 30 lengthens by exactly that after beat 29 fell 61 ms: a premature beat with its pause,
# if the lengthening is past Th1.
FIRST_STEP_ZERO = [
    800000, 800000, 717000, 817000, 692000, 692000, 827000, 762000, 877000, 877000,
    1677000, 877000, 797000, 886000, 833000, 833000, 774000, 851000, 756000, 756000,
    830000, 738000, 782000, 782000, 844000, 724000, 771000, 771000, 901000, 840000,
    1014200, 953200, 901000, 791000, 847000, 847000, 707000, 852000, 752000, 752000,
    820000, 734000, 805000, 805000, 755000, 860000,
]  # fmt: skip


@pytest.mark.parametrize(("extra_us", "artifacts"), [(0, [10]), (1, [10, 29, 30, 36, 41])])
def test_the_first_beat_s_step_is_zero_in_the_first_thresholds(
    extra_us: int, artifacts: list[int]
) -> None:
    x = list(FIRST_STEP_ZERO)
    x[30] += extra_us  # 174.2 ms (not past Th1) or 174.201 ms (past it: 29, 30 ectopic, and
    # without their steps the lower Th1 finds two more beats)
    x[31] += extra_us
    x += [795_000, 805_000] * 30
    want = reference_stream(x)
    assert [k for _, k, _, lab in want if lab] == artifacts
    assert detector_stream(x) == want
    sj = judge_segment(np.array(x, dtype=np.int64))  # which resumes the per-beat form at beat 10
    assert np.flatnonzero(sj.labels > 0).tolist() == artifacts


# ---- an exclusion takes effect before the next judgement of the same arrival

# found by a search (beats drawn from a few levels) against `Detector._exclude` 52, 53: beat 1 is
# "longshort" and equals the median of its window (beats 0-6), so its correction changes no
# value; beats 2 and 3, judged together next in the same arrival (the segment's first, beat 45),
# must read the thresholds without beat 1 (Th2 336.7 ms, not 93.7 ms with its |mRR| of 0)
FIRST_BATCH_EXCLUSION = [
    500000, 600000, 500000, 500000, 1002000, 700000, 700002, 701000, 698000, 599000,
    600002, 798000, 1000000, 900000, 800000, 1000000, 899999, 899999, 999000, 1000001,
    1001000, 800001, 1002000, 499998, 600001, 700002, 500000, 1002000, 800000, 501000,
    999000, 500000, 500000, 900000, 598000, 502000, 499999, 499999, 702000, 600002,
    600000, 598000, 600000, 700000, 698000, 899000,
]  # fmt: skip


def test_an_artifact_left_at_its_value_leaves_the_thresholds_before_the_next_judgement() -> None:
    x = FIRST_BATCH_EXCLUSION + [795_000, 805_000] * 10
    want = reference_stream(x)
    assert (45, 1, 500_000, "longshort") in want  # (between beats 0 and 2, both 500 ms)
    assert (45, 3, 500_000, None) in want
    assert detector_stream(x) == want
    assert_segment_equals_stream(x, want)


# ---- |mRR| of a beat half a µs above its median (an even window at the segment start)

# found by a search against `Detector._median_dev` 42: beat 0 is 0.5 µs above the median of beats
# 0-5 (550 ms and 550.001 ms in the middle); at beat 51's arrival its |mRR| of 0.5 µs sits at the
# lower quartile's rank of the |mRR| window, interpolated with the next value: Th2 = 50.43285 ms.
# Beats 45-47 stand `height` above the rhythm's 550 ms: beat 45 is "longshort" by |mRR| > 3 Th2,
# from 151.299 ms on.
HALF_ABOVE_HEAD = [
    550001, 500000, 550000, 610000, 510000, 630000, 550000, 550000, 510000, 470000,
    470000, 550000, 590000, 510000, 510000, 470000, 603527, 510000, 510000, 470000,
    535698, 550000, 550000, 592363, 588170, 590000, 510000, 470000, 550000, 541033,
    603579, 541660, 550000, 470000, 590000, 515680, 590099, 470000, 550000, 550000,
    510000, 550000, 519803, 545690, 510000,
]  # fmt: skip
HALF_ABOVE_TAIL = [
    550000, 510000, 550000, 470000, 550000, 590000, 510000, 590000, 590000, 470000,
    550000, 550000, 470000, 510000, 550000, 510000, 510000, 510000, 590000, 590000,
    590000, 470000, 550000, 470000, 470000, 590000, 550000, 550000, 550000, 590000,
    550000, 590000, 550000, 470000, 510000, 510000, 590000, 550000, 470000, 510000,
]  # fmt: skip


@pytest.mark.parametrize(("height", "label"), [(151_298, None), (151_299, "longshort")])
def test_a_beat_half_a_microsecond_above_its_median_counts_half_a_microsecond(
    height: int, label: str | None
) -> None:
    x = HALF_ABOVE_HEAD + [550_000 + height] * 3 + HALF_ABOVE_TAIL
    want = reference_stream(x)
    assert [(k, lab) for _, k, _, lab in want if k == 45] == [(45, label)]
    assert detector_stream(x) == want
    sj = judge_segment(np.array(x, dtype=np.int64))
    assert LABELS[sj.labels[45]] == label


# ---- the paper's edges in the pause rule, the long/short test and the smooth course

TH = 30_000.0  # thresholds at the floor: an edge at a whole number of µs


def test_a_pause_after_a_shortening_reaches_the_interval_before_it() -> None:
    x, d = _us([*STEADY, 672, 828, 742])
    assert _before_pause(J, x, d, TH)
    x, d = _us([*STEADY, 672, 742, 700])  # exactly as long as the interval before: a pause
    assert _before_pause(J, x, d, TH)
    x, d = _us([*STEADY, 672, 741, 700])  # 1 ms short of it: a recovery
    assert not _before_pause(J, x, d, TH)
    # measured against the interval just before the premature beat, not the one before that
    x, d = _us([*STEADY[:-1], 760, 690, 750, 700])
    assert not _before_pause(J, x, d, TH)


def test_a_pause_exactly_at_th1_is_not_past_it() -> None:
    x, d = _us([*STEADY, 712, 742, 722])  # the pause lengthens by exactly Th1 = 30 ms
    assert not _before_pause(J, x, d, TH)
    assert _before_pause(J, x, d, TH - 1)


def _ls(x_ms: list[int], med_ms: float, mabs_us: float = 0.0) -> int:
    """`_ls_class` of beat 2 of `x_ms`, its median `med_ms`, both thresholds at the floor."""
    x, d = _us(x_ms)
    med = [med_ms * 1000] * len(x)
    return _ls_class(2, x, d, med, mabs_us, TH, TH)


def test_the_long_short_criteria_are_strict_inequalities() -> None:
    # S21 = dRR(j) / Th1 exactly 1 with the next beat much shorter: not long
    assert _ls([742, 742, 772, 732, 742, 742], 742) == NORMAL
    assert _ls([742, 742, 773, 732, 742, 742], 742) == LONGSHORT
    # S22 exactly -1 after a long beat: not long
    assert _ls([742, 742, 782, 752, 752, 742], 742) == NORMAL
    assert _ls([742, 742, 782, 751, 751, 742], 742) == LONGSHORT
    # S21 exactly -1 before a long beat: not short
    assert _ls([742, 742, 712, 752, 752, 742], 742) == NORMAL
    assert _ls([742, 742, 711, 752, 752, 742], 742) == LONGSHORT
    # S22 exactly 1 after a short beat: not short
    assert _ls([742, 742, 702, 732, 732, 742], 742) == NORMAL
    assert _ls([742, 742, 702, 733, 733, 742], 742) == LONGSHORT
    # |mRR| exactly 3 x Th2: not long/short
    assert _ls([742] * 6, 742, 90_000.0) == NORMAL
    assert _ls([742] * 6, 742, 90_001.0) == LONGSHORT


def test_a_short_beat_before_an_equally_short_one_is_short() -> None:
    # only a next beat shorter still is the premature one (that beat owns the pause)
    assert _ls([742, 742, 700, 700, 742, 742], 742) == LONGSHORT
    assert _ls([742, 742, 700, 699, 742, 742], 742) == NORMAL


def test_a_split_beat_is_extra_whatever_the_beats_around_it() -> None:
    # 742 ms split into 400 + 342: the halves add up to the median
    assert _ls([742, 742, 400, 342, 742, 742], 742) == EXTRA
    # uneven halves that miss the median by exactly Th2: the next beat owns the pause
    assert _ls([742, 742, 400, 372, 742, 742], 742) == NORMAL
    assert _ls([742, 742, 400, 371, 742, 742], 742) == EXTRA


def test_extra_and_missed_need_the_median_within_th2() -> None:
    # a short beat whose sum with the next misses the median by exactly Th2: longshort
    assert _ls([742, 742, 400, 402, 742, 742], 772) == LONGSHORT
    assert _ls([742, 742, 400, 402, 742, 742], 772.001) == EXTRA
    # a long beat whose half misses the median by exactly Th2: longshort
    assert _ls([742, 742, 1544, 742, 742, 742], 742) == LONGSHORT
    assert _ls([742, 742, 1543, 742, 742, 742], 742) == MISSED


def test_the_smooth_course_of_the_segment_s_first_beats() -> None:
    # beat 1: the mean of beats 0 and 2 (800 ms), whatever comes after
    y, _ = _us([700, 800, 900, 500, 2000])
    assert _smooth(1, y, 0)
    y, _ = _us([700, 904, 900, 500, 2000])  # 13 % above it exactly: off the course
    assert not _smooth(1, y, 0)
    y, _ = _us([700, 903, 900, 500, 2000])
    assert _smooth(1, y, 0)
    # beat 2: already the four neighbours' course (666.7 ms here), not the two neighbours' 700
    y, _ = _us([800, 700, 760, 700, 800])
    assert not _smooth(2, y, 0)
