"""Breathing from chest acceleration (Polar H10 ACC), pure: per-breath timing, rate, pacer
adherence, and two events for the therapist.

Signal. Breathing tilts and lifts the chest: a slow (0.05-0.5 Hz) change of a few mg in the
direction of gravity as seen by the strap. The samples are averaged in blocks to `RATE_HZ`
(10 Hz), and every update the newest `WINDOW_S` (60 s) are analysed: each axis is detrended
(least-squares line: gravity and slow posture drift), smoothed by a centred `SMOOTH_S` moving
average, and projected onto the principal axis of the three (the direction the chest moves
most). That is the breathing signal `y`. Which way the chest signal runs on inhalation depends
on posture and how the strap sits, so the sign is chosen by timing: at rest inhaling is quicker
than exhaling (I:E about 1:1.5-2), so `y` is oriented to rise over the shorter part of each
cycle. The sign is chosen once, by the first window whose two parts differ by over 5 %, and then
kept (the axis followed from update to update) until a gap: real breathing changes its I:E from
breath to breath, the strap's geometry does not (measured on a respiration belt: re-deciding
every window put a third of the breaths half a breath off). Until then, and for paced breathing
with equal in and out, the sign of the last update is kept. A breath runs from one low of `y`
to the next: durations and the rate never depend on the sign; the phase of a breath's start may
be half a breath off where the rule cannot tell (pacer adherence below does not depend on it).

Breaths. With a hysteresis of `HYST` x the robust spread of `y` (1.4826 x MAD), a breath starts
at the lowest point of `y` between falling below -h and rising above +h; its end is the next
such point; its depth is the highest `y` between them minus the start. Trough times are refined
by a parabola through three samples. A breath is final once the next has started; breaths
shallower than `MIN_DEPTH` x the median depth of the newest breaths are merged into the breath
they interrupt (a sigh's hitch or a cough is not a breath); the median is over the window's
breaths, so a change to shallow breathing is followed within half a window.

Rate: 60 / the median duration of the breaths ending in the window (None with fewer than two).
Nothing is reported before `FIRST_S` (30 s) of signal: the detrend, the principal axis and
its sign need a few cycles.

Movement swamps the breathing signal: while the movement meter says "moving" the caller
should show the rate as unavailable (`BreathingUpdate.valid` is False when the spread of `y`
exceeds `MAX_SPREAD_MG`).

Events (for the therapist only: never shown to the client as an alarm; docs/ecg.md):

* breath hold: no breath has started for `HOLD_S` (20 s) and at least 2.5 x the recent median
  breath duration;
* rapid shallow breathing: over the newest `RAPID_S` (20 s) the rate exceeds `RAPID_BPM`
  (24 /min) and the median depth is under `SHALLOW` (0.5) x the session's reference depth (the
  median depth of the breaths of the first `REFERENCE_BREATHS` breaths, or set explicitly).

Pacer adherence (0-1): the absolute Pearson correlation, over the newest `ADHERENCE_S` (at least
two pacer cycles), between `y` and the pacer's ideal chest wave cos(2 pi phase). The pacer
phase comes in as data (0 = start of inhalation, 1 = the next). The chest signal's sign is not
known (it depends on posture and how the strap sits), so breathing in exact anti-phase would
also score high; a constant lag of a quarter cycle scores 0, half the breaths missed about 0.5.
"""

from __future__ import annotations

import enum
import itertools
import math
from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]

RATE_HZ = 10.0
WINDOW_S = 60.0
SMOOTH_S = 0.7
HYST = 0.3
MIN_DEPTH = 0.2
HOLD_S = 20.0
RAPID_S = 20.0
RAPID_BPM = 24.0
SHALLOW = 0.5
REFERENCE_BREATHS = 10
ADHERENCE_S = 30.0
MAX_SPREAD_MG = 60.0
UPDATE_S = 1.0
FIRST_S = 30.0  # the first breaths and rate once this much signal is in (the sign needs cycles)
MOVING_BLOCK_MG = 15.0  # in-block spread (mg) that marks a block as disturbed by movement
MOVING_MARGIN_S = 1.0


