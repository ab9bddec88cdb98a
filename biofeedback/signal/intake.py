"""Plausibility checks on what a strap sends, before any beat reaches the metrics.

Every check returns a reason instead of raising: a bad beat is reported and dropped, never fatal.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np
import numpy.typing as npt

from biofeedback.signal.measures import SignalConfig

US_PER_MS = 1000
MIN_HR_BPM = 20.0
MAX_HR_BPM = 250.0


def rr_reason(t: float, rr_ms: float, last_t: float | None, config: SignalConfig) -> str | None:
    """Why an RR interval ending at `t` is implausible, or None when it may be used."""
    if not isinstance(t, (int, float)) or not math.isfinite(t):
        return "beat time is not a finite number"
    if not isinstance(rr_ms, (int, float)) or math.isnan(rr_ms):
        return "RR interval is not a number"
    if rr_ms <= 0:
        return f"RR interval {rr_ms:g} ms is not positive"
    if rr_ms < config.min_rr_ms:
        return f"RR interval {rr_ms:g} ms is below {config.min_rr_ms:g} ms"
    if rr_ms > config.max_rr_ms:
        return f"RR interval {rr_ms:g} ms is above {config.max_rr_ms:g} ms"
    if last_t is not None and t <= last_t:
        return f"beat time {t:.3f} s is not after the previous beat at {last_t:.3f} s"
    return None


def hr_reason(t: float, hr_bpm: float, last_t: float | None) -> str | None:
    """Why a heart-rate-only sample is implausible, or None when it may be used."""
    if not isinstance(t, (int, float)) or not math.isfinite(t):
        return "sample time is not a finite number"
    if not isinstance(hr_bpm, (int, float)) or not math.isfinite(hr_bpm):
        return "heart rate is not a finite number"
    if not MIN_HR_BPM <= hr_bpm <= MAX_HR_BPM:
        return f"heart rate {hr_bpm:g} bpm is outside {MIN_HR_BPM:g}..{MAX_HR_BPM:g} bpm"
    if last_t is not None and t <= last_t:
        return f"sample time {t:.3f} s is not after the previous sample at {last_t:.3f} s"
    return None


def rr_to_us(rr_ms: float) -> int:
    """RR in whole microseconds: metrics run on exact integer sums of these."""
    return round(rr_ms * US_PER_MS)


def accept_offline(
    t: npt.NDArray[np.float64], rr_ms: npt.NDArray[np.float64], config: SignalConfig
) -> npt.NDArray[np.bool_]:
    """Vectorised `rr_reason(...) is None` over a whole recording, with the same ordering rule.

    A beat is accepted when its values are plausible and its time is after every earlier
    accepted beat; accepted times only grow, so that is a running maximum over plausible beats.
    """
    with np.errstate(invalid="ignore"):
        valid = (
            np.isfinite(t)
            & ~np.isnan(rr_ms)
            & (rr_ms > 0)
            & (rr_ms >= config.min_rr_ms)
            & (rr_ms <= config.max_rr_ms)
        )
    running = np.maximum.accumulate(np.where(valid, t, -np.inf))
    before = np.concatenate(([-np.inf], running[:-1]))
    return np.asarray(valid & (t > before), dtype=np.bool_)


SCREEN_SCALE = 4.0  # a beat must also stray this many local noise scales from its course
SCREEN_MAX_RUN = 2  # after this many screened beats in a row the next one is let through


def _course(a: int, xa: int, b: int, xb: int) -> int:
    """The beat after `a` on the course of the last two unscreened beats b < a: one step of their
    slope from `xa` (not extended over screened beats in between), at most 25 % of `xa`."""
    step = round((xa - xb) / (a - b))
    lim = xa // 4
    return xa + (lim if step > lim else (-lim if step < -lim else step))


class ProvisionalScreen:
    """The intake screen of one segment: breathing-aware, judged on the shape of the series.

    A new beat is compared with the course of the series: anywhere between the last beat let
    through and one step of the slope of the last two (the nearest point counts). A breathing
    swing, however large, is smooth: each beat lies close to that course, also where it turns.
    A premature beat falls far below it, its compensatory pause far above it (the course still
    runs through the beats before the pair), a missed beat far above.

    So a beat is screened only when it strays from the course by more than `threshold` of the
    course's value and by more than `SCREEN_SCALE` x the median |second difference| over the
    2 x `beats` + 1 raw beats before it (a person with large beat-to-beat variability is not
    screened for it; ectopy as the rhythm raises it too, so the screen stands aside there and
    leaves the beats to the detector). Right after a screened premature beat, a beat straying
    the other way (the dRR sign flip of its compensatory pause) needs only half of both (also
    the pause of each pair in a run: after an odd number of screened beats). A screened beat
    enters the metrics at the course's nearest value; after `SCREEN_MAX_RUN` screened beats in
    a row the next is let through unless it flips direction again (runs of ectopic pairs
    alternate), so a genuine change of rate cannot lock the screen. The detector's judgement,
    a few beats later, is final either way.
    """

    __slots__ = ("_a", "_b", "_curv", "_k", "_last", "_prev", "_run", "beats", "threshold")

    def __init__(self, threshold: float, beats: int) -> None:
        self.threshold = threshold
        self.beats = beats
        self.reset()

    def reset(self) -> None:
        """A new segment starts."""
        self._k = 0
        self._prev: list[int] = []  # the last two raw values
        self._curv: deque[int] = deque(maxlen=2 * self.beats + 1)  # |second differences|, raw
        self._a: tuple[int, int] | None = None  # newest beat let through (index, value)
        self._b: tuple[int, int] | None = None  # the one before it
        self._run = 0
        self._last = 0  # deviation of the newest screened beat from its course

    def push(self, x: int) -> int:
        """The value beat `x` (µs) enters the metrics with: `x` itself, or the course's value."""
        k = self._k
        self._k = k + 1
        prev = self._prev
        curv = self._curv
        v = x
        if self.threshold and len(curv) == curv.maxlen and self._b is not None:
            a, b = self._a, self._b
            assert a is not None
            xa = a[1]
            c = _course(a[0], xa, b[0], b[1])
            # the course runs between holding the last value and extending its slope
            p = xa if x < xa < c or x > xa > c else (c if x < c < xa or x > c > xa else x)
            dv = x - p
            dev = abs(dv)
            lim = self.threshold * p
            flip = self._run and (dv > 0) != (self._last > 0)
            times = SCREEN_SCALE
            if flip and self._run % 2:
                # the compensatory pause of a premature beat (or of each pair in a run)
                lim, times = lim / 2, times / 2
            if (flip or self._run < SCREEN_MAX_RUN) and dev > lim:
                srt = sorted(curv)
                h = len(srt) // 2
                scale = srt[h] if len(srt) % 2 else (srt[h - 1] + srt[h]) / 2
                if dev > times * scale:
                    v = p
                    self._last = dv
        if len(prev) == 2:
            curv.append(abs(x - 2 * prev[1] + prev[0]))
            prev[0] = prev[1]
            prev[1] = x
        else:
            prev.append(x)
        if v == x:
            self._b, self._a = self._a, (k, x)
            self._run = 0
        else:
            self._run += 1
        return v


