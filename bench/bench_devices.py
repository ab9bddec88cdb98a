"""Devices benchmark: 0x2A37 parse/encode, beat timing, physiology model, simulated strap, PMD.

Run: .venv/bin/python bench/bench_devices.py          (everything)
     .venv/bin/python bench/bench_devices.py --pmd    (PMD frame decoding only)
Prints one line per measurement (best of 5 repeats, CPU-bound, single thread;
the PMD lines in process CPU time).
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
import tracemalloc
from collections.abc import Callable

from biofeedback.clock import ScaledClock
from biofeedback.devices import pmd
from biofeedback.devices.hrm import encode_heart_rate_measurement, parse_heart_rate_measurement
from biofeedback.devices.physiology import Physiology
from biofeedback.devices.pmd_sim import PmdEmulator
from biofeedback.devices.pmd_stream import PmdFrameReader
from biofeedback.devices.readings import HeartRateMeasurement, Notification
from biofeedback.devices.simulated import SimulatedStrap, StrapEmulator
from biofeedback.devices.timing import BeatTimer


def best_of(
    fn: Callable[[], int], repeats: int = 5, timer: Callable[[], float] = time.perf_counter
) -> tuple[float, int]:
    """(best seconds, items) over `repeats` runs."""
    best = float("inf")
    items = 0
    for _ in range(repeats):
        t0 = timer()
        items = fn()
        best = min(best, timer() - t0)
    return best, items


def cpu_best_of(fn: Callable[[], int]) -> tuple[float, int]:
    """best_of in process CPU time: what the work costs, less sensitive to a shared machine."""
    return best_of(fn, timer=time.process_time)


def report(name: str, seconds: float, items: int, unit: str) -> None:
    print(f"{name:<44} {items / seconds:>12,.0f} {unit}/s   ({seconds * 1e6 / items:.2f} µs each)")


def bench_pmd() -> None:
    """PMD decoding: a 229-byte H10 ECG frame (73 samples) and ACC frames (target: ECG <= 20 µs)."""
    ecg = pmd.encode_ecg(
        1_714_920_600_566_839_040, [round(900 * math.sin(i / 5.0)) - 40 for i in range(73)]
    )
    assert len(ecg) == 229
    frames = [ecg] * 50_000

    def decode_ecg() -> int:
        for f in frames:
            pmd.decode_ecg(f)
        return len(frames)

    report("pmd.decode_ecg (229-byte frame, 73 samples)", *cpu_best_of(decode_ecg), "frames")

    acc_samples = [
        (round(30 * math.sin(i / 7)), round(20 * math.cos(i / 9)), 1000 + (i % 5))
        for i in range(36)
    ]
    raw_acc = [pmd.encode_acc_raw(1, acc_samples)] * 20_000

    def decode_acc_raw() -> int:
        for f in raw_acc:
            pmd.decode_acc(f)
        return len(raw_acc)

    report(
        f"pmd.decode_acc raw type 1 ({len(raw_acc[0])} B, 36 samples)",
        *cpu_best_of(decode_acc_raw),
        "frames",
    )
    delta = [pmd.encode_acc_delta(1, acc_samples)] * 20_000

    def decode_acc_delta() -> int:
        for f in delta:
            pmd.decode_acc(f)
        return len(delta)

    report(
        f"pmd.decode_acc delta 0x81 ({len(delta[0])} B, 36 samples)",
        *cpu_best_of(decode_acc_delta),
        "frames",
    )

    # The whole device-side cost of one strap's raw data: decode + per-sample timing + readings,
    # for 10 minutes of an H10 at ECG 130 Hz and ACC 200 Hz (about 1.8 + 5.6 frames a second).
    seconds = 600
    stream: list[tuple[float, bytes]] = []
    for k in range(int(seconds * 130 / 73)):
        t = k * 73 / 130
        stream.append((t + 0.02, pmd.encode_ecg(10**12 + round(t * 1e9), [k % 500] * 73)))
    for k in range(int(seconds * 200 / 36)):
        t = k * 36 / 200
        stream.append((t + 0.02, pmd.encode_acc_raw(10**12 + round(t * 1e9), acc_samples)))
    stream.sort()

    def read_all() -> int:
        reader = PmdFrameReader("bench")
        for t, raw in stream:
            reader.read(t, raw)
        return seconds

    cpu, _ = cpu_best_of(read_all)
    print(
        f"{'PmdFrameReader, H10 ECG 130 Hz + ACC 200 Hz':<44} {cpu / seconds * 1e6:>12,.0f} "
        f"µs CPU per second of data ({cpu / seconds * 100:.3f} % of a core)"
    )

    def simulate() -> int:
        model = Physiology(start_t=0.0, seed=1)
        emu = PmdEmulator(start_t=0.0, seed=1, movement_every_s=60.0)
        for t in range(1, seconds + 1):
            emu.add_beats(model.beats_until(float(t)))
            emu.frames_until(float(t))
        return seconds

    cpu, _ = cpu_best_of(simulate)
    print(
        f"{'PmdEmulator (simulated strap ECG + ACC bytes)':<44} {cpu / seconds * 1e6:>12,.0f} "
        f"µs CPU per simulated second ({cpu / seconds * 100:.3f} % of a core at speed 1)"
    )


def main() -> None:
    if "--pmd" in sys.argv[1:]:
        bench_pmd()
        return
    bench_pmd()
    payloads = [
        bytes.fromhex("104ed202c802"),
        bytes.fromhex("1643"),
        bytes.fromhex("164872037e03a003"),
        bytes.fromhex("1f2c01d2040003"),
    ] * 25_000

    def parse() -> int:
        for p in payloads:
            parse_heart_rate_measurement(p)
        return len(payloads)

    report("parse_heart_rate_measurement", *best_of(parse), "payloads")

    m = HeartRateMeasurement(72, True, True, None, (800, 812))

    def encode() -> int:
        for _ in range(100_000):
            encode_heart_rate_measurement(m)
        return 100_000

    report("encode_heart_rate_measurement (2 RR)", *best_of(encode), "payloads")

    raw = encode_heart_rate_measurement(m)

    def notification() -> int:
        timer = BeatTimer("bench")
        t = 0.0
        for _ in range(100_000):
            t += 1.0
            timer.notification(t, raw)
        return 100_000

    report("BeatTimer.notification (parse + 2 beats)", *best_of(notification), "notifications")

    def physiology() -> int:
        model = Physiology(start_t=0.0, seed=1)
        model.set_stimulus(exposure=0.5, paced_breathing_bpm=6.0)
        return len(model.beats_until(3600.0 * 2))  # two hours of beats

    report("Physiology.beats_until (2 h of beats)", *best_of(physiology), "beats")

    def emulator() -> int:
        emu = StrapEmulator("bench", start_t=0.0, seed=1)
        emu.start()
        n = 0
        for _ in range(3600):  # one hour of notifications
            n += len(emu.step(emu.next_due()))
        return n

    s, n = best_of(emulator)
    report("StrapEmulator.step (1 h of readings)", s, n, "readings")
    print(f"{'  -> one simulated hour takes':<44} {s:>12.3f} s of CPU")

    async def strap_run(speed: float, session_s: float) -> tuple[float, int]:
        clock = ScaledClock(speed=speed, start=0.0)
        count = 0
        t0 = time.perf_counter()
        async with SimulatedStrap(clock=clock) as strap:
            async for r in strap.readings():
                count += isinstance(r, Notification)
                if r.t >= session_s:
                    break
        return time.perf_counter() - t0, count

    wall, count = asyncio.run(strap_run(1000.0, 600.0))
    print(
        f"{'SimulatedStrap at speed 1000, 600 s session':<44} {wall:>12.3f} s wall "
        f"({count} notifications, ideal {600 / 1000:.3f} s)"
    )

    tracemalloc.start()
    emu = StrapEmulator("bench", start_t=0.0, seed=1)
    emu.start()
    for _ in range(3600 * 4):
        emu.step(emu.next_due())
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"{'StrapEmulator memory after 4 h':<44} {current / 1024:>12,.0f} KiB "
        f"(peak {peak / 1024:,.0f} KiB)"
    )


if __name__ == "__main__":
    main()
