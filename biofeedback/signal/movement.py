"""A movement index from chest acceleration (Polar H10 ACC: 3 axes in mg, 25-200 Hz), pure.

Index. Each axis is high-passed by subtracting its centred `BASE_S` (0.5 s) moving average, which
removes gravity, posture and the slow tilt of breathing (0.07-0.4 Hz keeps under 4 % of its
amplitude after it); the index is the RMS of the remaining vector magnitude over the newest
`WINDOW_S` (1 s), in mg, reported every `HOP_S` (1 s) of data.

Levels (documented in docs/ecg.md, "Movement"): below `STILL_MG` still (sensor noise and
breathing leave about 1-3 mg), from `MOVING_MG` moving (shifting in a chair, gesturing while
talking, walking, cycling: tens to hundreds of mg), between them light. These thresholds are
set from the physics of the signal and synthetic tests, not from recorded H10 movement: no such
recording is in ../shared/data yet; they are parameters.

`moving` holds for `HOLD_S` after the index last reached `MOVING_MG`: heart rate stays up for
tens of seconds after exertion, and the arousal estimate should keep saying why.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]

BASE_S = 0.5
WINDOW_S = 1.0
HOP_S = 1.0
STILL_MG = 15.0
MOVING_MG = 50.0
HOLD_S = 20.0


class MovementLevel(enum.StrEnum):
    STILL = "still"
    LIGHT = "light"
    MOVING = "moving"


@dataclass(frozen=True, slots=True)
class MovementSample:
    """The movement index over the `WINDOW_S` ending at `t` (s, the sample clock)."""

    t: float
    index_mg: float
    level: MovementLevel
    moving: bool  # MOVING now or within HOLD_S


def level_of(index_mg: float) -> MovementLevel:
    """The level of a movement index (mg)."""
    if index_mg >= MOVING_MG:
        return MovementLevel.MOVING
    if index_mg >= STILL_MG:
        return MovementLevel.LIGHT
    return MovementLevel.STILL


def _as_acc(times_s: npt.ArrayLike, acc_mg: npt.ArrayLike) -> tuple[F64, F64]:
    t = np.asarray(times_s, dtype=np.float64).ravel()
    a = np.asarray(acc_mg, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != 3:
        raise ValueError(f"acceleration must be n x 3 (x, y, z in mg), not shape {a.shape}")
    if a.shape[0] != t.size:
        raise ValueError(
            f"acceleration chunk has {t.size} sample times but {a.shape[0]} samples: "
            "they must pair up"
        )
    return t, a


class MovementMeter:
    """Streaming movement index for one strap (see the module docstring)."""

    def __init__(self, fs: float = 50.0) -> None:
        if not (isinstance(fs, (int, float)) and math.isfinite(fs) and 10.0 <= fs <= 1000.0):
            raise ValueError(f"ACC sampling rate {fs!r} Hz is implausible: expected 10-1000 Hz")
        self.fs = float(fs)
        self._nb = max(3, round(BASE_S * fs)) | 1
        self._nw = max(1, round(WINDOW_S * fs))
        self._gap_s = 2.5 / fs
        self.reset()

    def reset(self) -> None:
        """Forget the signal (a gap); the hold on `moving` is kept: it is about the person."""
        self._t: F64 = np.zeros(0)
        self._a: F64 = np.zeros((0, 3))
        self._next_t: float | None = None
        if not hasattr(self, "_moving_until"):
            self._moving_until = -math.inf

    def push(self, times_s: npt.ArrayLike, acc_mg: npt.ArrayLike) -> list[MovementSample]:
        """Add samples (times in s; x, y, z in mg); the index for each hop now complete.

        Non-finite samples and jumps in time are gaps. Raises ValueError on mismatched shapes.
        """
        t, a = _as_acc(times_s, acc_mg)
        out: list[MovementSample] = []
        ok = np.isfinite(t) & np.isfinite(a).all(axis=1)
        start = 0
        n = t.size
        while start < n:
            if not ok[start]:
                self.reset()
                start += 1
                continue
            end = start + 1
            while end < n and ok[end] and 0.0 < t[end] - t[end - 1] <= self._gap_s:
                end += 1
            if len(self._t) and not (0.0 < t[start] - self._t[-1] <= self._gap_s):
                self.reset()
            out += self._segment(t[start:end], a[start:end])
            start = end
        return out

    def _segment(self, t: F64, a: F64) -> list[MovementSample]:
        self._t = np.concatenate((self._t, t))
        self._a = np.concatenate((self._a, a))
        nb, nw = self._nb, self._nw
        half = nb // 2
        out: list[MovementSample] = []
        if self._next_t is None:
            self._next_t = float(self._t[0]) + WINDOW_S + BASE_S / 2
        # a window ending at sample e needs samples up to e + half for its high-pass
        while True:
            e = int(np.searchsorted(self._t, self._next_t, side="right")) - 1
            if e < nw + half or e + half >= len(self._t):
                break
            seg = self._a[e - nw + 1 - half : e + half + 1]
            kernel = np.full(nb, 1.0 / nb)
            base = np.column_stack([np.convolve(seg[:, i], kernel, "valid") for i in range(3)])
            hp = seg[half : half + base.shape[0]] - base
            index = float(np.sqrt(np.mean(np.sum(hp * hp, axis=1))))
            te = float(self._t[e])
            lvl = level_of(index)
            if lvl is MovementLevel.MOVING:
                self._moving_until = te + HOLD_S
            out.append(MovementSample(te, index, lvl, te <= self._moving_until))
            self._next_t += HOP_S
        keep = len(self._t) - (nw + 2 * nb + round(HOP_S * self.fs))
        if keep > 0:
            self._t = self._t[keep:]
            self._a = self._a[keep:]
        return out


def movement_index(
    times_s: npt.ArrayLike, acc_mg: npt.ArrayLike, fs: float = 50.0
) -> list[MovementSample]:
    """The movement index of a whole recording (the streaming meter fed in one chunk)."""
    return MovementMeter(fs).push(times_s, acc_mg)