def screen_offline(
    raw: npt.NDArray[np.int64], threshold: float, beats: int
) -> npt.NDArray[np.int64]:
    """`ProvisionalScreen.push` over one whole segment: the value each beat enters with.

    Vectorised while the last two beats were let through (the course is then 2 x[k-1] - x[k-2]);
    the few beats after a screened one replay the per-beat rule."""
    n = len(raw)
    out = raw.copy()
    span = 2 * beats + 1
    first = span + 2  # the median needs `span` second differences
    if not threshold or n <= first:
        return out
    from numpy.lib.stride_tricks import sliding_window_view

    c = np.abs(raw[2:] - 2 * raw[1:-1] + raw[:-2])  # c[i] = |2nd difference| ending at i + 2
    med = np.median(sliding_window_view(c, span), axis=1)  # med[j]: c[j .. j+span-1]
    k = np.arange(first, n)
    scale = med[k - 2 - span]
    cap = raw[k - 1] // 4
    c_ = raw[k - 1] + np.clip(raw[k - 1] - raw[k - 2], -cap, cap)
    p = np.clip(raw[k], np.minimum(raw[k - 1], c_), np.maximum(raw[k - 1], c_))
    dev = np.abs(raw[k] - p)
    flag0 = (dev > threshold * p) & (dev > SCREEN_SCALE * scale)
    hits = (np.flatnonzero(flag0) + first).tolist()
    if not hits:
        return out
    xl = raw.tolist()
    sl = [0.0] * first + scale.tolist()
    pos = 0
    while pos < len(hits):
        k0 = hits[pos]
        # state before k0: k0-1 and k0-2 let through, no run
        a, xa, b, xb, run, last = k0 - 1, xl[k0 - 1], k0 - 2, xl[k0 - 2], 0, 0
        kk = k0
        while kk < n:
            x = xl[kk]
            c_ = _course(a, xa, b, xb)
            p_ = xa if x < xa < c_ or x > xa > c_ else (c_ if x < c_ < xa or x > c_ > xa else x)
            sv = x - p_
            dv = abs(sv)
            lim = threshold * p_
            flip = run and (sv > 0) != (last > 0)
            times = SCREEN_SCALE
            if flip and run % 2:
                lim, times = lim / 2, times / 2
            if (flip or run < SCREEN_MAX_RUN) and dv > lim and dv > times * sl[kk]:
                out[kk] = p_
                run += 1
                last = sv
            else:
                b, xb, a, xa, run = a, xa, kk, x, 0
            kk += 1
            if a == kk - 1 and b == kk - 2:
                break  # back to the vectorised state
        while pos < len(hits) and hits[pos] < kk:
            pos += 1
    return out
