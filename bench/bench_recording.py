"""Recording benchmark: per-call cost, flush cost, memory over a 3-hour session, read-back,
replay, report and export times.

Run: .venv/bin/python bench/bench_recording.py [--hours 3]
The session is the synthetic stream of `biofeedback.recording.synthetic` (real 0x2A37 bytes, about
one notification and one Tick per second, stand-in pipeline outputs): it isolates the recorder
from the signal pipeline. Flushes happen once per simulated second, as the runner does.
"""

from __future__ import annotations

import argparse
import gc
import logging
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from biofeedback.recording import (
    SessionRecorder,
    export_bids,
    iter_inputs,
    open_session,
    write_report,
)
from biofeedback.recording.synthetic import synthetic_session

START_T = 1_764_000_000.0


def _kib(n: float) -> str:
    return f"{n / 1024:,.0f} KiB"


def speed(root: Path) -> None:
    """Per-call cost without tracemalloc: one simulated hour, steps generated beforehand."""
    steps = list(synthetic_session(3600, start_t=START_T, seed=2))
    rec = SessionRecorder(root, client_id="speed", meta={"start_t": START_T})
    calls = sum(1 + len(s.updates) + bool(s.events) for s in steps)
    best = float("inf")
    for _ in range(3):
        c0 = time.perf_counter()
        for step in steps:
            rec.input(step.item, step.seq)
            for u in step.updates:
                rec.update(u)
            if step.events:
                rec.events(step.events)
        best = min(best, time.perf_counter() - c0)
        for w in rec._writers.values():  # drop the rows: this phase measures formatting only
            w.pending.clear()
    rec.close()
    print(
        f"recorder calls (input/update/events, formatting + buffering): {calls:,} per simulated "
        f"hour in {best:.3f} s = {1e6 * best / calls:.1f} µs/call, "
        f"{100 * best / 3600:.4f} % of one core at real time"
    )


def real_core(hours: float) -> None:
    """Memory of the whole session loop: simulated strap -> real SessionCore -> recorder."""
    from tests.recording.closed_loop import run_session

    samples: list[tuple[float, int, int]] = []

    def on_tick(elapsed: float) -> None:
        if elapsed % 1800 < 1.0 and elapsed >= 1800:
            gc.collect()
            cur, peak = tracemalloc.get_traced_memory()
            samples.append((elapsed / 3600, cur, peak))

    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        tracemalloc.start()
        path = run_session(Path(d), hours * 3600, on_tick=on_tick)
        tracemalloc.stop()
        info = open_session(path)
        print(
            f"real core: {hours:g} h simulated in {time.perf_counter() - t0:.0f} s wall "
            f"(with tracemalloc), {info.row_counts['beats']:,} beats, "
            f"{info.row_counts['events']:,} events"
        )
        for h, cur, peak in samples:
            print(f"real core tracemalloc at {h:4.1f} h: current {_kib(cur)}, peak {_kib(peak)}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hours", type=float, default=3.0)
    ap.add_argument(
        "--real-core",
        action="store_true",
        help="also run the strap -> SessionCore -> recorder loop",
    )
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    duration = args.hours * 3600
    if args.real_core:
        real_core(args.hours)
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        speed(root)
        # Memory: tracemalloc of everything allocated while recording, sampled every 30 min
        # after a gc pass; flush times go into an array allocated before tracing starts.
        flushes = np.zeros(int(duration) + 10)
        nf = 0
        samples: list[tuple[float, int, int]] = []
        next_sample = START_T + 1800
        last_second = START_T
        t0 = time.perf_counter()
        tracemalloc.start()
        rec = SessionRecorder(root, client_id="bench", meta={"start_t": START_T})
        for step in synthetic_session(duration, start_t=START_T, seed=1):
            rec.input(step.item, step.seq)
            for u in step.updates:
                rec.update(u)
            if step.events:
                rec.events(step.events)
            t = step.item.t
            if t - last_second >= 1.0:  # one flush per simulated second, as the runner
                last_second = t
                f0 = time.perf_counter()
                rec.flush()
                flushes[nf] = time.perf_counter() - f0
                nf += 1
            if t >= next_sample:
                gc.collect()
                cur, peak = tracemalloc.get_traced_memory()
                samples.append(((t - START_T) / 3600, cur, peak))
                next_sample += 1800
        rec.close()
        wall = time.perf_counter() - t0
        tracemalloc.stop()
        info = open_session(rec.path)
        size = sum(p.stat().st_size for p in rec.path.iterdir())
        print(
            f"session: {args.hours:g} h simulated, {info.row_counts['inputs']:,} inputs, "
            f"{info.row_counts['beats']:,} beats, {size / 1e6:.1f} MB on disk, "
            f"{wall:.1f} s wall to generate + record + flush (with tracemalloc)"
        )
        fl = np.sort(flushes[:nf])
        print(
            f"flush (append + fdatasync of ~1 s of rows to the files that have new rows): median "
            f"{1e3 * fl[nf // 2]:.2f} ms, p99 {1e3 * fl[int(nf * 0.99)]:.2f} ms, "
            f"max {1e3 * fl[-1]:.1f} ms over {nf:,} flushes"
        )
        for h, cur, peak in samples:
            print(f"tracemalloc at {h:4.1f} h: current {_kib(cur)}, peak {_kib(peak)}")
        c0 = time.perf_counter()
        info = open_session(rec.path)
        print(f"open_session (validate all files): {time.perf_counter() - c0:.2f} s")
        c0 = time.perf_counter()
        n = sum(1 for _ in iter_inputs(rec.path))
        print(f"iter_inputs ({n:,} inputs, re-parsed): {time.perf_counter() - c0:.2f} s")
        c0 = time.perf_counter()
        write_report(rec.path, root / "report")
        print(f"write_report: {time.perf_counter() - c0:.2f} s")
        c0 = time.perf_counter()
        export_bids(rec.path, root / "bids")
        print(f"export_bids: {time.perf_counter() - c0:.2f} s")
        gz = SessionRecorder(root, client_id="bench3", meta={"start_t": START_T})
        for step in synthetic_session(duration, start_t=START_T, seed=1):
            gz.input(step.item, step.seq)
            for u in step.updates:
                gz.update(u)
        c0 = time.perf_counter()
        gz.close(compress=True)
        gsize = sum(p.stat().st_size for p in gz.path.iterdir())
        print(
            f"close(compress=True): {time.perf_counter() - c0:.2f} s, {gsize / 1e6:.1f} MB gzipped"
        )


if __name__ == "__main__":
    main()
