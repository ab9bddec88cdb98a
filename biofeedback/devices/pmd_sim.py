"""The raw streams a Polar H10 would send for the simulated client: ECG and chest acceleration.

`PmdEmulator` turns the simulated beats (`physiology.SimBeat`: R-peak times, premature beats,
breathing phase) into the bytes of real PMD data notifications, encoded with `pmd.encode_ecg` /
`pmd.encode_acc_raw` and so decoded by the same path as a strap's (`PmdFrameReader`):

- **ECG**, 130 Hz, 73 samples per frame (a 229-byte notification, as the H10): each beat is a sum
  of Gaussian P, Q, R, S and T waves around its R peak (the T wave later for longer RR); a
  premature beat (`ectopic` with an RR clearly shorter than the one before) has a ventricular
  shape instead: no P wave, a wide tall QRS and an inverted T, so the signal side can tell it from
  a breathing swing by shape. Breathing adds a slow baseline and amplitude swing; a little noise.
- **ACC**, 200 Hz, 36 samples per frame (16-bit raw type 1, as the H10): gravity on the strap's
  axes tilted by the chest's rise and fall with the breathing phase (about 20 mg peak-to-peak on
  z), noise of a few mg, and, when `movement_every_s` is set, movement bursts (a 1.5 Hz sway plus
  broadband shaking of ~150 mg, e.g. cycling or shifting in the chair).

Sensor time counts from an arbitrary epoch in ns (an H10 counts from 2000-01-01); frames falling
in a simulated link drop are never sent, so the reader sees them as a gap, as with a real strap.
Pure and deterministic: time comes in as data, randomness from the seed.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import numpy as np

from biofeedback.devices import pmd
from biofeedback.devices.physiology import SimBeat

__all__ = ["ACC_PER_FRAME", "ACC_RATE_HZ", "ECG_PER_FRAME", "ECG_RATE_HZ", "PmdEmulator"]

ECG_RATE_HZ = 130.0
ECG_PER_FRAME = 73
ACC_RATE_HZ = 200.0
ACC_PER_FRAME = 36
SENSOR_BASE_NS = 800_000_000 * 10**9  # sensor time of the session's start
LOOKAHEAD_S = 0.35  # a sample needs the beats up to this much later (the next beat's P wave)

# (amplitude µV, centre s from R, width s) of a normal beat; T's centre scales with sqrt(RR).
_NORMAL = (
    (120.0, -0.20, 0.025),
    (-100.0, -0.035, 0.010),
    (1100.0, 0.0, 0.011),
    (-250.0, 0.035, 0.011),
)
_NORMAL_T = (280.0, 0.26, 0.045)
_PVC = ((1600.0, 0.0, 0.030), (-500.0, 0.08, 0.030), (-450.0, 0.32, 0.060))
_TILT0 = math.radians(8.0)  # strap's resting tilt from vertical
_BREATH_TILT = math.radians(1.2)  # extra tilt at full inhalation


@dataclass(frozen=True, slots=True)
class _Beat:
    t: float
    pvc: bool
    rr_s: float


class PmdEmulator:
    """ECG and ACC notification bytes for simulated beats (see the module docstring)."""

    def __init__(
        self,
        *,
        start_t: float,
        seed: int = 1,
        movement_every_s: float | None = None,
        movement_len_s: float = 10.0,
    ) -> None:
        self.start_t = float(start_t)
        self._rng = np.random.default_rng([seed, 0xEC6])
        self._beats: list[_Beat] = []
        self._beat_t: list[float] = []
        self._phase_t: list[float] = []  # beat times with their unwrapped breathing phase
        self._phase: list[float] = []
        self._breath_hz = 14.0 / 60.0
        self._ecg_k = 0  # next ECG sample index
        self._acc_k = 0
        self.movement_every_s = movement_every_s
        self.movement_len_s = movement_len_s

    # -- inputs -----------------------------------------------------------------------------
    def add_beats(self, beats: list[SimBeat]) -> None:
        """Every simulated beat, in order, as the model produces it."""
        for b in beats:
            prev_rr = self._beats[-1].rr_s if self._beats else b.rr_s
            self._beats.append(_Beat(b.t, b.ectopic and b.rr_s < 0.85 * prev_rr, b.rr_s))
            self._beat_t.append(b.t)
            phase = b.breath_phase
            if self._phase:
                last = self._phase[-1]
                phase = last + ((phase - last) % (2 * math.pi))
            self._phase_t.append(b.t)
            self._phase.append(phase)
            self._breath_hz = max(0.03, b.breathing_bpm / 60.0)
        # Beats far behind every sample still to come are no longer needed.
        keep_from = bisect.bisect_left(self._beat_t, self.sample_t(self._ecg_k, ECG_RATE_HZ) - 2)
        if keep_from > 8:
            del self._beats[:keep_from], self._beat_t[:keep_from]
            del self._phase_t[:keep_from], self._phase[:keep_from]

    def sample_t(self, k: int, rate_hz: float) -> float:
        """Session time of sample `k` of a stream at `rate_hz`."""
        return self.start_t + k / rate_hz

    def sensor_ns(self, t: float) -> int:
        return SENSOR_BASE_NS + round((t - self.start_t) * 1e9)

    def in_movement(self, t: float) -> bool:
        every = self.movement_every_s
        if every is None:
            return False
        x = t - self.start_t
        n = math.floor(x / every)
        return n >= 1 and x - n * every < self.movement_len_s

    # -- frames -----------------------------------------------------------------------------
    def frames_until(self, t: float) -> list[tuple[float, bytes]]:
        """(last sample's session time, notification bytes) of every frame complete by `t`,
        ECG and ACC, oldest first. Call `add_beats` with the beats up to `t` first."""
        out: list[tuple[float, bytes]] = []
        horizon = t - LOOKAHEAD_S
        while self.sample_t(self._ecg_k + ECG_PER_FRAME - 1, ECG_RATE_HZ) <= horizon:
            ks = np.arange(self._ecg_k, self._ecg_k + ECG_PER_FRAME)
            times = self.start_t + ks / ECG_RATE_HZ
            uv = self._ecg(times)
            out.append((float(times[-1]), pmd.encode_ecg(self.sensor_ns(float(times[-1])), uv)))
            self._ecg_k += ECG_PER_FRAME
        while self.sample_t(self._acc_k + ACC_PER_FRAME - 1, ACC_RATE_HZ) <= horizon:
            ks = np.arange(self._acc_k, self._acc_k + ACC_PER_FRAME)
            times = self.start_t + ks / ACC_RATE_HZ
            out.append(
                (
                    float(times[-1]),
                    pmd.encode_acc_raw(self.sensor_ns(float(times[-1])), self._acc(times)),
                )
            )
            self._acc_k += ACC_PER_FRAME
        out.sort(key=lambda f: f[0])
        return out

    def _breath_phase(self, times: np.ndarray) -> np.ndarray:
        if not self._phase_t:
            return 2 * math.pi * self._breath_hz * (times - self.start_t)
        ph: np.ndarray = np.asarray(np.interp(times, self._phase_t, self._phase), dtype=float)
        after = times > self._phase_t[-1]
        ph[after] += 2 * math.pi * self._breath_hz * (times[after] - self._phase_t[-1])
        before = times < self._phase_t[0]
        ph[before] -= 2 * math.pi * self._breath_hz * (self._phase_t[0] - times[before])
        return ph

    def _ecg(self, times: np.ndarray) -> list[int]:
        phase = self._breath_phase(times)
        lo = bisect.bisect_left(self._beat_t, float(times[0]) - 0.6)
        hi = bisect.bisect_right(self._beat_t, float(times[-1]) + LOOKAHEAD_S)
        v = np.zeros_like(times)
        for b in self._beats[lo:hi]:
            d = times - b.t
            waves: tuple[tuple[float, float, float], ...]
            if b.pvc:
                waves = _PVC
            else:
                amp, centre, width = _NORMAL_T
                waves = (*_NORMAL, (amp, centre * math.sqrt(max(0.3, b.rr_s)), width))
            for amp, centre, width in waves:
                v += amp * np.exp(-0.5 * ((d - centre) / width) ** 2)
        # breathing: baseline wander and a little amplitude modulation
        v = v * (1.0 + 0.06 * np.sin(phase)) + 60.0 * np.sin(phase - 0.5)
        v += self._rng.normal(0.0, 8.0, size=len(times))
        return [int(x) for x in np.rint(v)]

    def _acc(self, times: np.ndarray) -> list[tuple[int, int, int]]:
        volume = (1.0 - np.cos(self._breath_phase(times))) / 2.0  # 0 at inhale start, 1 full
        tilt = _TILT0 + _BREATH_TILT * volume
        x = -1000.0 * np.cos(tilt)
        y = np.full_like(times, 25.0)
        z = 1000.0 * np.sin(tilt)
        noise = self._rng.normal(0.0, 3.0, size=(3, len(times)))
        moving = np.array([self.in_movement(float(s)) for s in times])
        if moving.any():
            sway = 120.0 * np.sin(2 * math.pi * 1.5 * times)
            shake = self._rng.normal(0.0, 60.0, size=(3, len(times)))
            x = x + moving * (sway + shake[0])
            y = y + moving * (0.5 * sway + shake[1])
            z = z + moving * (0.8 * sway + shake[2])
        return [
            (int(a), int(b), int(c))
            for a, b, c in zip(
                np.rint(x + noise[0]), np.rint(y + noise[1]), np.rint(z + noise[2]), strict=True
            )
        ]
