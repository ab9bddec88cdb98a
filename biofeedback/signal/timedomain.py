"""Streaming time-domain HRV: beats of one monitoring segment and windows with exact sums.

RR values are held as whole microseconds, so the running sums (sum x, sum x^2, sum of squared
successive differences, NN50 count) are exact integers: they cannot drift, a corrected beat is
swapped in O(1), and the vectorised offline path reproduces them bit for bit.
"""

from __future__ import annotations

import math
from array import array

from biofeedback.signal.measures import TimeDomain

NN50_US = 50_000
CONTACT_CODES: tuple[bool | None, ...] = (None, True, False)
_sqrt = math.sqrt
_COMPACT_SLACK = 512


class SegmentStore:
    """Beats of the current segment (no gap inside), newest last, addressed by segment index.

    Old beats nobody needs any more are dropped in blocks so memory stays bounded.
    """

    __slots__ = ("base", "contact", "corrected", "raw", "t", "x")

    def __init__(self) -> None:
        self.base = 0  # segment index of element 0
        self.t: array[float] = array("d")
        self.x: array[int] = array("q")  # current value in µs (corrected when flagged)
        self.raw: array[int] = array("q")  # as received, in µs
        self.corrected = bytearray()
        self.contact = bytearray()  # CONTACT_CODES index of the flag the beat came with

    def clear(self) -> None:
        self.base = 0
        del self.t[:], self.x[:], self.raw[:], self.corrected[:], self.contact[:]

    def append(
        self, t: float, x_us: int, contact: bool | None = None, raw_us: int | None = None
    ) -> int:
        """Add a beat entering the metrics as `x_us` (received as `raw_us`, default the same:
        a different value is a provisional correction); returns its segment index."""
        self.t.append(t)
        self.x.append(x_us)
        if raw_us is None or raw_us == x_us:
            self.raw.append(x_us)
            self.corrected.append(0)
        else:
            self.raw.append(raw_us)
            self.corrected.append(1)
        self.contact.append(0 if contact is None else (1 if contact else 2))
        return self.base + len(self.t) - 1

    def drop_before(self, k: int) -> None:
        """Forget beats before segment index `k` (in blocks, amortised O(1))."""
        n = k - self.base
        if n > _COMPACT_SLACK:
            del self.t[:n], self.x[:n], self.raw[:n], self.corrected[:n], self.contact[:n]
            self.base = k


def time_domain(window_s: float, n: int, s1: int, s2: int, d2: int, nn50: int) -> TimeDomain:
    """Metrics from exact window sums (µs): the streaming windows' only arithmetic; the offline
    path repeats it vectorised (offline._windows), bit for bit.

    Matches neurokit2.hrv_time: SDNN with ddof=1, RMSSD over successive differences,
    pNN50 = NN50 / N * 100 with N intervals in the window.
    """
    mean_ms = s1 / n / 1000.0
    if n < 2:
        return TimeDomain(window_s, n, mean_ms, 60000.0 / mean_ms, None, None, None)
    var_us2 = float(n * s2 - s1 * s1) / float(n * (n - 1))
    sdnn = _sqrt(var_us2) / 1000.0
    rmssd = _sqrt(float(d2) / float(n - 1)) / 1000.0
    pnn50 = nn50 / n * 100.0
    return TimeDomain(window_s, n, mean_ms, 60000.0 / mean_ms, rmssd, sdnn, pnn50)


class TimeWindow:
    """The beats of a store within `window_s` seconds of the newest one, with exact sums."""

    __slots__ = ("d2", "lo", "n", "ncorr", "nn50", "s1", "s2", "store", "window_s")

    def __init__(self, store: SegmentStore, window_s: float) -> None:
        self.store = store
        self.window_s = window_s
        self.reset()

    def reset(self) -> None:
        """Empty the window (a new segment starts)."""
        self.lo = 0
        self.n = 0
        self.s1 = self.s2 = self.d2 = self.nn50 = self.ncorr = 0

    def _x(self, k: int) -> int:
        return self.store.x[k - self.store.base]

    def add_newest(self) -> None:
        """Take in the store's newest beat and drop beats that fell out of the window."""
        st = self.store
        xs, ts, base = st.x, st.t, st.base
        i = len(xs) - 1  # position of the newest beat in the store's arrays
        x = xs[i]
        if self.n:
            d = x - xs[i - 1]
            self.d2 += d * d
            if d > NN50_US or d < -NN50_US:
                self.nn50 += 1
        self.s1 += x
        self.s2 += x * x
        self.ncorr += st.corrected[i]
        n = self.n + 1
        horizon = ts[i] - self.window_s
        lo = self.lo - base
        while n > 1 and ts[lo] <= horizon:
            x0 = xs[lo]
            d = xs[lo + 1] - x0
            self.s1 -= x0
            self.s2 -= x0 * x0
            self.d2 -= d * d
            if d > NN50_US or d < -NN50_US:
                self.nn50 -= 1
            self.ncorr -= st.corrected[lo]
            lo += 1
            n -= 1
        self.lo = lo + base
        self.n = n

    def replace(self, k: int, old: int, new: int, was_corrected: int, is_corrected: int) -> None:
        """Beat `k` changed value from `old` to `new` (the store already holds `new`)."""
        if not self.lo <= k < self.lo + self.n:
            return
        self.s1 += new - old
        self.s2 += new * new - old * old
        self.ncorr += is_corrected - was_corrected
        for j in (k - 1, k + 1):
            if self.lo <= j < self.lo + self.n:
                other = self._x(j)
                d_old, d_new = old - other, new - other
                self.d2 += d_new * d_new - d_old * d_old
                self.nn50 += (abs(d_new) > NN50_US) - (abs(d_old) > NN50_US)

    def metrics(self) -> TimeDomain | None:
        """Metrics of the window, None when it is empty (`time_domain` on the window's sums)."""
        if self.n == 0:
            return None
        return time_domain(self.window_s, self.n, self.s1, self.s2, self.d2, self.nn50)

    def values_ms(self) -> list[float]:
        """The window's current RR values in ms (for checks against batch tools)."""
        b = self.store.base
        return [v / 1000.0 for v in self.store.x[self.lo - b : self.lo + self.n - b]]
