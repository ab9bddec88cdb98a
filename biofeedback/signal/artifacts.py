"""Ectopic, missed and extra beat detection (Lipponen & Tarvainen 2019) on a rolling buffer.

neurokit2's implementation (`signal_fixpeaks(method="kubios")`) judges the newest beats of a
bounded buffer once every few beats, never per beat over the whole recording. A beat is judged
once, when it has enough successors for the method's centred criteria, and a beat judged to be
an artifact is replaced by linear interpolation between its nearest normal neighbours, so the
series keeps one value per received beat. neurokit2 is imported lazily: it takes seconds.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from biofeedback.signal.measures import SignalConfig

log = logging.getLogger(__name__)

MIN_DETECTOR_BEATS = 16  # fewer beats give the detector no usable statistics
_KINDS = ("extra", "missed", "ectopic", "longshort")  # priority when a beat has several labels


def detect(rr_us: Sequence[int]) -> list[str | None]:
    """Artifact label per RR interval ("extra", "missed", "ectopic", "longshort" or None).

    Runs neurokit2's Kubios-method detector once over `rr_us` (whole microseconds). A detector
    failure on degenerate input is logged and treated as "no artifacts found".
    """
    import neurokit2 as nk  # lazy: heavy import, kept out of start-up

    peaks = np.concatenate(([0], np.cumsum(np.asarray(rr_us, dtype=np.int64))))
    labels: list[str | None] = [None] * len(rr_us)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            info, _ = nk.signal_fixpeaks(
                peaks, sampling_rate=1_000_000, iterative=False, method="kubios"
            )
    except (ValueError, IndexError, ZeroDivisionError, FloatingPointError) as exc:
        log.warning("artifact detector failed on %d beats, left uncorrected: %s", len(rr_us), exc)
        return labels
    for w in caught:
        log.debug("artifact detector warning: %s", w.message)
    for kind in reversed(_KINDS):
        for p in info.get(kind, []):
            i = int(p) - 1  # peak p closes interval p-1; peak 0 is the artificial start
            if 0 <= i < len(labels):
                labels[i] = kind
    return labels


def interpolate(values: Sequence[int], labels: Sequence[str | None], i: int) -> int:
    """Replacement for artifact `i`: linear between the nearest normal neighbours, in µs."""
    lo = next((j for j in range(i - 1, -1, -1) if labels[j] is None), None)
    hi = next((j for j in range(i + 1, len(values)) if labels[j] is None), None)
    if lo is None and hi is None:
        return int(values[i])
    if lo is None:
        assert hi is not None
        return int(values[hi])
    if hi is None:
        return int(values[lo])
    return round(values[lo] + (values[hi] - values[lo]) * (i - lo) / (hi - lo))


@dataclass(frozen=True, slots=True)
class Judgement:
    """The detector's verdict on one beat (segment index `k`)."""

    k: int
    value_us: int
    artifact: str | None


class ArtifactSchedule:
    """When the detector runs and which beats it judges, in terms of segment beat indices.

    Shared by the streaming pipeline and the offline path so both judge identical buffers.
    """

    __slots__ = ("buffer", "every", "lag")

    def __init__(self, config: SignalConfig) -> None:
        self.buffer = config.artifact_buffer_beats
        self.every = config.artifact_every_beats
        self.lag = config.artifact_lag_beats

    def due(self, k: int) -> bool:
        """Whether the detector runs after segment beat `k` arrived."""
        return (k + 1) % self.every == 0 and k + 1 >= MIN_DETECTOR_BEATS

    def run(self, k: int, judged_upto: int, values: Sequence[int]) -> list[Judgement]:
        """Judge beats judged_upto+1 .. k-lag; `values` are the current values of the buffer
        beats max(0, k+1-buffer) .. k."""
        start = k + 1 - len(values)
        last = k - self.lag
        if last <= judged_upto:
            return []
        labels = detect(values)
        out = []
        for kk in range(max(judged_upto + 1, start), last + 1):
            i = kk - start
            lab = labels[i]
            v = interpolate(values, labels, i) if lab is not None else int(values[i])
            out.append(Judgement(kk, v, lab))
        return out
