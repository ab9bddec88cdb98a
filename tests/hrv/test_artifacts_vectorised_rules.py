"""The vectorised form's window and rule helpers against their per-beat twins, at the edges.

`judge_segment` finds the first beat of a raw stretch whose verdict is not normal with
`_rhythm_steps`, `_dipoles`, `_smooth_rows`, `_ls_classes` and `_pauses` (many beats at once)
and hands the segment from there to the per-beat detector. A helper that calls a beat normal
where its per-beat twin does not hides an artifact from the output; so each is checked here
against its twin on every beat of constructed series, with exact ties at every boundary it
tests (values in whole milliseconds or 5 ms steps, as quantised RR are), and the segment start,
where the windows are truncated. Written for the mutation run on these helpers
(docs/mutation/artifacts-vectorised-rules.md).
"""

from __future__ import annotations

import numpy as np

from biofeedback.signal.artifacts import (
    ABRUPT_BEATS,
    ABRUPT_RATIO,
    C1,
    C2,
    ECTOPIC,
    EXTRA,
    FLOOR_US,
    LONGSHORT,
    MIN_LAG,
    MISSED,
    NORMAL,
    QD_BEATS,
    UNJUDGED,
    _before_pause,
    _dipole,
    _dipoles,
    _ls_class,
    _ls_classes,
    _pauses,
    _premature_for_rhythm,
    _quantiles,
    _rhythm_step,
    _rhythm_steps,
    _smooth,
    _smooth_rows,
    _thresholds,
    judge_segment,
)
from tests.hrv.test_artifacts_details import HISTORY, abrupt, long_short_inputs
from tests.hrv.test_native_artifacts import assert_same


def test_thresholds_at_every_end_and_for_a_lone_row() -> None:
    """`_thresholds` is 5.2 QD of the 91 values up to each end (fewer before the 91st), for
    every end around the first full window, and for a segment where one row alone needs it."""
    rng = np.random.default_rng(31)
    vals = np.abs(rng.normal(0, 30_000, 200)).round()
    vals[::5] += 0.5  # halves of µs, as |mRR| has
    ends = np.arange(200, dtype=np.int64)
    got = _thresholds(vals, ends, np.ones(200, dtype=np.bool_))
    want = [_quantiles(sorted(vals[max(0, e - QD_BEATS + 1) : e + 1].tolist())) for e in ends]
    assert got.tolist() == want
    for r in (0, 44, 89, 90, 91, 150):
        need = np.zeros(200, dtype=np.bool_)
        need[r] = True
        lone = _thresholds(vals, ends, need)
        assert lone[r] == want[r]
        assert np.isnan(np.delete(lone, r)).all()


def test_one_odd_beat_in_a_perfectly_regular_series_is_an_artifact_in_both_forms() -> None:
    """A regular rhythm on a quantised clock can repeat one value for minutes: then the odd
    beat is the segment's only row that needs a threshold, and it must get one."""
    x = np.full(200, 781_250, dtype=np.int64)  # 100 ticks of 7.8125 ms: 76.8 bpm
    j = len(x) - MIN_LAG - 1  # the last beat judged: its successor is not
    x[j] = 546_875
    assert_same(x)
    assert judge_segment(x).labels[j] == UNJUDGED  # an artifact waiting for a normal successor
    x[j - 60] = 546_875  # and one earlier, whose successor is judged: corrected
    assert_same(x)
    assert judge_segment(x).labels[j - 60] > 0


def _steady(rng: np.random.Generator, n: int, unit: int, spread: int) -> np.ndarray:
    """A rhythm around 800 ms in steps of `unit` µs, each step within +-`spread` units."""
    return 800_000 + np.cumsum(rng.integers(-spread, spread + 1, n)) * unit