class BreathingEventKind(enum.StrEnum):
    """Therapist-only breathing events (never a client alarm)."""

    BREATH_HOLD = "breath_hold"
    RAPID_SHALLOW = "rapid_shallow"


@dataclass(frozen=True, slots=True)
class Breath:
    """One breath: from the start of one inhalation to the start of the next (s), depth in the
    chest signal's units (mg along its principal axis)."""

    start_t: float
    end_t: float
    depth_mg: float

    @property
    def duration_s(self) -> float:
        return self.end_t - self.start_t


@dataclass(frozen=True, slots=True)
class BreathingEvent:
    """A therapist-only event: `start_t` when it began; `t` the update that reported it."""

    t: float
    kind: BreathingEventKind
    start_t: float
    detail: str


@dataclass(frozen=True, slots=True)
class BreathingUpdate:
    """The chest breathing estimate at `t`: rate (breaths/min, None when unknown), breaths
    that became final since the last update, events, and whether the signal was usable."""

    t: float
    rate_bpm: float | None
    breaths: tuple[Breath, ...]
    events: tuple[BreathingEvent, ...]
    valid: bool
    reason: str | None = None


def _rise_share(y: F64) -> float | None:
    """The median share of a cycle that `y` spends rising (low to high), by the crossings of
    +-HYST x its robust spread; None with under two full cycles."""
    spread = 1.4826 * float(np.median(np.abs(y - np.median(y))))
    h = HYST * spread
    if h <= 0:
        return None
    lows: list[int] = []
    highs: list[int] = []
    state = 0
    ext = 0
    for i in range(y.size):
        v = y[i]
        if v < -h:
            if state != -1:
                if state == 1:
                    highs.append(ext)
                state, ext = -1, i
            elif v < y[ext]:
                ext = i
        elif v > h:
            if state != 1:
                if state == -1:
                    lows.append(ext)
                state, ext = 1, i
            elif v > y[ext]:
                ext = i
    shares = []
    for a, b in itertools.pairwise(lows):
        peaks = [p for p in highs if a < p < b]
        if peaks:
            shares.append((peaks[0] - a) / (b - a))
    return float(np.median(shares)) if len(shares) >= 2 else None


