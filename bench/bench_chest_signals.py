"""The live service stage for one H10's raw data (service/chest_signals.py): what it costs the loop.

Run: .venv/bin/python bench/bench_chest_signals.py
`ChestSignals` is fed as the service feeds it: the real H10 record's ECG in its 73-sample frames
with the strap's own RR beats interleaved at their times, and chest acceleration at 200 Hz in
36-sample frames (12 breaths/min with two movement bursts), each frame as the decoded reading
the device layer yields; it publishes `breathing` and `movement` payloads (to a publisher that
keeps them) and submits the ECG verdicts and movement reports (to a list; the RR pipeline's own
cost is in bench_signal). Three runs: process CPU as % of a core per strap (median and range),
and the longest and 99th-percentile CPU time of one reading (what it holds the event loop for on
an idle core).
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

import numpy as np

from biofeedback.devices.pmd_readings import AccSamples, EcgSamples
from biofeedback.service.chest_signals import ChestSignals
from biofeedback.service.topics import Topic
from tests.ecg.h10_record import load_h10
from tests.ecg.synthetic_acc import breathing_trace, chest_acc

REPEATS = 3


class _Keep:
    def __init__(self) -> None:
        self.n = 0

    def publish_kind(self, client_id: str, kind: Topic, payload: dict[str, Any]) -> None:
        self.n += 1


def _inputs() -> tuple[list[tuple[str, Any]], float]:
    rec = load_h10()
    dur = float(rec.t[-1] - rec.t[0])
    items: list[tuple[float, str, Any]] = []
    for i in range(0, rec.t.size - 72, 73):
        t = tuple(float(x) for x in rec.t[i : i + 73])
        uv = tuple(int(x) for x in rec.ecg_uv[i : i + 73])
        items.append((t[-1], "pmd", EcgSamples("H10", t, uv, 0, t[-1], b"")))
    for t, rr in zip(rec.strap_t, rec.strap_rr_ms, strict=True):
        items.append((float(t), "beat", (float(t), float(rr))))
    fs = 200.0
    at, trace, _ = breathing_trace(12.0, dur, fs, seed=1)
    acc = chest_acc(at, trace, bursts=((100.0, 5.0), (300.0, 10.0)))
    for i in range(0, at.size - 35, 36):
        t = tuple(float(x) for x in at[i : i + 36])
        mg = tuple((int(a), int(b), int(c)) for a, b, c in np.rint(acc[i : i + 36]))
        items.append((t[-1], "pmd", AccSamples("H10", t, mg, 0, t[-1], b"")))
    items.sort(key=lambda x: x[0])
    return [(k, v) for _, k, v in items], dur


def run(items: list[tuple[str, Any]]) -> tuple[float, list[float], ChestSignals, int]:
    pub = _Keep()
    submitted: list[Any] = []
    chest = ChestSignals("c1", submit=submitted.append, publisher=pub)
    held: list[float] = []
    c0 = time.process_time()
    for kind, v in items:
        # thread CPU, not wall time: on a loaded machine wall time is mostly other processes
        w0 = time.thread_time()
        if kind == "beat":
            chest.strap_beat(*v)
        else:
            chest(v)
        held.append(time.thread_time() - w0)
    return time.process_time() - c0, held, chest, pub.n


def main() -> None:
    print(f"load average before: {os.getloadavg()}")
    items, dur = _inputs()
    pct: list[float] = []
    worst: list[float] = []
    p99: list[float] = []
    chest = None
    published = 0
    for _ in range(REPEATS):
        cpu, held, chest, published = run(items)
        pct.append(cpu / dur * 100.0)
        worst.append(max(held) * 1000.0)
        p99.append(float(np.percentile(held, 99)) * 1000.0)
    assert chest is not None
    print(f"{dur:.0f} s of ECG 130 Hz + strap RR + ACC 200 Hz, {len(items)} readings")
    print(
        f"CPU per strap: {statistics.median(pct):.3f} % of a core "
        f"(range {min(pct):.3f}-{max(pct):.3f})"
    )
    print(
        f"CPU of one reading (holds the loop): p99 {statistics.median(p99):.3f} ms "
        f"(range {min(p99):.3f}-{max(p99):.3f}), worst {statistics.median(worst):.2f} ms "
        f"(range {min(worst):.2f}-{max(worst):.2f})"
    )
    print(f"counts: {chest.counts}, messages published: {published}")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
