"""Premature beats from the ECG: each beat classified by its QRS shape and its timing (pure).

Shape. Each beat's QRS window (QRS_BEFORE_S before to QRS_AFTER_S after the R peak) is
correlated (Pearson) with a running template of the beats classified normal (element-wise median
of the first `TEMPLATE_BEATS` beats, then an exponential average, weight `TEMPLATE_WEIGHT`) and,
once one has been seen, with a running template of the premature ventricular beats. A beat's
shape is "ventricular" when it correlates less than `CORR_NORMAL` with the normal template, or
better with the ventricular template than with the normal one.

Timing. The reference interval is the median of the newest `REF_BEATS` normal-to-normal
intervals. A beat is premature when its RR is below `PREMATURE_RATIO` x that reference; its
compensatory pause is the next RR (a beat is classified when the next beat has arrived).

Classes:

* premature and ventricular shape: PREMATURE_VENTRICULAR (PVC);
* premature with the normal shape: PREMATURE_OTHER (atrial or junctional, PAC);
* on time with a shape close to the normal template (correlation >= `CORR_SAME`): NORMAL;
* anything else (noise: a QRS correlating less than `CORR_SHAPE` with both templates; a weak
  QRS; a late beat of odd shape; the warm-up before the template exists): UNKNOWN, which
  claims nothing and leaves the RR artifact stage to decide.

The thresholds were set on the real Polar H10 record (docs/ecg.md, "Premature beats: scored"):
there normal beats correlate 0.96 (median; 5th percentile 0.88) with the template and PVCs 0.87
(95th percentile 0.90), so shape alone is not enough at 130 Hz; shape and timing together are.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from biofeedback.signal.ecg import SNIPPET_BEFORE_S, EcgBeat

F64 = npt.NDArray[np.float64]

QRS_BEFORE_S = 0.05
QRS_AFTER_S = 0.06
TEMPLATE_BEATS = 8
TEMPLATE_WEIGHT = 0.05
CORR_NORMAL = 0.92
CORR_SAME = 0.80
CORR_SHAPE = 0.5  # a QRS resembling neither template this much is noise: UNKNOWN
PREMATURE_RATIO = 0.85
REF_BEATS = 7
MIN_STRENGTH = 0.5


class BeatClass(enum.StrEnum):
    """What the ECG says a beat is."""

    NORMAL = "normal"
    PREMATURE_VENTRICULAR = "premature_ventricular"
    PREMATURE_OTHER = "premature_other"
    UNKNOWN = "unknown"


PREMATURE = frozenset({BeatClass.PREMATURE_VENTRICULAR, BeatClass.PREMATURE_OTHER})


@dataclass(frozen=True, slots=True)
class ClassifiedBeat:
    """One ECG beat with its class and the evidence for it.

    `prematurity` is RR / reference RR (None before a reference exists), `pause_ratio` the next
    RR / reference RR, `corr_normal` and `corr_ventricular` the QRS correlations with the two
    templates (None while a template is missing). `previous` is the class of the beat before,
    so the interval this beat ends is normal-to-normal only when both are NORMAL.
    """

    t: float
    rr_ms: float | None
    beat_class: BeatClass
    previous: BeatClass | None
    prematurity: float | None
    pause_ratio: float | None
    corr_normal: float | None
    corr_ventricular: float | None
    width_ms: float

    @property
    def normal_to_normal(self) -> bool:
        """Whether the RR interval ending at this beat runs from a normal to a normal beat."""
        return self.beat_class is BeatClass.NORMAL and self.previous is BeatClass.NORMAL


def _corr(a: F64, b: F64) -> float:
    a = a - a.mean()
    b = b - b.mean()
    den = float(np.sqrt(float(a @ a) * float(b @ b)))
    return float(a @ b) / den if den > 0 else 0.0


class BeatClassifier:
    """Per-beat classification (see the module docstring); one beat of delay for the pause."""

    def __init__(self, fs: float = 130.0) -> None:
        centre = round(SNIPPET_BEFORE_S * fs)
        self._lo = centre - round(QRS_BEFORE_S * fs)
        self._hi = centre + round(QRS_AFTER_S * fs) + 1
        self.reset()

    def reset(self) -> None:
        """Forget the rhythm (after a gap); templates are kept: the shape does not change."""
        self._pending: EcgBeat | None = None
        self._prev_class: BeatClass | None = None
        self._nn: deque[float] = deque(maxlen=REF_BEATS)
        if not hasattr(self, "_normal"):
            self._normal: F64 | None = None
            self._ventricular: F64 | None = None
            self._warm: list[F64] = []

    @property
    def pending_t(self) -> float | None:
        """The time of the newest beat, held back until the next one gives its pause: every beat
        before it has been classified."""
        return self._pending.t if self._pending is not None else None

    def push(self, beat: EcgBeat) -> list[ClassifiedBeat]:
        """Add the next detected beat; returns the previous beat, now classified."""
        out: list[ClassifiedBeat] = []
        if beat.rr_ms is None and self._pending is not None:  # a new segment began
            out.append(self._classify(self._pending, None))
            self._pending = None
            self._prev_class = None
            self._nn.clear()
        if self._pending is not None:
            out.append(self._classify(self._pending, beat.rr_ms))
        self._pending = beat
        return out

    def flush(self) -> list[ClassifiedBeat]:
        """Classify the newest beat without its pause (end of a recording)."""
        if self._pending is None:
            return []
        b = self._pending
        self._pending = None
        return [self._classify(b, None)]

    def _qrs(self, beat: EcgBeat) -> F64 | None:
        s = beat.snippet
        if len(s) < self._hi:
            return None
        return np.asarray(s[self._lo : self._hi], dtype=np.float64)

    def _classify(self, beat: EcgBeat, next_rr: float | None) -> ClassifiedBeat:
        q = self._qrs(beat)
        ref = float(np.median(self._nn)) if len(self._nn) >= 3 else None
        prem = beat.rr_ms / ref if (ref and beat.rr_ms is not None) else None
        pause = next_rr / ref if (ref and next_rr is not None) else None
        cn = _corr(q, self._normal) if (q is not None and self._normal is not None) else None
        cv = (
            _corr(q, self._ventricular)
            if (q is not None and self._ventricular is not None)
            else None
        )
        cls = BeatClass.UNKNOWN
        if q is not None and self._normal is None:
            self._warm.append(q)
            if len(self._warm) >= TEMPLATE_BEATS:
                self._normal = np.median(np.vstack(self._warm), axis=0)
                self._warm = []
        elif (
            cn is not None
            and beat.strength >= MIN_STRENGTH
            and max(cn, cv if cv is not None else -1.0) >= CORR_SHAPE
        ):
            ventricular_shape = cn < CORR_NORMAL or (cv is not None and cv > cn)
            if prem is not None and prem < PREMATURE_RATIO:
                cls = (
                    BeatClass.PREMATURE_VENTRICULAR
                    if ventricular_shape
                    else BeatClass.PREMATURE_OTHER
                )
            elif prem is not None and cn >= CORR_SAME and not (cv is not None and cv > cn):
                cls = BeatClass.NORMAL
            elif prem is None and cn >= CORR_NORMAL:
                cls = BeatClass.NORMAL  # no rhythm reference yet: the shape alone
        if q is not None:
            if cls is BeatClass.NORMAL and self._normal is not None:
                self._normal += TEMPLATE_WEIGHT * (q - self._normal)
            elif cls is BeatClass.PREMATURE_VENTRICULAR:
                if self._ventricular is None:
                    self._ventricular = q.copy()
                else:
                    self._ventricular += 4 * TEMPLATE_WEIGHT * (q - self._ventricular)
        if cls is BeatClass.NORMAL and self._prev_class is BeatClass.NORMAL and beat.rr_ms:
            self._nn.append(beat.rr_ms)
        elif ref is None and beat.rr_ms is not None and self._normal is not None:
            # no reference yet: a start in ectopy must still get one; the median of the
            # newest intervals is robust to a minority of premature beats
            self._nn.append(beat.rr_ms)
        previous = self._prev_class
        self._prev_class = cls
        return ClassifiedBeat(beat.t, beat.rr_ms, cls, previous, prem, pause, cn, cv, beat.width_ms)


def classify_beats(beats: list[EcgBeat], fs: float = 130.0) -> list[ClassifiedBeat]:
    """Classify a whole recording's beats (the streaming classifier, flushed at the end)."""
    c = BeatClassifier(fs)
    out: list[ClassifiedBeat] = []
    for b in beats:
        out += c.push(b)
    return out + c.flush()