def test_rhythm_steps_are_the_median_step_of_the_15_beats_before_each_beat() -> None:
    """Every beat from the segment's second on (beat 1 has no step before it: 0; beats 2-15
    the steps since the start; later ones the 15 before), in any order, with ties."""
    rng = np.random.default_rng(11)
    checked = 0
    for n in (2, 3, 4, 5, 15, 16, 17, 18, 31, 90):
        for unit, spread in ((1, 40_000), (1_000, 3), (7_812, 2)):
            x = _steady(rng, n, unit, spread).astype(np.int64)
            jj = rng.permutation(np.arange(1, n))
            got = _rhythm_steps(jj, x)
            xs = x.tolist()
            dabs = np.abs(np.diff(x))
            for j, g in zip(jj.tolist(), got.tolist(), strict=True):
                steps = sorted(dabs[max(0, j - 1 - ABRUPT_BEATS) : j - 1].tolist())
                want = steps[len(steps) // 2] if steps else 0
                assert g == want == _rhythm_step(j, xs, 0), (n, unit, j)
                checked += 1
    assert checked > 500


def _dipole_cases(rng: np.random.Generator) -> list[np.ndarray]:
    """Steady rhythms in 5 ms steps with a premature dip and its pause: shortenings at and
    around the 30 ms floor, rhythms resuming exactly at half the shortening, and dips and
    peaks exactly at 4 x the median bend before them."""
    out = []
    for _ in range(600):
        n = int(rng.integers(6, 40))
        y = 800_000 + np.cumsum(rng.integers(-1, 2, n)) * 5_000
        j = int(rng.integers(3, n - 2))
        short = int(rng.choice([25, 30, 35, 40, 60])) * 1_000
        y[j] = y[j - 1] - short
        y[j + 1] = y[j - 1] + int(rng.integers(-2, 12)) * 5_000
        back = short // 2 + int(rng.integers(-1, 2)) * 5_000  # resumes at half the shortening
        y[j + 2] = y[j - 1] + int(rng.choice([-1, 1])) * back
        ys = y.tolist()
        bends = sorted(
            abs(ys[i - 1] - 2 * ys[i] + ys[i + 1]) for i in range(max(1, j - ABRUPT_BEATS), j - 1)
        )
        if bends and rng.random() < 0.6:
            t = 4 * bends[len(bends) // 2]
            if rng.random() < 0.5:  # the dip exactly at 4 x the median bend before it
                y[j + 1] = t + 2 * y[j] - y[j - 1]
            else:  # the peak after it exactly there
                y[j + 2] = -t - y[j] + 2 * y[j + 1]
        out.append(y.astype(np.int64))
    return out


def test_dipoles_equal_dipole_on_every_beat_with_ties_at_each_edge() -> None:
    rng = np.random.default_rng(17)
    edges = {"floor": 0, "resume": 0, "dip": 0, "peak": 0}
    found = 0
    for y in _dipole_cases(rng):
        n = len(y)
        jj = np.arange(1, n - 2)
        ys = y.tolist()
        want = [_dipole(j, ys, max(1, j - ABRUPT_BEATS)) for j in jj.tolist()]
        assert _dipoles(jj, y).tolist() == want, ys
        found += sum(want)
        for j in range(3, n - 2):
            short = ys[j - 1] - ys[j]
            edges["floor"] += short == FLOOR_US
            edges["resume"] += 2 * abs(ys[j + 2] - ys[j - 1]) == short
            b = [abs(ys[i - 1] - 2 * ys[i] + ys[i + 1]) for i in range(max(1, j - 15), j - 1)]
            if b:
                t = 4 * sorted(b)[len(b) // 2]
                edges["dip"] += ys[j - 1] - 2 * ys[j] + ys[j + 1] == t
                edges["peak"] += ys[j] - 2 * ys[j + 1] + ys[j + 2] == -t
    assert found > 50
    assert min(edges.values()) > 10, edges


def _split_series(rng: np.random.Generator, n: int) -> np.ndarray:
    """A rhythm in 1 ms steps with long and short beats and extra beats that split one
    interval unevenly (the second part shorter or longer), in whole ms."""
    x = _steady(rng, n, 1_000, 20)
    for a in rng.choice(np.arange(2, n - 4), size=max(1, n // 8), replace=False).tolist():
        u = rng.random()
        if u < 0.6:  # an extra beat: the interval split, unevenly
            part = int(x[a] * rng.uniform(0.2, 0.8)) // 1_000 * 1_000
            x[a], x[a + 1] = part, x[a] - part
        elif u < 0.8:  # a missed beat
            x[a] *= 2
        else:
            x[a] = x[a] * int(rng.integers(5, 16)) // 10 // 1_000 * 1_000
    return x.astype(np.int64)


def test_ls_classes_equal_ls_class_on_uneven_splits_with_thresholds_at_each_edge() -> None:
    """Long/short per beat and vectorised on extra beats split unevenly (the exception for a
    short beat followed by a shorter one, unless the two add up to the median), with Th1 and
    Th2 set exactly at the values the criteria compare: |dRR| of j, j+1, j+2 (S21, S22 = +-1),
    |RR(j) + RR(j+1) - medRR| and |RR(j)/2 - medRR| (extra, missed, the exception), |mRR| / 3,
    where those are thresholds the detector can have (30 ms or more)."""
    rng = np.random.default_rng(29)
    seen: set[int] = set()
    ties = 0
    for _ in range(200):
        n = int(rng.integers(20, 60))
        x = _split_series(rng, n)
        d, med, mabs = long_short_inputs(x)
        j = np.arange(1, n - 2)
        t1 = np.empty(len(j))
        t2 = np.empty(len(j))
        for i, jj in enumerate(j.tolist()):
            c1 = [abs(int(d[k])) for k in (jj, jj + 1, jj + 2) if abs(d[k]) >= FLOOR_US]
            c2 = [abs(x[jj] + x[jj + 1] - med[jj]), abs(x[jj] / 2 - med[jj])]
            if mabs[jj] % 3 == 0:
                c2.append(mabs[jj] / 3)
            c2 = [float(v) for v in c2 if v >= FLOOR_US]  # thresholds are never lower
            t1[i] = rng.choice(c1) if c1 and rng.random() < 0.7 else 45_000.0
            t2[i] = rng.choice(c2) if c2 and rng.random() < 0.7 else 45_000.0
        got = _ls_classes(j, x, d, med, mabs, t1, t2)
        xs, ds, ms = x.tolist(), d.tolist(), med.tolist()
        want = [
            _ls_class(jj, xs, ds, ms, float(mabs[jj]), float(a), float(b))
            for jj, a, b in zip(j.tolist(), t1.tolist(), t2.tolist(), strict=True)
        ]
        assert got.tolist() == want, xs
        seen |= set(want)
        ties += int((np.abs(d[j]) == t1).sum())
    assert seen == {NORMAL, MISSED, EXTRA, LONGSHORT}
    assert ties > 500


def _zigzag_then(tail: list[int]) -> list[int]:
    """A lively rhythm whose every bend (second difference) is 30 ms, so a dip or a peak
    beyond 4 x its median bend is one beyond 120 ms; then `tail` (ms from the last beat)."""
    head = [800_000 + (15_000 if k % 2 else 0) for k in range(19)]  # ends on 800 ms
    return head + [800_000 + v * 1_000 for v in tail]


def test_a_dip_or_a_peak_exactly_at_4_median_bends_is_no_dipole() -> None:
    """35 ms early (beyond the floor), back within half of it after the pause: a dipole only
    where the dip and the peak both bend beyond 4 x the median bend, not at it."""
    j = 19
    cases = {
        (-35, 50, -15): False,  # the dip bends exactly 120 ms (the peak -150 ms)
        (-35, 51, -15): True,
        (-40, 45, 10): False,  # the peak bends exactly -120 ms (the dip 125 ms)
        (-40, 45, 9): True,
    }
    for tail, want in cases.items():
        y = _zigzag_then([*tail, 0])
        assert _dipole(j, y, j - ABRUPT_BEATS) is want, tail
        assert _dipoles(np.array([j]), np.asarray(y, dtype=np.int64)).tolist() == [want], tail


def _veto_both(y: list[int], j: int) -> bool:
    """The breathing veto of beat j per beat and vectorised (which must agree)."""
    got = _smooth_rows(np.array([j]), np.asarray(y, dtype=np.int64)).tolist()
    assert got == [_smooth(j, y, 0)], (y, j)
    return bool(got[0])


def test_a_late_premature_beat_needs_a_longer_next_beat_and_more_than_the_edge() -> None:
    """The veto's late-premature rule (`_course_fails`): an abrupt shortening within 13 % of
    its course is vetoed unless it lies below the course by more than 4 x the median step
    (8 ms here, so r6 = 6 x the deviation beyond -192 ms) and the next beat is longer."""
    # 100 ms shorter, r6 = -305 ms, beat j+1 on its course and exactly as long as beat j
    y, j = abrupt(HISTORY, 100_000, [0, 0, 0])
    y[j + 1 :] = [y[j], y[j - 1] - 100_000, y[j - 1]]
    assert _veto_both(y, j)  # no longer beat after it: no pause begins
    y[j + 1] += 1_000
    assert not _veto_both(y, j)
    # 40 ms shorter, the next beat 1 ms longer, beat j exactly 32 ms below its course
    y, j = abrupt(HISTORY, 40_000, [0, 0, 0])
    y[j + 1] = y[j] + 1_000
    y[j + 2] = -y[j - 2] + 4 * y[j - 1] + 4 * y[j + 1] - (6 * y[j] + 6 * ABRUPT_RATIO * 8_000)
    y[j + 3] = y[j - 1]
    assert _veto_both(y, j)
    y[j + 2] -= 1  # 1/6 µs further below
    assert not _veto_both(y, j)


def _pause_series(rng: np.random.Generator, n: int) -> np.ndarray:
    """A steady rhythm in 1 ms steps with premature beats 20-120 ms early and pauses of 40-160 %
    of the shortening, some beats 1-3 of the segment, some with the rhythm not resuming, some
    with a pause exactly as long as the interval before and another premature beat after."""
    y = _steady(rng, n, 1_000, 3)
    for a in rng.choice(np.arange(1, n - 3), size=max(1, n // 12), replace=False).tolist():
        early = int(rng.integers(4, 25)) * 5_000
        y[a] = y[a - 1] - early
        y[a + 1] = y[a - 1] + early * int(rng.integers(8, 33)) // 20
        u = rng.random()
        if u < 0.3:
            y[a + 2] += int(rng.integers(-10, 11)) * 5_000
        elif u < 0.5:  # a pause exactly as long as the interval before, another early beat
            y[a + 1] = y[a - 1]
            y[a + 2] = y[a - 1] - int(rng.integers(4, 25)) * 5_000
    return y.astype(np.int64)


def _check_pauses(
    x: np.ndarray, t1: np.ndarray, main: np.ndarray, ext: np.ndarray, code: np.ndarray
) -> list[tuple[int, str]]:
    """`_pauses` on series x against the per-beat pause rules, row by row: the rows it marks
    (each with the rule that found it: "t1" or "rhythm")."""
    nj = len(t1)
    d = np.zeros(len(x), dtype=np.int64)
    d[1:] = np.diff(x)
    pause = (d[:nj] < 0) & (d[1 : nj + 1] > 0)
    local = (d[:nj] < -FLOOR_US) & (d[1 : nj + 1] > FLOOR_US)
    nxt = np.zeros(nj, dtype=np.int8)
    code0, ext0, nxt0 = code.copy(), ext.copy(), nxt.copy()
    _pauses(code, main, ext, nxt, pause, local, d, t1, x)
    xs, ds = x.tolist(), d.tolist()
    found = []
    for r in range(nj):
        on_t1 = bool(pause[r]) and _before_pause(r, xs, ds, float(t1[r]))
        on_rhythm = bool(local[r]) and _premature_for_rhythm(r, xs, ds, 0)
        hit = (
            code0[r] == NORMAL
            and not (main[r] and ext0[r])
            and (on_t1 or on_rhythm)
            and not _smooth(r, xs, 0)
        )
        if hit:
            nx = NORMAL if _smooth(r + 1, xs, 0) else ECTOPIC
            assert (code[r], ext[r], nxt[r]) == (ECTOPIC, True, nx), (r, xs)
            found.append((r, "t1" if on_t1 else "rhythm"))
        else:
            assert (code[r], ext[r], nxt[r]) == (code0[r], ext0[r], nxt0[r]), (r, xs)
    return found


def test_pauses_give_the_per_beat_detectors_pause_verdicts() -> None:
    """`_pauses` on rows whose own verdict is normal: the per-beat detector's pause rules
    (`_before_pause` against Th1, else `_premature_for_rhythm` against the rhythm's step, and
    neither on the smooth course), the pause judged with its premature beat."""
    rng = np.random.default_rng(23)
    hits = {"t1": 0, "rhythm": 0, "smooth next": 0, "ectopic next": 0, "pause = before": 0}
    for _ in range(300):
        n = int(rng.integers(12, 80))
        x = _pause_series(rng, n)
        nj = n - 6
        t1 = rng.choice([30_000.0, 45_000.0, 70_000.0, 120_000.0], nj)
        main = rng.random(nj) < 0.2
        ext = main & (rng.random(nj) < 0.5)
        code = np.where(main & (rng.random(nj) < 0.3), 4, NORMAL).astype(np.int8)
        for r, rule in _check_pauses(x, t1, main, ext, code):
            hits[rule] += 1
            hits["smooth next" if _smooth(r + 1, x.tolist(), 0) else "ectopic next"] += 1
            hits["pause = before"] += int(x[r + 1] == x[r - 1])
    assert min(hits.values()) > 10, hits


def _flat_then(tail: list[int], t1: float, before: int = 0) -> list[tuple[int, str]]:
    """A flat 800 ms rhythm (its step 0: every shortening is abrupt, the rhythm's threshold
    the 30 ms floor), beat 19 `before` and beat 20 on `tail` (µs from 800 ms), judged with
    Th1 = `t1`: which of its beats `_pauses` marks (only beat 20 may be)."""
    x = np.full(40, 800_000, dtype=np.int64)
    x[19] += before
    x[20 : 20 + len(tail)] += np.asarray(tail, dtype=np.int64)
    nj = len(x) - 6
    none = np.zeros(nj, dtype=np.bool_)
    found = _check_pauses(x, np.full(nj, t1), none, none.copy(), np.zeros(nj, dtype=np.int8))
    assert {r for r, _ in found} <= {20}
    return found


def test_the_pause_rules_at_their_ectopic_boundary_and_when_the_premature_step_decides() -> None:
    """The paper's ectopic pattern around a pause, S12 = max(dRR(j), dRR(j+2)) / Th below
    -0.13 S11 - 0.17 (S11 = dRR(j+1) / Th): not at the boundary itself, against Th1 or the
    rhythm's own threshold; the rhythm's rule with the rhythm resuming exactly at half the
    shortening on either side; and a premature step too small for the pattern keeps the beat
    normal however short the beat after the pause is."""
    # against Th1 = 30 ms: dRR 31 ms into the pause, then -9.13 ms, exactly at the boundary
    thr = -C1 * (31_000 / 30_000) - C2
    assert thr == -9_130 / 30_000
    assert _flat_then([-20_000, 11_000, 1_870], 30_000.0) == []
    assert _flat_then([-20_000, 11_000, 1_869], 30_000.0) == [(20, "t1")]
    # against the rhythm (Th1 too high for the pause): dRR(j) exactly at the boundary
    thr = -C1 * ((228_495 + 40_005) / FLOOR_US) - C2
    assert thr == -40_005 / FLOOR_US
    assert _flat_then([-40_005, 228_495, 0], 400_000.0) == []
    assert _flat_then([-40_006, 228_495, 0], 400_000.0) == [(20, "rhythm")]
    # the rhythm's own rule wants the rhythm back within half the shortening on both sides
    assert _flat_then([-60_000, 200_000, 30_000], 400_000.0) == [(20, "rhythm")]
    assert _flat_then([-60_000, 200_000, 30_001], 400_000.0) == []
    assert _flat_then([-30_000, 230_000, 30_000], 400_000.0, before=30_000) == [(20, "rhythm")]
    assert _flat_then([-29_999, 230_000, 30_000], 400_000.0, before=30_001) == []
    # a lively rhythm (steps of 10 ms: its threshold 40 ms): a shortening of exactly 40 ms
    # is not premature for it
    zigzag = [800_000 + (0 if k % 2 else 10_000) for k in range(40)]  # beat 19: 800 ms
    for drop, want in ((40_000, []), (40_001, [(20, "rhythm")])):
        x = np.asarray(zigzag, dtype=np.int64)
        x[20:23] = [800_000 - drop, 900_000, 800_000]
        nj = len(x) - 6
        none = np.zeros(nj, dtype=np.bool_)
        t1 = np.full(nj, 400_000.0)
        assert _check_pauses(x, t1, none, none.copy(), np.zeros(nj, dtype=np.int8)) == want
    # a premature step too small for the pattern, the beat after the pause short again
    assert _flat_then([-5_000, 200_000, 0], 30_000.0) == []
    assert _flat_then([-40_000, 300_000, 0], 400_000.0) == []
