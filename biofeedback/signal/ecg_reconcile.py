"""The strap's own RR against the beats its ECG shows: agreement, and a verdict per interval (pure).

A chest strap such as the Polar H10 sends two things: RR intervals it measured itself, and its raw
ECG. `RrReconciler` matches every strap interval to the ECG beats that bound it and says

* how well they agree (`RrCheck`: the ECG's interval, the difference, how many ECG beats lie
  in the strap's interval), so a disagreement is reported, never hidden;
* what the ECG says the interval is (`EcgVerdict`): NORMAL (normal beat to normal beat: the
  artifact stage must never correct it, however large a breathing swing makes it), ECTOPIC
  (it ends at, starts from or spans a premature beat: it is not a normal-to-normal interval
  and is corrected), or UNKNOWN (the ECG cannot tell: the RR artifact detector decides alone).

Matching. Once aligned, strap beat i is expected at the ECG time of strap beat i-1 plus the
strap's RR (the RR is exact to a millisecond; the strap beat's time on the service clock is not,
since a notification carries the RR of up to a second of beats); the nearest ECG beat within
`MATCH_TOL_S` of that is its beat. To align (at the start and after a beat that cannot be
matched), the newest strap intervals are compared with every run of ECG intervals that ends
within `ACQUIRE_BEFORE_S` before to `ACQUIRE_AFTER_S` after the strap beat's time; the run with the
most matching newest intervals (at least two, each within `ACQUIRE_TOL_MS`) is taken, ties going to
the run nearest the streams' running median offset (a regular rhythm repeats its intervals), then
to the smallest mean difference. A wrong alignment does not last: the next interval that differs
by more than `MATCH_TOL_S` breaks it and alignment starts again.

Input order. The ECG trails the strap by the detector's latency (about half a second) plus the
classifier's one beat, so strap intervals wait in a queue until the ECG has been searched past the
time they need (`resolve(horizon_t)`). The RR artifact stage judges a beat only 6 beats after it
arrives (artifacts.py), so the verdict still comes in time.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from biofeedback.signal.artifacts import Judgement
from biofeedback.signal.ecg_beats import PREMATURE, BeatClass, ClassifiedBeat

MATCH_TOL_S = 0.03
ACQUIRE_BEFORE_S = 3.0
ACQUIRE_AFTER_S = 1.0
ACQUIRE_TOL_MS = 15.0
ACQUIRE_BEATS = 4  # strap intervals compared when aligning
LAG_BEATS = 15  # matches in the running median of the strap-to-ECG time offset
KEEP_S = 30.0  # ECG beats kept behind the newest


class EcgVerdict(enum.StrEnum):
    """What the ECG says about one RR interval, for the artifact stage."""

    NORMAL = "normal"  # normal-to-normal: never corrected
    ECTOPIC = "ectopic"  # ends at, starts from or spans a premature beat: corrected
    UNKNOWN = "unknown"  # the ECG cannot tell: the RR detector decides


class Agreement(enum.StrEnum):
    """How the strap's interval relates to the ECG's beats."""

    MATCH = "match"  # one ECG interval between the same two beats
    ECG_SPLITS = "ecg_splits"  # the ECG shows beat(s) inside the strap's interval
    ECG_MISSING = "ecg_missing"  # no ECG beat where the strap put one
    UNSYNCED = "unsynced"  # the two streams are not aligned (start, gap, noise)


@dataclass(frozen=True, slots=True)
class RrCheck:
    """One strap interval checked against the ECG.

    `t` is the strap beat's time exactly as given to `push_strap` (the key the RR pipeline
    knows the beat by). `ecg_rr_ms` is the ECG's time between the same two beats, over all
    `ecg_beats` ECG beats inside it (1 for a match); `difference_ms` is strap minus ECG.
    """

    t: float
    strap_rr_ms: float
    ecg_rr_ms: float | None
    difference_ms: float | None
    agreement: Agreement
    verdict: EcgVerdict
    ecg_beats: int
    ecg_t: float | None = None  # the ECG's time of the strap's beat (its R peak)


def interval_verdict(start: BeatClass | None, inside: Iterable[BeatClass]) -> EcgVerdict:
    """The verdict on an interval from a beat of class `start` through the beats `inside`
    (the last one ending it)."""
    classes = list(inside)
    if not classes:
        return EcgVerdict.UNKNOWN
    if start in PREMATURE or any(c in PREMATURE for c in classes):
        return EcgVerdict.ECTOPIC
    if start is BeatClass.NORMAL and classes == [BeatClass.NORMAL]:
        return EcgVerdict.NORMAL
    return EcgVerdict.UNKNOWN


@dataclass(slots=True)
class _Strap:
    t: float
    rr_ms: float


class RrReconciler:
    """Matches strap RR to classified ECG beats (see the module docstring)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Start over (a gap in either stream)."""
        self._ecg: list[ClassifiedBeat] = []
        self._base = 0  # global index of _ecg[0]
        self._pending: deque[_Strap] = deque()
        self._history: deque[float] = deque(maxlen=ACQUIRE_BEATS)  # recent strap RR (ms)
        self._anchor: int | None = None  # global index of the ECG beat of the last strap beat
        self._lags: deque[float] = deque(maxlen=LAG_BEATS)  # strap time - ECG time, matches
        self._lag: float | None = None

    def push_ecg(self, beats: Iterable[ClassifiedBeat]) -> None:
        """Add classified ECG beats (in time order, on the strap beats' clock)."""
        self._ecg.extend(beats)

    def push_strap(self, t: float, rr_ms: float) -> None:
        """Add one strap RR interval ending at `t` (s), as given to the RR pipeline."""
        self._pending.append(_Strap(float(t), float(rr_ms)))

    def resolve(self, horizon_t: float | None) -> list[RrCheck]:
        """Check every queued strap interval the ECG, searched up to `horizon_t`, can answer."""
        out: list[RrCheck] = []
        if horizon_t is None:
            return out
        while self._pending:
            s = self._pending[0]
            if self._anchor is not None:
                expected = self._time(self._anchor) + s.rr_ms / 1000.0
                if horizon_t < expected + MATCH_TOL_S:
                    break
                out.append(self._follow(s, expected))
            else:
                if horizon_t < s.t + ACQUIRE_AFTER_S:
                    break
                out.append(self._acquire(s))
            self._history.append(s.rr_ms)
            self._pending.popleft()
        self._trim(horizon_t)
        return out

    # ---- internals -------------------------------------------------------------------------

    def _time(self, k: int) -> float:
        return self._ecg[k - self._base].t

    def _follow(self, s: _Strap, expected: float) -> RrCheck:
        anchor = self._anchor
        assert anchor is not None
        j = self._nearest(expected)
        if j is None or j <= anchor:
            self._anchor = None
            return RrCheck(s.t, s.rr_ms, None, None, Agreement.ECG_MISSING, EcgVerdict.UNKNOWN, 0)
        return self._check(s, anchor, j)

    def _check(self, s: _Strap, a: int, j: int) -> RrCheck:
        ecg = self._ecg
        start = ecg[a - self._base]
        inside = ecg[a + 1 - self._base : j + 1 - self._base]
        ecg_rr = (ecg[j - self._base].t - start.t) * 1000.0
        n = len(inside)
        agreement = Agreement.MATCH if n == 1 else Agreement.ECG_SPLITS
        verdict = interval_verdict(start.beat_class, (b.beat_class for b in inside))
        self._anchor = j
        end_t = ecg[j - self._base].t
        if n == 1:
            self._lags.append(s.t - end_t)
            self._lag = sorted(self._lags)[len(self._lags) // 2]
        return RrCheck(s.t, s.rr_ms, ecg_rr, s.rr_ms - ecg_rr, agreement, verdict, n, end_t)

    def _nearest(self, t: float) -> int | None:
        best: int | None = None
        best_d = MATCH_TOL_S
        for i in range(len(self._ecg) - 1, -1, -1):
            d = abs(self._ecg[i].t - t)
            if d <= best_d:
                best, best_d = i + self._base, d
            elif self._ecg[i].t < t - MATCH_TOL_S:
                break
        return best

    def _acquire(self, s: _Strap) -> RrCheck:
        want = [*self._history, s.rr_ms]
        ecg = self._ecg
        best: tuple[tuple[int, float, float], int] | None = None
        for i, b in enumerate(ecg):
            if not (s.t - ACQUIRE_BEFORE_S <= b.t <= s.t + ACQUIRE_AFTER_S) or i == 0:
                continue
            total = 0.0
            m = 0
            for back, rr in enumerate(reversed(want)):
                k = i - back
                if k < 1:
                    break
                d = abs((ecg[k].t - ecg[k - 1].t) * 1000.0 - rr)
                if d > ACQUIRE_TOL_MS:
                    break  # the newest m intervals match: older strap ones may be bad
                total += d
                m += 1
            if m < min(len(want), 2):
                continue
            # more matching intervals first; then, once the two streams' offset is known, the
            # candidate nearest to it (a regular rhythm repeats its intervals); then the closest
            lag = abs(s.t - b.t - self._lag) if self._lag is not None else 0.0
            score = (-m, round(lag, 1), total / m)
            if best is None or score < best[0]:
                best = (score, i)
        if best is None:
            return RrCheck(s.t, s.rr_ms, None, None, Agreement.UNSYNCED, EcgVerdict.UNKNOWN, 0)
        j = best[1] + self._base
        return self._check(s, j - 1, j)

    def _trim(self, horizon_t: float) -> None:
        keep = horizon_t - KEEP_S
        drop = 0
        limit = len(self._ecg) - 2
        if self._anchor is not None:
            limit = min(limit, self._anchor - self._base)
        while drop < limit and self._ecg[drop].t < keep:
            drop += 1
        if drop:
            del self._ecg[:drop]
            self._base += drop


ECG_ECTOPIC = "ecg_ectopic"  # CleanBeat.artifact of an interval corrected on the ECG's word alone


def overrule(
    j: Judgement,
    verdict: EcgVerdict | None,
    recent_normal_us: Sequence[int],
    pair_us: int | None = None,
) -> Judgement:
    """The RR detector's judgement `j` after the ECG's verdict on the same interval.

    NORMAL: never corrected, whatever the RR detector thought (a breathing swing). ECTOPIC:
    always corrected, to the median of the `recent_normal_us` intervals before it (the RR
    detector's label kept when it had one, else ECG_ECTOPIC); with none (bigeminy has no
    normal-to-normal interval), to `pair_us`, half the coupling interval plus its pause, one
    sinus cycle; with neither the RR detector's judgement stands. UNKNOWN or no verdict: the
    RR detector decides.
    """
    if verdict is EcgVerdict.NORMAL and j.artifact is not None:
        return Judgement(j.k, j.value_us, None)
    if verdict is EcgVerdict.ECTOPIC and recent_normal_us:
        # the RR detector's own value interpolates between beats it took for normal, which in
        # bigeminy or trigeminy are often compensatory pauses: the ECG knows better
        v = sorted(recent_normal_us)
        h = len(v) // 2
        value = v[h] if len(v) % 2 else (v[h - 1] + v[h]) // 2
        return Judgement(j.k, value, j.artifact or ECG_ECTOPIC)
    if verdict is EcgVerdict.ECTOPIC and pair_us is not None:
        # no normal-to-normal interval nearby (bigeminy): a PVC leaves the sinus rhythm
        # running, so coupling interval + compensatory pause span two sinus cycles
        return Judgement(j.k, pair_us, j.artifact or ECG_ECTOPIC)
    return j
