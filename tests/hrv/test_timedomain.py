"""TimeWindow's exact running sums, beat by beat and under replacement, against neurokit2 and a
window rebuilt from scratch; NN50 exactly at its 50 ms edge.

The pipeline replaces a beat in a window when the artifact detector judges it (a correction, or
a screened beat restored to raw). Where in the window that beat sits depends on the detector's
lag and the window length, so the pipeline tests reach the window's edges only by chance; these
tests put the replaced beat at each position on purpose.
"""

from __future__ import annotations

import pytest

from biofeedback.signal import TimeDomain
from biofeedback.signal.timedomain import SegmentStore, TimeWindow
from tests.hrv.helpers import nk_time, rel

WINDOW_S = 5.5  # beats 1 s apart: the newest and the 5 before it (t > t_newest - 5.5)
# successive differences of exactly +-50 ms, which NN50 does not count (it counts > 50 ms)
EDGE_MS = [800.0, 850.0, 800.0, 850.0, 800.0, 850.0, 800.0, 850.0, 800.0, 850.0]


def us(ms: float) -> int:
    return round(ms * 1000)


def filled(values_ms: list[float], window_s: float = WINDOW_S) -> TimeWindow:
    """A window fed `values_ms` one beat per second (t = 100, 101, ...)."""
    store = SegmentStore()
    w = TimeWindow(store, window_s)
    for k, v in enumerate(values_ms):
        store.append(100.0 + k, us(v))
        w.add_newest()
    return w


def window_values(w: TimeWindow) -> list[float]:
    """The values of the beats with t > t_newest - window_s, read from the store by time."""
    st = w.store
    horizon = st.t[-1] - w.window_s
    return [x / 1000.0 for t, x in zip(st.t, st.x, strict=True) if t > horizon]


def check(w: TimeWindow) -> None:
    """`w`'s metrics equal a window rebuilt from scratch (exactly) and neurokit2 (1e-9)."""
    values = window_values(w)
    fresh = filled(values, w.window_s)
    assert (w.n, w.s1, w.s2, w.d2, w.nn50) == (fresh.n, fresh.s1, fresh.s2, fresh.d2, fresh.nn50)
    td = w.metrics()
    assert td == fresh.metrics()
    assert td is not None
    assert (td.window_s, td.n) == (w.window_s, len(values))
    if len(values) < 2:
        return
    ref = nk_time(values)
    assert td.rmssd_ms is not None
    assert td.sdnn_ms is not None
    assert td.pnn50_pct is not None
    assert rel(td.mean_nn_ms, ref["MeanNN"]) <= 1e-9
    assert rel(td.rmssd_ms, ref["RMSSD"]) <= 1e-9
    assert rel(td.sdnn_ms, ref["SDNN"]) <= 1e-9
    assert rel(td.pnn50_pct, ref["pNN50"]) <= 1e-9


def replace(w: TimeWindow, k: int, new_ms: float, corrected: int = 1) -> None:
    """What the pipeline does when the detector judges beat `k`: store first, then windows."""
    st = w.store
    i = k - st.base
    old, was = st.x[i], st.corrected[i]
    st.x[i] = us(new_ms)
    st.corrected[i] = corrected
    w.replace(k, old, us(new_ms), was, corrected)


def test_empty_and_single_beat_windows() -> None:
    """No beat: no metrics. One beat: its mean and heart rate, no variability yet."""
    w = TimeWindow(SegmentStore(), WINDOW_S)
    assert w.metrics() is None
    assert filled([800.0]).metrics() == TimeDomain(WINDOW_S, 1, 800.0, 75.0, None, None, None)
    # a pause longer than the window leaves only the newest beat in it
    assert filled([800.0, 750.0], window_s=0.5).metrics() == TimeDomain(
        0.5, 1, 750.0, 80.0, None, None, None
    )


def test_sliding_window_counts_nn50_strictly_above_50_ms() -> None:
    """Hand count: of the differences +50, -50.001, +50.001, -50, +49.999, -49.999, +50.002,
    -50 only the three beyond 50 ms count. Checked at every step as beats enter and leave."""
    values = [800.0, 850.0, 799.999, 850.0, 800.0, 849.999, 800.0, 850.002, 800.002]
    store = SegmentStore()
    w = TimeWindow(store, 100.0)
    for k, v in enumerate(values):
        store.append(100.0 + k, us(v))
        w.add_newest()
    assert w.nn50 == 3
    slide = TimeWindow(SegmentStore(), 2.5)  # three beats at a time: every pair leaves again
    for k, v in enumerate(values):
        slide.store.append(100.0 + k, us(v))
        slide.add_newest()
        check(slide)
    assert slide.n == 3


