"""Streaming R-peak detection on a single-lead ECG (Polar H10: 130 Hz, µV), pure and chunked.

The detector is neurokit2's default QRS finder (`ecg_peaks(method="neurokit")`, after the
gradient method described in docs/ecg.md), made streaming and bounded:

* g = |gradient(ECG)| (central difference), s = g smoothed by a centred 0.1 s boxcar,
  a = s averaged by a centred 0.75 s boxcar; a QRS region is where s > 1.5 a;
* regions shorter than 0.4 x the mean length of the recent regions are dropped (neurokit2
  uses the mean over the whole record; here the newest `REGION_MEMORY` regions);
* a region whose peak of s is below `MIN_STRENGTH` x the median peak of the recent accepted
  beats is dropped (added here: in the long flat pause after a premature beat the 0.75 s
  average falls so low that a P or T wave or muscle noise crosses 1.5 a);
* the R peak is the maximum of `polarity` x ECG in the region (+-2 samples), refined by a
  parabola through the three samples around it (sub-sample timing: RR resolution far below
  one 7.7 ms sample); a peak within `MIN_DELAY_S` of the previous one is dropped (neurokit2's
  `mindelay`).

Every quantity at a sample depends only on samples within a fixed distance of it, so a sample
is judged once the samples that far ahead have arrived (latency about 0.5 s) and the result is
the same however the input is chunked (tests/ecg/test_ecg_detector.py checks that with
hypothesis). Work per push is O(buffer + chunk) with a buffer of a few seconds: bounded cost per
second of ECG. Time arrives as data: one time per sample (the device maps the strap's sensor
clock onto the service clock); no clock is read here.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]

SMOOTH_S = 0.1  # neurokit2 smoothwindow
AVERAGE_S = 0.75  # neurokit2 avgwindow
GRAD_WEIGHT = 1.5  # neurokit2 gradthreshweight
MIN_LEN_WEIGHT = 0.4  # neurokit2 minlenweight
MIN_DELAY_S = 0.3  # neurokit2 mindelay
MIN_STRENGTH = 0.5  # share of the recent beats' median gradient peak a QRS must reach
REGION_MEMORY = 16  # regions in the running mean length
STRENGTH_MEMORY = 8  # accepted beats in the running median strength
SNIPPET_BEFORE_S = 0.12  # waveform kept around each R peak for the morphology stage
SNIPPET_AFTER_S = 0.20
GAP_FACTOR = 2.5  # a step between samples longer than this many sample periods is a gap


@dataclass(frozen=True, slots=True)
class EcgBeat:
    """One detected R peak.

    `t` is the peak's time (s, on the clock of the sample times given), interpolated between
    sample times at the sub-sample peak position. `rr_ms` is the interval from the previous
    beat of the same segment (None for a segment's first beat). `strength` is the peak of the
    smoothed gradient relative to the recent beats' median (1 = typical). `width_ms` is the
    QRS duration estimated where the gradient exceeds a quarter of its peak. `snippet` holds
    the ECG (µV, its median removed) from SNIPPET_BEFORE_S before to SNIPPET_AFTER_S after the
    peak sample, for the morphology stage.
    """

    t: float
    rr_ms: float | None
    amplitude_uv: float
    strength: float
    width_ms: float
    snippet: tuple[float, ...]


def _box(v: F64, n: int) -> F64:
    """Moving average of width n; element i is the mean of v[i : i + n] ("valid" part).

    A convolution, not a difference of cumulative sums: each value is then computed from the
    same samples in the same order wherever the buffer starts, so chunking never changes a bit.
    """
    return np.convolve(v, np.full(n, 1.0 / n), mode="valid")


def _odd(x: float) -> int:
    n = max(1, round(x))
    return n if n % 2 else n + 1


class EcgPeakDetector:
    """Streaming R-peak detector for one ECG lead (see the module docstring).

    Feed it with `push(times_s, samples_uv)` in chunks of any size (one strap frame, 73 samples
    on an H10, or a whole recording); each call returns the beats it could finalise. `fs` is
    the nominal sampling rate used for window lengths; sample times carry the actual timing.
    `polarity` is +1 when the R wave points up in this lead (the H10 worn as intended), -1 when
    the strap is worn upside down.
    """

    def __init__(self, fs: float = 130.0, polarity: int = 1) -> None:
        if not (isinstance(fs, (int, float)) and math.isfinite(fs) and 20.0 <= fs <= 2000.0):
            raise ValueError(f"ECG sampling rate {fs!r} Hz is implausible: expected 20-2000 Hz")
        if polarity not in (1, -1):
            raise ValueError(f"polarity must be +1 or -1, not {polarity!r}")
        self.fs = float(fs)
        self.polarity = polarity
        self._ns = _odd(SMOOTH_S * fs)
        self._na = _odd(AVERAGE_S * fs)
        # a sample's mask value needs this many samples on either side
        self._reach = 1 + self._ns // 2 + self._na // 2
        self._pad = 2
        self._before = round(SNIPPET_BEFORE_S * fs)
        self._after = round(SNIPPET_AFTER_S * fs)
        self._min_delay = MIN_DELAY_S
        self._gap_s = GAP_FACTOR / fs
        self.reset()

    def reset(self) -> None:
        """Forget everything (a gap): the next sample starts a new segment."""
        self._x: F64 = np.zeros(0)
        self._t: F64 = np.zeros(0)
        self._i0 = 0  # global index of _x[0]
        self._n = 0  # samples received in this segment
        self._scan = 0  # next global index whose mask value is to be read
        self._region_start: int | None = None
        self._lengths: deque[int] = deque(maxlen=REGION_MEMORY)
        self._strengths: deque[float] = deque(maxlen=STRENGTH_MEMORY)
        self._last_peak_t: float | None = None
        self._broken = False  # the last chunk ended on a bad sample

    def mark_gap(self) -> None:
        """Samples were lost: no beat or interval bridges the gap."""
        self.reset()

    @property
    def horizon_t(self) -> float | None:
        """The time up to which the ECG has been searched: no beat before it is still to come."""
        k = (self._region_start if self._region_start is not None else self._scan) - self._i0
        if len(self._t) == 0 or k <= 0:
            return None
        return float(self._t[min(k, len(self._t)) - 1])

    def push(self, times_s: npt.ArrayLike, samples_uv: npt.ArrayLike) -> list[EcgBeat]:
        """Add samples (their times in s, increasing; values in µV); the beats now final.

        Non-finite samples or a jump in the sample times longer than 2.5 sample periods are a
        gap: detection restarts after it. Raises ValueError when the arrays differ in length.
        """
        t = np.asarray(times_s, dtype=np.float64).ravel()
        x = np.asarray(samples_uv, dtype=np.float64).ravel()
        if t.shape != x.shape:
            raise ValueError(
                f"ECG chunk has {t.size} sample times but {x.size} samples: they must pair up"
            )
        beats: list[EcgBeat] = []
        if t.size == 0:
            return beats
        bad = ~(np.isfinite(t) & np.isfinite(x))
        new = np.zeros(t.size, dtype=bool)
        steps = np.diff(t)
        new[1:] = (steps > self._gap_s) | ~(steps > 0) | bad[:-1]
        if self._broken or (len(self._t) and not (0.0 < t[0] - self._t[-1] <= self._gap_s)):
            new[0] = True
        keep = np.flatnonzero(~bad)
        if keep.size:
            # runs of kept samples, split where a new segment starts
            starts = np.flatnonzero(np.diff(keep) > 1) + 1
            starts = np.union1d(starts, np.flatnonzero(new[keep]))
            bounds = [0, *[int(b) for b in starts if b > 0], keep.size]
            for a, b in itertools.pairwise(bounds):
                r = keep[a:b]
                if new[r[0]] or (a > 0 and r[0] != keep[a - 1] + 1):
                    self.reset()
                beats += self._push_segment(t[r], x[r])
        self._broken = bool(bad[-1])
        return beats

    # ---- internals -------------------------------------------------------------------------

    def _push_segment(self, t: F64, x: F64) -> list[EcgBeat]:
        self._x = np.concatenate((self._x, x))
        self._t = np.concatenate((self._t, t))
        self._n += x.size
        out = self._detect()
        self._trim()
        return out

    def _trim(self) -> None:
        keep_from = self._scan - self._reach - self._before - self._pad - 1
        if self._region_start is not None:
            keep_from = min(keep_from, self._region_start - self._reach - self._pad)
        drop = keep_from - self._i0
        if drop > 0:
            self._x = self._x[drop:]
            self._t = self._t[drop:]
            self._i0 += drop

    def _detect(self) -> list[EcgBeat]:
        x = self._x
        n = x.size
        ns, na = self._ns, self._na
        if n < 2 + ns + na:
            return []
        g = np.abs(x[2:] - x[:-2]) * 0.5  # g[k] is the gradient at buffer index k + 1
        s = _box(g, ns)  # s[k] at buffer index k + 1 + ns // 2
        a = _box(s, na)  # a[k] at buffer index k + 1 + ns // 2 + na // 2
        s_off = 1 + ns // 2
        a_off = s_off + na // 2
        # the mask is valid at buffer indices a_off .. a_off + len(a) - 1, and only where the
        # samples behind it belong to this segment
        first_valid = self._i0 + a_off
        lo = max(self._scan, first_valid)
        hi = self._i0 + a_off + a.size  # exclusive
        if lo >= hi:
            return []
        kb = lo - self._i0
        sv = s[kb - s_off : hi - self._i0 - s_off]
        av = a[kb - a_off : hi - self._i0 - a_off]
        mask = sv > GRAD_WEIGHT * av
        beats: list[EcgBeat] = []
        m = np.concatenate(([self._region_start is not None], mask)).astype(np.int8)
        for e in (np.flatnonzero(np.diff(m)) + 0).tolist():
            if m[e + 1]:  # a region starts at lo + e
                self._region_start = lo + e
            else:  # the open region ends at lo + e (exclusive)
                b = self._region_start if self._region_start is not None else lo + e
                beat = self._region(b, lo + e, s, s_off)
                if beat is not None:
                    beats.append(beat)
                self._region_start = None
        self._scan = hi
        return beats

    def _region(self, b: int, e: int, s: F64, s_off: int) -> EcgBeat | None:
        length = e - b
        self._lengths.append(length)
        if length < MIN_LEN_WEIGHT * (sum(self._lengths) / len(self._lengths)):
            return None
        x, t, i0 = self._x, self._t, self._i0
        lo_b = max(b - self._pad - i0, 1)
        hi_b = min(e + self._pad - i0, x.size - 1)
        if hi_b <= lo_b:
            return None
        seg = self.polarity * x[lo_b:hi_b]
        k = lo_b + int(np.argmax(seg))
        sb = max(b - i0 - s_off, 0)
        se = max(min(e - i0 - s_off, s.size), sb + 1)
        strength_abs = float(np.max(s[sb:se]))
        strengths = self._strengths
        typical = float(np.median(strengths)) if len(strengths) >= 3 else strength_abs
        if typical > 0 and strength_abs < MIN_STRENGTH * typical:
            return None
        y0, y1, y2 = (self.polarity * x[k - 1], self.polarity * x[k], self.polarity * x[k + 1])
        den = y0 - 2.0 * y1 + y2
        off = 0.5 * (y0 - y2) / den if den < 0 else 0.0
        off = min(0.5, max(-0.5, off))
        j = k + (1 if off > 0 else -1)
        tk = float(t[k] + abs(off) * (t[j] - t[k]))
        if self._last_peak_t is not None and tk - self._last_peak_t < self._min_delay:
            return None
        strengths.append(strength_abs)
        rr = None if self._last_peak_t is None else (tk - self._last_peak_t) * 1000.0
        self._last_peak_t = tk
        amp = float(y1 - 0.5 * (y0 - y2) * off / 2.0) * self.polarity
        return EcgBeat(
            tk,
            rr,
            amp,
            strength_abs / typical if typical > 0 else 1.0,
            self._width_ms(k),
            self._snippet(k, off),
        )

    def _width_ms(self, k: int) -> float:
        """QRS duration: the span around sample k where |gradient| > 1/4 of its local peak."""
        x = self._x
        w = round(0.1 * self.fs)
        lo, hi = max(k - w, 1), min(k + w, x.size - 1)
        g = np.abs(x[lo + 1 : hi + 1] - x[lo - 1 : hi - 1]) * 0.5
        if g.size == 0:
            return 0.0
        above = np.flatnonzero(g >= 0.25 * float(np.max(g)))
        return float(above[-1] - above[0] + 1) * 1000.0 / self.fs

    def _snippet(self, k: int, off: float) -> tuple[float, ...]:
        """The waveform around the sub-sample peak k + off, sampled at that position plus whole
        samples (linear interpolation): aligned to the peak itself, not to the nearest sample,
        so a beat's shape does not change with where the samples happened to fall. Computed
        from the fraction alone, so it does not depend on where the buffer starts."""
        x = self._x
        kb = k + math.floor(off)
        f = off - math.floor(off)
        idx = np.arange(kb - self._before, kb + self._after + 1)
        a = x[np.clip(idx, 0, x.size - 1)]
        b = x[np.clip(idx + 1, 0, x.size - 1)]
        seg = (1.0 - f) * a + f * b
        return tuple((seg - float(np.median(seg))).tolist())


def detect_r_peaks(
    times_s: npt.ArrayLike, samples_uv: npt.ArrayLike, fs: float = 130.0, polarity: int = 1
) -> list[EcgBeat]:
    """All beats of a whole recording (the streaming detector fed in one chunk)."""
    return EcgPeakDetector(fs, polarity).push(times_s, samples_uv)
