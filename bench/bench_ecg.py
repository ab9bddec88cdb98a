"""ECG and ACC processing cost per strap, and the R-peak / PVC scores on the real H10 record.

Run: .venv/bin/python bench/bench_ecg.py
Each cost is process CPU time over a 10-minute input fed in strap-sized chunks (ECG: 73 samples,
one H10 frame; ACC: 0.5 s), repeated 3 times: median and range. "% of a core" is CPU seconds
per second of signal x 100 (target: ECG + ACC <= 2 % per strap, issue 13).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

import numpy as np

from biofeedback.signal.chest_breathing import ChestBreathing
from biofeedback.signal.ecg import EcgPeakDetector
from biofeedback.signal.ecg_beats import BeatClassifier
from biofeedback.signal.movement import MovementMeter
from tests.ecg.h10_record import load_h10, pvc_score, rr_score, stream
from tests.ecg.synthetic_acc import breathing_trace, chest_acc

REPEATS = 3


def cpu_runs(fn: Callable[[], None]) -> list[float]:
    out = []
    for _ in range(REPEATS):
        t0 = time.process_time()
        fn()
        out.append(time.process_time() - t0)
    return out


def line(name: str, runs: list[float], signal_s: float) -> float:
    pct = [r / signal_s * 100.0 for r in runs]
    med = statistics.median(pct)
    print(f"{name:<52} {med:7.3f} % of a core  (range {min(pct):.3f}-{max(pct):.3f})")
    return med


def main() -> None:
    print(f"load average before: {os.getloadavg()}")
    rec = load_h10()
    dur = float(rec.t[-1] - rec.t[0])

    def ecg_detect() -> None:
        det = EcgPeakDetector()
        for i in range(0, rec.t.size, 73):
            det.push(rec.t[i : i + 73], rec.ecg_uv[i : i + 73])

    def ecg_chain() -> None:
        stream(rec)

    def ecg_classify_only() -> None:
        det = EcgPeakDetector()
        cl = BeatClassifier()
        for i in range(0, rec.t.size, 73):
            for b in det.push(rec.t[i : i + 73], rec.ecg_uv[i : i + 73]):
                cl.push(b)

    ecg = line("ECG R peaks (detector only)", cpu_runs(ecg_detect), dur)
    line("ECG R peaks + beat classes", cpu_runs(ecg_classify_only), dur)
    ecg = line("ECG chain (peaks + classes + strap RR reconciled)", cpu_runs(ecg_chain), dur)

    acc_total = {}
    for fs in (50.0, 200.0):
        t, trace, _ = breathing_trace(12.0, 600.0, fs, seed=1)
        acc = chest_acc(t, trace, bursts=((100.0, 5.0), (300.0, 10.0)))
        step = int(fs / 2)

        def movement(
            t: np.ndarray = t, acc: np.ndarray = acc, fs: float = fs, step: int = step
        ) -> None:
            m = MovementMeter(fs)
            for i in range(0, t.size, step):
                m.push(t[i : i + step], acc[i : i + step])

        def breathing(
            t: np.ndarray = t, acc: np.ndarray = acc, fs: float = fs, step: int = step
        ) -> None:
            b = ChestBreathing(fs)
            for i in range(0, t.size, step):
                b.push(t[i : i + step], acc[i : i + step])

        mv = line(f"ACC {fs:.0f} Hz movement index", cpu_runs(movement), 600.0)
        br = line(f"ACC {fs:.0f} Hz breathing (rate, breaths, events)", cpu_runs(breathing), 600.0)
        acc_total[fs] = mv + br
    print(f"{'per strap: ECG chain + ACC 200 Hz (medians added)':<52} "
          f"{ecg + acc_total[200.0]:7.3f} % of a core")  # fmt: skip

    s = stream(rec)
    r = rr_score(s.checks, rec.strap_rr_ms.size)
    p = pvc_score(rec, s)
    print(
        f"R peaks vs strap RR: {r.located}/{r.strap_beats} strap beats located "
        f"({r.located / r.strap_beats:.2%}), {r.one_to_one} intervals one-to-one, "
        f"|dRR| median {r.median_abs_ms:.2f} ms, p99 {r.p99_abs_ms:.2f}, max {r.max_abs_ms:.2f}"
    )
    print(
        f"PVC vs strap short-long reference: TP {p.tp} FP {p.fp} FN {p.fn}, precision "
        f"{p.precision:.3f}, recall {p.recall:.3f}; PVCs inside a strap interval: "
        f"{p.ecg_only_pvcs}"
    )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
