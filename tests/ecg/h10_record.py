"""The real Polar H10 record (../shared/data/polar-h10-ecg-pvc): loaders and the scoring used by
the tests and bench/bench_ecg.py (docs/ecg.md explains the reference)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from biofeedback.signal.ecg import EcgBeat, EcgPeakDetector
from biofeedback.signal.ecg_beats import BeatClass, BeatClassifier, ClassifiedBeat
from biofeedback.signal.ecg_reconcile import Agreement, RrCheck, RrReconciler
from tests.support import SHARED_DATA, require

F64 = npt.NDArray[np.float64]
RECORD = SHARED_DATA / "polar-h10-ecg-pvc" / "polar_h10.csv"


@dataclass(frozen=True)
class H10Record:
    """Sample times (s from the first sample), ECG (µV), and the strap's RR (ms) with the time
    of each beat reconstructed from its notification (the last RR of a notification ends at the
    notification's row time, earlier ones that much before, pushed forward where needed to stay
    increasing: what devices/timing.BeatTimer does)."""

    t: F64
    ecg_uv: F64
    strap_t: F64
    strap_rr_ms: F64


def record_path() -> Path:
    return RECORD


def load_h10(path: Path | None = None) -> H10Record:
    """Load the record; skip (or fail under CI=true) when the shared data is absent."""
    p = path or RECORD
    require(p.exists(), f"the real H10 record {p} (../shared/data/polar-h10-ecg-pvc)")
    tn: list[int] = []
    ecg: list[float] = []
    notes: list[tuple[int, list[float]]] = []
    with p.open(newline="") as f:
        for row in csv.DictReader(f):
            tn.append(int(row["time_ns"]))
            ecg.append(float(row["ecg_mV"]) * 1000.0)
            rr = row["rr_ms"]
            if rr not in ("", "NA"):
                if row["hr_bpm"] not in ("", "NA") or not notes:
                    notes.append((len(tn) - 1, []))
                notes[-1][1].append(float(rr))
    t0 = tn[0]
    t = (np.asarray(tn, dtype=np.int64) - t0) / 1e9
    st: list[float] = []
    srr: list[float] = []
    for i, rrs in notes:
        end = float(t[i])
        back = np.cumsum(rrs[::-1])[::-1] - rrs  # RR after each one in this notification
        for b, v in zip(back, rrs, strict=True):
            tb = end - b / 1000.0
            if st and tb <= st[-1]:  # as devices/timing.BeatTimer: never backwards
                tb = st[-1] + 1e-3
            st.append(tb)
            srr.append(v)
    return H10Record(t, np.asarray(ecg), np.asarray(st), np.asarray(srr))


def pvc_reference(rr_ms: F64) -> npt.NDArray[np.bool_]:
    """Which strap beats are premature ventricular by the strap's own timing alone (independent
    of the ECG pipeline): a coupling interval under 40 % of itself plus the following pause
    (alternating short-long; a normal pair is 50 %), or the first beat of a couplet (shorter
    than 70 % of the interval before it, that one not a pause after a PVC, and followed by such a
    beat)."""
    n = rr_ms.size
    v = np.zeros(n, dtype=bool)
    for i in range(n - 1):
        v[i] = rr_ms[i] / (rr_ms[i] + rr_ms[i + 1]) < 0.4
    for i in range(2, n - 1):
        if v[i + 1] and rr_ms[i] < 0.7 * rr_ms[i - 1] and not v[i - 2]:
            v[i] = True
    return v


@dataclass(frozen=True)
class Streamed:
    """The record through the live chain, in strap-frame-sized chunks (73 samples)."""

    beats: list[EcgBeat]
    classified: list[ClassifiedBeat]
    checks: list[RrCheck]


def stream(rec: H10Record, chunk: int = 73) -> Streamed:
    """Detector -> classifier -> reconciler, fed as a service would: ECG frames and the strap
    RR that has arrived by the end of each frame, resolved as far as the ECG allows."""
    det = EcgPeakDetector()
    cl = BeatClassifier()
    rc = RrReconciler()
    beats: list[EcgBeat] = []
    classified: list[ClassifiedBeat] = []
    checks: list[RrCheck] = []
    si = 0
    n = rec.t.size
    for i in range(0, n, chunk):
        new = det.push(rec.t[i : i + chunk], rec.ecg_uv[i : i + chunk])
        beats += new
        for b in new:
            c = cl.push(b)
            classified += c
            rc.push_ecg(c)
        now = rec.t[min(i + chunk, n) - 1]
        while si < rec.strap_t.size and rec.strap_t[si] <= now:
            rc.push_strap(float(rec.strap_t[si]), float(rec.strap_rr_ms[si]))
            si += 1
        # the classifier holds the newest beat back for its pause: the ECG is answered up to it
        pending = cl.pending_t
        checks += rc.resolve(pending - 1e-6 if pending is not None else None)
    tail = cl.flush()
    classified += tail
    rc.push_ecg(tail)
    checks += rc.resolve(float(rec.t[-1]))
    return Streamed(beats, classified, checks)


@dataclass(frozen=True)
class RrScore:
    strap_beats: int
    located: int  # strap beats whose own beat the ECG shows (match or split)
    one_to_one: int  # strap intervals equal to one ECG interval
    median_abs_ms: float
    p99_abs_ms: float
    max_abs_ms: float


def rr_score(checks: list[RrCheck], strap_beats: int) -> RrScore:
    """Strap RR against the ECG (docs/ecg.md, "R peaks: scored")."""
    d = np.abs([c.difference_ms for c in checks if c.agreement is Agreement.MATCH])
    located = sum(c.agreement in (Agreement.MATCH, Agreement.ECG_SPLITS) for c in checks)
    return RrScore(
        strap_beats,
        located,
        int(d.size),
        float(np.median(d)),
        float(np.percentile(d, 99)),
        float(d.max()),
    )


@dataclass(frozen=True)
class PvcScore:
    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    ecg_only_pvcs: int  # PVCs inside a strap interval (the strap missed them)


def pvc_score(rec: H10Record, s: Streamed, skip_s: float = 10.0) -> PvcScore:
    """PVC classification against `pvc_reference` on the strap beats the ECG located one-to-one,
    after `skip_s` (the classifier's template and rhythm warm-up)."""
    ref = pvc_reference(rec.strap_rr_ms)
    by_t = {c.t: c for c in s.classified}
    index = {float(t): i for i, t in enumerate(rec.strap_t)}
    tp = fp = fn = 0
    for c in s.checks:
        if c.agreement is not Agreement.MATCH or c.ecg_t is None or c.ecg_t < skip_s:
            continue
        pred = by_t[c.ecg_t].beat_class is BeatClass.PREMATURE_VENTRICULAR
        truth = bool(ref[index[c.t]])
        tp += pred and truth
        fp += pred and not truth
        fn += truth and not pred
    ecg_only = 0
    for c in s.checks:
        if c.agreement is Agreement.ECG_SPLITS and c.ecg_t is not None:
            inner = [
                b
                for b in s.classified
                if c.ecg_t - c.strap_rr_ms / 1000.0 + 0.05 < b.t < c.ecg_t - 0.05
            ]
            ecg_only += sum(b.beat_class is BeatClass.PREMATURE_VENTRICULAR for b in inner)
    return PvcScore(tp, fp, fn, tp / max(tp + fp, 1), tp / max(tp + fn, 1), ecg_only)
