"""Recording benchmark: the event loop's worst stall under disk load (sync on the loop, before,
and on the writer thread, after, side by side), per-call cost, flush cost, memory over a 3-hour
session, the spill budget in session hours, read-back, replay, report and export times.

Run: .venv/bin/python bench/bench_recording.py [--hours 3] [--stall-seconds 20] [--stall-only]
The session is the synthetic stream of `biofeedback.recording.synthetic` (real 0x2A37 bytes, about
one notification and one Tick per second, stand-in pipeline outputs): it isolates the recorder
from the signal pipeline. Flushes happen once per simulated second, as the runner does.

The stall part runs an asyncio loop as the service does (a session fed at real time, flush_if_due
after every input) next to a probe that sleeps 5 ms and measures how late it wakes, while a
background process loads the same disk (writes 4 MiB and fsyncs, over and over, in a bounded
64 MiB file). The two recorder modes alternate in equal slices under the same load:
`writer_thread=False` syncs inside flush_if_due on the loop (the recorder before issue 16), the
default hands the rows to the writer thread.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import multiprocessing
import os
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
from biofeedback.recording.writer import ROW_OVERHEAD, OsDisk

START_T = 1_764_000_000.0


def _kib(n: float) -> str:
    return f"{n / 1024:,.0f} KiB"


# ---- the event loop's worst stall under disk load --------------------------------------------


def _disk_load(path: str, stop: Any) -> None:
    """Background process: 4 MiB writes, each fsynced, cycling through a 64 MiB file."""
    chunk = os.urandom(4 << 20)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        offset = 0
        while not stop.is_set():
            os.pwrite(fd, chunk, offset)
            os.fsync(fd)
            offset = (offset + len(chunk)) % (64 << 20)
    finally:
        os.close(fd)


class _TimedDisk(OsDisk):
    """The real disk, timing each fdatasync (whichever thread runs it)."""

    def __init__(self) -> None:
        self.syncs: list[float] = []

    def datasync(self, fd: int) -> None:
        t0 = time.perf_counter()
        super().datasync(fd)
        self.syncs.append(time.perf_counter() - t0)


@dataclass
class _Stalls:
    lags: list[float] = field(default_factory=list)  # probe lateness, s
    calls: list[float] = field(default_factory=list)  # time in the recorder per input, s
    syncs: list[float] = field(default_factory=list)  # fdatasync durations, s
    inputs: int = 0


async def _session_slice(root: Path, name: str, *, mode: str, seconds: float, out: _Stalls) -> None:
    disk = _TimedDisk()
    rec = SessionRecorder(
        root,
        client_id=name,
        meta={"start_t": START_T},
        writer_thread=mode == "after",
        disk=disk,
    )
    record = mode != "none"  # "none": the same loop without recording, for the noise floor
    stop = asyncio.Event()
    probe_s = 0.005

    async def probe() -> None:
        while not stop.is_set():
            t0 = time.perf_counter()
            await asyncio.sleep(probe_s)
            out.lags.append(time.perf_counter() - t0 - probe_s)

    async def feed() -> None:
        t0 = time.monotonic()
        for step in synthetic_session(seconds + 5, start_t=START_T, seed=3):
            due = t0 + (step.item.t - START_T)
            now = time.monotonic()
            if now - t0 >= seconds:
                break
            if due > now:
                await asyncio.sleep(due - now)
            c0 = time.perf_counter()
            if record:
                rec.input(step.item, step.seq)
                for u in step.updates:
                    rec.update(u)
                if step.events:
                    rec.events(step.events)
                rec.flush_if_due(time.monotonic())
            out.calls.append(time.perf_counter() - c0)
            out.inputs += 1
        stop.set()

    with rec:
        await asyncio.gather(probe(), feed())
    out.syncs.extend(disk.syncs)


def _pct(xs: list[float], q: float) -> float:
    ys = sorted(xs)
    return ys[min(len(ys) - 1, int(q * len(ys)))] if ys else float("nan")


def loop_stalls(root: Path, seconds: float, slices: int = 4) -> None:
    """Worst event-loop stall with the sync on the loop (before) and on the writer thread
    (after), in alternating slices under the same background disk load."""
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    load = ctx.Process(target=_disk_load, args=(str(root / "load.bin"), stop), daemon=True)
    load.start()
    results = {"before": _Stalls(), "after": _Stalls(), "none": _Stalls()}
    try:
        time.sleep(2.0)  # let the load reach the disk
        per_slice = seconds / slices
        for i in range(slices):
            order = ("before", "after", "none") if i % 2 == 0 else ("none", "after", "before")
            for mode in order:
                asyncio.run(
                    _session_slice(
                        root, f"{mode}{i}", mode=mode, seconds=per_slice, out=results[mode]
                    )
                )
    finally:
        stop.set()
        load.join(timeout=30)
        (root / "load.bin").unlink(missing_ok=True)
    print(
        f"event loop under disk load ({seconds:g} s per mode in {slices} alternating slices; a "
        f"5 ms probe; a background process writing 4 MiB + fsync in a loop):"
    )
    labels = {
        "before": "sync on the loop (writer_thread=False, before)",
        "after": "writer thread (default, after)",
        "none": "no recording (the same loop: noise floor of the probe)",
    }
    for mode, r in results.items():
        ms = [1e3 * x for x in r.lags]
        cs = [1e3 * x for x in r.calls]
        sy = [1e3 * x for x in r.syncs]
        syncs = (
            f"; fdatasync median {_pct(sy, 0.5):.1f} ms, max {max(sy):.1f} ms over "
            f"{len(sy):,} syncs"
            if sy
            else ""
        )
        print(
            f"  {labels[mode]}: loop blocked in recorder calls max {max(cs):.2f} ms, p99 "
            f"{_pct(cs, 0.99):.2f} ms, median {_pct(cs, 0.5):.3f} ms over {len(cs):,} inputs; "
            f"5 ms probe late by max {max(ms):.1f} ms, p99.9 {_pct(ms, 0.999):.2f} ms, p99 "
            f"{_pct(ms, 0.99):.2f} ms, median {_pct(ms, 0.5):.2f} ms over {len(ms):,} probes"
            f"{syncs}"
        )


def flush_handoff(root: Path, rounds: int = 6) -> None:
    """flush() with the writer thread and with writer_thread=False, alternating at the same
    moment: what the hand-off to the thread adds to a write round."""
    res: dict[bool, list[float]] = {True: [], False: []}
    for rnd in range(rounds):
        for threaded in (True, False):
            rec = SessionRecorder(
                root,
                client_id=f"f{rnd}{threaded}",
                meta={"start_t": START_T},
                writer_thread=threaded,
            )
            last = START_T
            for step in synthetic_session(100, start_t=START_T, seed=1):
                rec.input(step.item, step.seq)
                for u in step.updates:
                    rec.update(u)
                if step.item.t - last >= 1.0:
                    last = step.item.t
                    f0 = time.perf_counter()
                    rec.flush()
                    res[threaded].append(time.perf_counter() - f0)
            rec.close()
    for threaded, xs in res.items():
        ms = [1e3 * x for x in xs]
        print(
            f"flush() {'writer thread' if threaded else 'writer_thread=False'}: median "
            f"{_pct(ms, 0.5):.2f} ms, p90 {_pct(ms, 0.9):.2f} ms, max {max(ms):.1f} ms over "
            f"{len(ms)} flushes"
        )


# ---- the other measures -------------------------------------------------------------------------


def speed(root: Path) -> None:
    """Per-call cost without tracemalloc: one simulated hour, steps generated beforehand."""
    steps = list(synthetic_session(3600, start_t=START_T, seed=2))
    calls = sum(1 + len(s.updates) + bool(s.events) for s in steps)
    best = float("inf")
    for i in range(3):
        # Nothing is flushed while timing: this phase measures formatting and queueing only.
        rec = SessionRecorder(root, client_id=f"speed{i}", meta={"start_t": START_T})
        c0 = time.perf_counter()
        for step in steps:
            rec.input(step.item, step.seq)
            for u in step.updates:
                rec.update(u)
            if step.events:
                rec.events(step.events)
        best = min(best, time.perf_counter() - c0)
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
    ap.add_argument(
        "--stall-seconds", type=float, default=20.0, help="per recorder mode, under disk load"
    )
    ap.add_argument("--stall-only", action="store_true", help="only the event-loop stall part")
    ap.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="a folder on the disk to measure (default: the temp folder; not a RAM-backed one)",
    )
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    duration = args.hours * 3600
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        print(f"stall part in {d}")
        loop_stalls(Path(d), args.stall_seconds)
    if args.stall_only:
        return
    if args.real_core:
        real_core(args.hours)
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        speed(root)
        flush_handoff(root)
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
            f"flush() (hand-off to the writer thread, append + fdatasync of ~1 s of rows to the "
            f"files with new rows, wait): median {1e3 * fl[nf // 2]:.2f} ms, p99 "
            f"{1e3 * fl[int(nf * 0.99)]:.2f} ms, max {1e3 * fl[-1]:.1f} ms over {nf:,} flushes"
        )
        # What rows cost against the spill budget: their characters plus ROW_OVERHEAD each.
        chars = sum(p.stat().st_size for p in rec.path.glob("*.tsv"))
        rows = sum(info.row_counts.values())
        per_hour = (chars + rows * ROW_OVERHEAD) / args.hours
        budget = rec.spill_budget_bytes
        samples_until = budget - budget // 8  # samples stop at 7/8 of the budget
        print(
            f"spill budget: {per_hour / 2**20:.2f} MiB of held rows per session hour at "
            f"{info.row_counts['beats'] / (args.hours * 60):.0f} beats/min; the default "
            f"{budget / 2**20:.0f} MiB holds {samples_until / per_hour:.1f} h of a full disk "
            f"before samples are dropped"
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