@pytest.mark.parametrize("k", [4, 5, 6, 7, 8, 9])
@pytest.mark.parametrize("new_ms", [None, 749.999, 900.001, 820.0])
def test_replacing_a_beat_anywhere_in_the_window_keeps_the_sums_exact(
    k: int, new_ms: float | None
) -> None:
    """Beats 4..9 are in the window (4 is its oldest, 9 its newest). `None` moves the beat by
    -50 ms where its neighbours are 50 ms above it (+50 where they are below), so both of its
    differences go from exactly 50 ms to exactly 50 ms the other way: NN50 stays 0."""
    w = filled(EDGE_MS)
    assert (w.lo, w.n, w.nn50) == (4, 6, 0)
    value = new_ms
    if value is None:
        value = EDGE_MS[k] + (100.0 if EDGE_MS[k] == 800.0 else -100.0)
    replace(w, k, value)
    check(w)
    assert w.ncorr == 1
    replace(w, k, EDGE_MS[k], corrected=0)  # judged again: back to raw
    check(w)
    assert w.ncorr == 0
    assert w.nn50 == 0


def test_replacing_a_beat_that_left_the_window_changes_nothing() -> None:
    w = filled(EDGE_MS)
    before = (w.n, w.s1, w.s2, w.d2, w.nn50, w.ncorr)
    replace(w, 3, 700.0)  # beat 3 is 6 s old: outside, and so is its difference with beat 4
    assert (w.n, w.s1, w.s2, w.d2, w.nn50, w.ncorr) == before
    check(w)


def test_a_beat_the_window_has_not_taken_in_yet_is_left_to_add_newest() -> None:
    """Several windows share one store and take in its newest beat one after the other: until a
    window has, a replacement of that beat is not its business, and it later takes the beat in
    with whatever value the store then holds."""
    w = filled(EDGE_MS)
    before = (w.n, w.s1, w.s2, w.d2, w.nn50, w.ncorr)
    w.store.append(110.0, us(900.0))
    k = w.lo + w.n  # the store's newest beat, not yet in the window
    replace(w, k, 870.0)
    assert (w.n, w.s1, w.s2, w.d2, w.nn50, w.ncorr) == before
    assert window_values(w)[-1] == 870.0
    w.add_newest()
    check(w)
    assert w.ncorr == 1


def test_replacing_beats_after_the_store_dropped_old_ones() -> None:
    """After compaction the store's index base moves; window positions stay segment indices."""
    values = [800.0 + 60.0 * (k % 3) for k in range(1200)]
    store = SegmentStore()
    w = TimeWindow(store, WINDOW_S)
    for k, v in enumerate(values):
        store.append(100.0 + k, us(v))
        w.add_newest()
        if k % 256 == 0:
            store.drop_before(w.lo)
    assert store.base > 0
    assert len(store.t) < 1200
    check(w)
    for k in range(w.lo, w.lo + w.n):
        replace(w, k, 1000.0 + k % 7)
        check(w)
    assert w.ncorr == w.n
    held = window_values(w)
    assert w.values_ms() == held
    store.append(2000.0, us(700.0))  # newer than the window's newest: not in its values yet
    assert w.values_ms() == held
    w.add_newest()
    assert w.values_ms() == [700.0]  # 700 s after the others: alone in the window


def test_store_keeps_what_the_beat_came_with() -> None:
    store = SegmentStore()
    assert store.append(1.0, 800_000) == 0
    assert store.append(2.0, 810_000, True, 900_000) == 1  # screened: enters as 810 ms
    assert store.append(3.0, 820_000, False, 820_000) == 2
    assert list(store.x) == [800_000, 810_000, 820_000]
    assert list(store.raw) == [800_000, 900_000, 820_000]
    assert list(store.corrected) == [0, 1, 0]
    assert list(store.contact) == [0, 1, 2]  # CONTACT_CODES: None, True, False
    store.clear()
    assert (store.base, len(store.t), len(store.x), len(store.contact)) == (0, 0, 0, 0)
    assert store.append(4.0, 800_000) == 0
