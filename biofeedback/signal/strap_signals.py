"""One strap's raw ECG and acceleration, all stages together, for the service to wire (pure).

`StrapSignals` chains the ECG stages (R peaks -> beat classes -> the strap's RR reconciled) and
the chest stages (movement, breathing) for one strap, and hands their results to the RR
pipeline (`apply`): the ECG's verdict per interval (`SignalPipeline.set_ecg_verdict`) and the
movement flag (`SignalPipeline.set_movement`). Inputs are the plain arrays the device layer's
frames carry (one service time per sample); a lost or cut frame is a gap (`ecg_gap`, `acc_gap`).
See docs/ecg.md, "Wiring".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from biofeedback.signal.chest_breathing import BreathingUpdate, ChestBreathing
from biofeedback.signal.ecg import EcgPeakDetector
from biofeedback.signal.ecg_beats import BeatClassifier, ClassifiedBeat
from biofeedback.signal.ecg_reconcile import EcgVerdict, RrCheck, RrReconciler
from biofeedback.signal.movement import MovementMeter, MovementSample
from biofeedback.signal.pipeline import SignalPipeline


@dataclass(frozen=True, slots=True)
class RawSignals:
    """What one raw frame (or strap RR) produced: classified ECG beats, strap intervals checked
    against the ECG, movement samples and breathing updates (each possibly empty)."""

    beats: tuple[ClassifiedBeat, ...] = ()
    checks: tuple[RrCheck, ...] = ()
    movement: tuple[MovementSample, ...] = ()
    breathing: tuple[BreathingUpdate, ...] = ()


def _rate(t: npt.NDArray[np.float64]) -> float | None:
    """The sampling rate from a frame's sample times (median step), None with too few."""
    if t.size < 3:
        return None
    step = float(np.median(np.diff(t)))
    return 1.0 / step if step > 0 and math.isfinite(step) else None


class StrapSignals:
    """The raw-signal stages of one strap (see the module docstring).

    `ecg_fs` is the ECG's nominal rate (130 Hz on an H10); the ACC rate is taken from the first
    ACC frame's sample times unless given (the strap's range and rate are chosen at start).
    """

    def __init__(
        self, ecg_fs: float = 130.0, acc_fs: float | None = None, polarity: int = 1
    ) -> None:
        self._detector = EcgPeakDetector(ecg_fs, polarity)
        self._classifier = BeatClassifier(ecg_fs)
        self._reconciler = RrReconciler()
        self._acc_fs = acc_fs
        self._movement: MovementMeter | None = None
        self._breathing: ChestBreathing | None = None

    @property
    def breathing(self) -> ChestBreathing | None:
        """The breathing stage (for `adherence` and `signal`), None before any ACC."""
        return self._breathing

    def ecg(self, t: Sequence[float], uv: Sequence[float]) -> RawSignals:
        """One ECG frame: its samples' service times (s) and µV."""
        classified: list[ClassifiedBeat] = []
        for b in self._detector.push(t, uv):
            classified += self._classifier.push(b)
        self._reconciler.push_ecg(classified)
        return RawSignals(tuple(classified), tuple(self._resolve()))

    def strap_rr(self, t: float, rr_ms: float) -> RawSignals:
        """One RR interval from the strap, with the time it was given to the RR pipeline."""
        self._reconciler.push_strap(t, rr_ms)
        return RawSignals(checks=tuple(self._resolve()))

    def acc(self, t: Sequence[float], mg: Sequence[Sequence[float]]) -> RawSignals:
        """One ACC frame: its samples' service times (s) and x, y, z in mg."""
        ta = np.asarray(t, dtype=np.float64)
        if self._movement is None or self._breathing is None:
            fs = self._acc_fs or _rate(ta)
            if fs is None:
                return RawSignals()  # too short to tell the rate: wait for a longer frame
            self._acc_fs = fs
            self._movement = MovementMeter(fs)
            self._breathing = ChestBreathing(fs)
        a = np.asarray(mg, dtype=np.float64).reshape(-1, 3)
        return RawSignals(
            movement=tuple(self._movement.push(ta, a)),
            breathing=tuple(self._breathing.push(ta, a)),
        )

    def ecg_gap(self) -> None:
        """ECG samples were lost: no beat or interval bridges the gap."""
        self._detector.mark_gap()
        self._classifier.flush()
        self._classifier.reset()
        self._reconciler.reset()

    def acc_gap(self) -> None:
        """ACC samples were lost."""
        if self._movement is not None:
            self._movement.reset()
        if self._breathing is not None:
            self._breathing.reset()

    def apply(self, out: RawSignals, pipeline: SignalPipeline) -> int:
        """Hand `out`'s verdicts and movement to the RR pipeline; the verdicts it took."""
        taken = 0
        for c in out.checks:
            if c.verdict is not EcgVerdict.UNKNOWN:
                taken += pipeline.set_ecg_verdict(c.t, c.verdict)
        for s in out.movement:
            pipeline.set_movement(s.t, s.moving)
        return taken

    def _resolve(self) -> list[RrCheck]:
        pending = self._classifier.pending_t
        # every ECG beat before the classifier's held-back one is final
        return self._reconciler.resolve(pending - 1e-6 if pending is not None else None)