class ChestBreathing:
    """Streaming breathing from 3-axis acceleration (see the module docstring)."""

    def __init__(self, fs: float = 50.0) -> None:
        if not (isinstance(fs, (int, float)) and math.isfinite(fs) and 10.0 <= fs <= 1000.0):
            raise ValueError(f"ACC sampling rate {fs!r} Hz is implausible: expected 10-1000 Hz")
        self.fs = float(fs)
        self._block = max(1, round(fs / RATE_HZ))
        self._gap_s = 2.5 / fs
        self.reference_depth_mg: float | None = None
        self.reset()

    def reset(self) -> None:
        """Forget the signal (a gap): breaths and events restart."""
        self._acc_t: list[float] = []  # raw samples waiting to fill a block
        self._acc: list[tuple[float, ...]] = []
        self._bt: deque[float] = deque(maxlen=round(WINDOW_S * RATE_HZ))  # 10 Hz blocks
        self._ba: deque[tuple[float, float, float]] = deque(maxlen=round(WINDOW_S * RATE_HZ))
        self._bs: deque[float] = deque(maxlen=round(WINDOW_S * RATE_HZ))  # in-block spread
        self._axis: F64 | None = None
        self._oriented = False  # the sign was chosen by timing (then kept until a gap)
        self._last_raw_t: float | None = None
        self._next_update: float | None = None
        self._breaths: deque[Breath] = deque(maxlen=64)
        self._ref_depths: list[float] = []
        self._hold_from: float | None = None
        self._rapid_from: float | None = None

    def push(self, times_s: npt.ArrayLike, acc_mg: npt.ArrayLike) -> list[BreathingUpdate]:
        """Add samples (times in s; x, y, z in mg); an update per `UPDATE_S` of data (never
        closer together than that)."""
        t = np.asarray(times_s, dtype=np.float64).ravel()
        a = np.asarray(acc_mg, dtype=np.float64)
        if a.ndim != 2 or a.shape[1] != 3 or a.shape[0] != t.size:
            raise ValueError(
                f"acceleration must be n x 3 (mg) with one time per sample: got {a.shape} "
                f"samples and {t.size} times"
            )
        out: list[BreathingUpdate] = []
        ok = np.isfinite(t) & np.isfinite(a).all(axis=1)
        start = 0
        n = t.size
        while start < n:  # runs of good samples without a jump in time
            if not ok[start]:
                self.reset()
                start += 1
                continue
            if self._last_raw_t is not None and not (
                0.0 < t[start] - self._last_raw_t <= self._gap_s
            ):
                self.reset()
            steps = np.diff(t[start:])
            bad = np.flatnonzero(~ok[start + 1 :] | ~(steps > 0) | (steps > self._gap_s))
            end = start + 1 + int(bad[0]) if bad.size else n
            out += self._run(t[start:end], a[start:end])
            start = end
        return out

    def _run(self, t: F64, a: F64) -> list[BreathingUpdate]:
        self._last_raw_t = float(t[-1])
        self._acc_t.extend(t.tolist())
        self._acc.extend(map(tuple, a.tolist()))
        out: list[BreathingUpdate] = []
        nb = len(self._acc) // self._block
        if nb == 0:
            return out
        k = nb * self._block
        bt = np.asarray(self._acc_t[:k]).reshape(nb, self._block).mean(axis=1)
        blk = np.asarray(self._acc[:k]).reshape(nb, self._block, 3)
        means = blk.mean(axis=1)
        spreads = blk.std(axis=1).max(axis=1) if self._block > 1 else np.zeros(nb)
        del self._acc_t[:k]
        del self._acc[:k]
        for j in range(nb):
            self._bt.append(float(bt[j]))
            m = means[j]
            self._ba.append((float(m[0]), float(m[1]), float(m[2])))
            self._bs.append(float(spreads[j]))
            if self._next_update is None:
                self._next_update = self._bt[0] + UPDATE_S
            if self._bt[-1] >= self._next_update:
                # counted from this update, not the schedule: updates are never closer than
                # UPDATE_S, whatever the block times' phase (a rate that is not 10 x a whole
                # number of samples per block drifts against a fixed schedule)
                self._next_update = self._bt[-1] + UPDATE_S
                out.append(self._update(self._bt[-1]))
        return out

    def signal(self) -> tuple[F64, F64]:
        """The breathing signal `y` over the current window (times, mg), for plots."""
        t = np.asarray(self._bt)
        y = self._project()
        return t, y if y is not None else np.zeros(0)

    def adherence(self, pacer_t: npt.ArrayLike, pacer_phase: npt.ArrayLike) -> float | None:
        """How closely the chest follows the pacer (0-1) over the newest ADHERENCE_S.

        `pacer_t`, `pacer_phase`: the pacer's phase (cycles, 0 = start of inhalation; it may
        keep counting or wrap at 1) at those times, e.g. one value per frame the client saw.
        None when the window holds under 10 s of both.
        """
        pt = np.asarray(pacer_t, dtype=np.float64).ravel()
        ph = np.asarray(pacer_phase, dtype=np.float64).ravel()
        t, y = self.signal()
        if y.size == 0 or pt.size < 2:
            return None
        sel = (t >= t[-1] - ADHERENCE_S) & (t >= pt[0]) & (t <= pt[-1])
        if np.count_nonzero(sel) < 10 * RATE_HZ:
            return None
        # unwrap the phase in cycles before interpolating (a wrap from 0.99 to 0.01 is 0.02)
        cyc = np.unwrap(ph * 2 * np.pi) / (2 * np.pi)
        wave = np.cos(2 * np.pi * np.interp(t[sel], pt, cyc))
        ys = y[sel] - y[sel].mean()
        wv = wave - wave.mean()
        den = math.sqrt(float(ys @ ys) * float(wv @ wv))
        if den <= 0:
            return 0.0
        return min(1.0, abs(float(ys @ wv)) / den)

    # ---- internals -------------------------------------------------------------------------

    def _moving_mask(self) -> npt.NDArray[np.bool_]:
        """Blocks disturbed by movement (in-block spread over MOVING_BLOCK_MG), widened by
        MOVING_MARGIN_S on both sides."""
        bad = np.asarray(self._bs) > MOVING_BLOCK_MG
        m = round(MOVING_MARGIN_S * RATE_HZ)
        if bad.any() and m > 0:
            bad = np.convolve(bad.astype(np.float64), np.ones(2 * m + 1), "same") > 0
        return bad

    def _project(self) -> F64 | None:
        n = len(self._bt)
        if n < 10 * RATE_HZ:
            return None
        t = np.asarray(self._bt)
        a = np.asarray(self._ba)
        bad = self._moving_mask()
        if bad.any():
            good = ~bad
            if np.count_nonzero(good) < 10 * RATE_HZ:
                return None
            # movement swamps the breathing: bridge it by a straight line, so neither the
            # detrend nor the principal axis is taken over by it
            a = np.column_stack([np.interp(t, t[good], a[good, i]) for i in range(3)])
        tc = t - t.mean()
        den = float(tc @ tc)
        a = a - a.mean(axis=0) - np.outer(tc, (tc @ (a - a.mean(axis=0))) / den)
        k = max(1, round(SMOOTH_S * RATE_HZ)) | 1
        kernel = np.full(k, 1.0 / k)
        pad = k // 2
        sm = np.column_stack(
            [np.convolve(np.pad(a[:, i], pad, mode="edge"), kernel, "valid") for i in range(3)]
        )
        cov = sm.T @ sm
        w, v = np.linalg.eigh(cov)
        axis = v[:, int(np.argmax(w))]
        y0 = sm @ axis
        share = None if self._oriented else _rise_share(y0)
        if share is not None and abs(share - 0.5) > 0.05:
            self._oriented = True
            if share > 0.5:  # inhaling is quicker than exhaling: y rises on inhalation
                axis = -axis
        elif self._axis is not None and float(axis @ self._axis) < 0:
            axis = -axis
        self._axis = axis
        y: F64 = sm @ axis
        return y

    def _update(self, now: float) -> BreathingUpdate:
        y = self._project() if len(self._bt) >= FIRST_S * RATE_HZ else None
        if y is None:
            return BreathingUpdate(now, None, (), (), False, "breathing window still filling")
        t = np.asarray(self._bt)
        spread = 1.4826 * float(np.median(np.abs(y - np.median(y))))
        if spread > MAX_SPREAD_MG:
            return BreathingUpdate(now, None, (), (), False, "movement: chest signal swamped")
        bad = self._moving_mask()
        if bad.mean() > 0.5:
            return BreathingUpdate(now, None, (), (), False, "movement: chest signal swamped")
        new = self._new_breaths(t, y, spread, bad)
        events = self._events(now)
        recent = [b for b in self._breaths if b.end_t >= now - WINDOW_S and b.depth_mg >= 0]
        rate = 60.0 / float(np.median([b.duration_s for b in recent])) if len(recent) >= 2 else None
        return BreathingUpdate(now, rate, tuple(new), tuple(events), True, None)

    def _troughs(self, t: F64, y: F64, h: float) -> list[tuple[float, int]]:
        """(time, index) of each breath start: the minimum between crossing -h and +h."""
        out: list[tuple[float, int]] = []
        state = 0  # -1 below -h, +1 above +h
        lo_i = -1
        for i in range(y.size):
            v = y[i]
            if v < -h:
                if state != -1:
                    state = -1
                    lo_i = i
                elif v < y[lo_i]:
                    lo_i = i
            elif v > h and state == -1:
                state = 1
                if lo_i >= 2:  # a low at the window's edge may be a cut-off descent
                    out.append((self._refine(t, y, lo_i), lo_i))
            elif v > h:
                state = 1
        return out

    @staticmethod
    def _refine(t: F64, y: F64, i: int) -> float:
        if 0 < i < y.size - 1:
            y0, y1, y2 = float(y[i - 1]), float(y[i]), float(y[i + 1])
            den = y0 - 2.0 * y1 + y2
            if den > 0:
                off = max(-0.5, min(0.5, 0.5 * (y0 - y2) / den))
                j = i + (1 if off > 0 else -1)
                return float(t[i] + abs(off) * (t[j] - t[i]))
        return float(t[i])

    def _new_breaths(
        self, t: F64, y: F64, spread: float, bad: npt.NDArray[np.bool_]
    ) -> list[Breath]:
        h = HYST * spread
        tr = self._troughs(t, y, h)
        cand: list[Breath] = []
        for (t0, i0), (t1, i1) in itertools.pairwise(tr):
            if bad[i0 : i1 + 1].any():  # bridged over movement: its timing is not known
                cand.append(Breath(t0, t1, -1.0))
                continue
            depth = float(np.max(y[i0 : i1 + 1]) - y[i0])
            cand.append(Breath(t0, t1, depth))
        depths = [b.depth_mg for b in cand if b.depth_mg >= 0]
        typical = float(np.median(depths)) if depths else 0.0
        merged: list[Breath] = []
        for b in cand:
            if b.depth_mg < 0:
                merged.append(b)
            elif merged and typical > 0 and b.depth_mg < MIN_DEPTH * typical:
                p = merged[-1]
                merged[-1] = Breath(p.start_t, b.end_t, max(p.depth_mg, b.depth_mg))
            else:
                merged.append(b)
        last_end = self._breaths[-1].end_t if self._breaths else -math.inf
        new = [b for b in merged if b.end_t > last_end + 0.5 and b.start_t >= last_end - 0.5]
        if self._breaths:  # a breath that starts where the last one ended continues the chain
            new = [b for b in new if abs(b.start_t - last_end) < 0.5 or b.start_t > last_end]
        for b in new:
            self._breaths.append(b)
            if len(self._ref_depths) < REFERENCE_BREATHS and b.depth_mg >= 0:
                self._ref_depths.append(b.depth_mg)
        return [b for b in new if b.depth_mg >= 0]

    def _events(self, now: float) -> list[BreathingEvent]:
        out: list[BreathingEvent] = []
        breaths = self._breaths
        if breaths:
            last_start = breaths[-1].end_t  # the newest breath start known
            med = float(np.median([b.duration_s for b in list(breaths)[-6:]]))
            limit = max(HOLD_S, 2.5 * med)
            if now - last_start >= limit:
                if self._hold_from is None:
                    self._hold_from = last_start
                    out.append(
                        BreathingEvent(
                            now,
                            BreathingEventKind.BREATH_HOLD,
                            last_start,
                            f"no breath for {now - last_start:.0f} s",
                        )
                    )
            else:
                self._hold_from = None
        ref = self.reference_depth_mg
        if ref is None and len(self._ref_depths) >= REFERENCE_BREATHS:
            ref = float(np.median(self._ref_depths))
        recent = [b for b in breaths if b.end_t >= now - RAPID_S and b.depth_mg >= 0]
        if ref and len(recent) >= 3:
            rate = 60.0 / float(np.median([b.duration_s for b in recent]))
            depth = float(np.median([b.depth_mg for b in recent]))
            if rate > RAPID_BPM and depth < SHALLOW * ref:
                if self._rapid_from is None:
                    self._rapid_from = recent[0].start_t
                    out.append(
                        BreathingEvent(
                            now,
                            BreathingEventKind.RAPID_SHALLOW,
                            recent[0].start_t,
                            f"{rate:.0f} breaths/min at {depth / ref:.0%} of the usual depth",
                        )
                    )
            else:
                self._rapid_from = None
        return out
