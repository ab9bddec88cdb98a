"""Resonance-assessment benchmark: the cost of scoring one paced block, next to its length.

Run: .venv/bin/python bench/bench_resonance.py [--repeat N]
Prints a Markdown table for docs/benchmarks.md ("## Resonance assessment"). CPU time
(`time.process_time`) and wall time per call, median over the calls of one run; run it three
times and report the median and spread of the runs. Numbers depend on machine load.

Measures, on a simulated client (resonance 5.5 /min, default noise) paced through the default
five 2-minute blocks:
- `score_block` for one block (the default window of 101.5-110 s, ~120-140 beats): the spectrum
  (frequency.py), the HR grid, peak-to-trough, phase, smoothness;
- `choose` over five blocks;
- a whole `AssessmentSession` run fed in 1 s steps (bookkeeping plus five scorings).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from biofeedback.exposure.assessment import AssessmentProtocol
from biofeedback.signal.resonance import choose, score_block
from tests.resonance.sim import BLOCK_S, client, simulate


def timed(fn: object, n: int) -> tuple[float, float]:
    """Median (CPU s, wall s) per call over n calls."""
    cpu: list[float] = []
    wall: list[float] = []
    for _ in range(n):
        c0, w0 = time.process_time(), time.perf_counter()
        fn()  # type: ignore[operator]
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return statistics.median(cpu), statistics.median(wall)


def live_overhead() -> None:
    """The assessment hosted by the live SessionCore (service/assessment_host.py): CPU per core
    input over 15 min of a simulated strap's notifications and ticks, with the assessment running
    its default five blocks and without it (the same inputs otherwise)."""
    from biofeedback.devices.physiology import SimProfile
    from biofeedback.devices.simulated import StrapEmulator
    from biofeedback.exposure.messages import (
        AssessmentConsent,
        AssessmentOffer,
        CalibrationDone,
        Decline,
        Role,
        Tick,
    )
    from tests.recording.closed_loop import T0, make_core

    strap = StrapEmulator("SimStrap", start_t=T0, seed=1, profile=SimProfile(resonance_bpm=5.5))
    items: list[object] = list(strap.start())
    next_tick, end = T0 + 1.0, T0 + 15 * 60
    while True:
        due = strap.next_due()
        t = min(due, next_tick)
        if t > end:
            break
        if t == next_tick:
            items.append(Tick(t))
            next_tick += 1.0
        else:
            items.extend(strap.step(due))

    def run(with_assessment: bool) -> tuple[float, int, int]:
        core = make_core("bench", T0)
        core.feed(CalibrationDone(T0 + 0.5, True, "baseline ready"))
        core.feed(Decline(T0 + 0.6, Role.CLIENT, "d"))
        if with_assessment:
            core.feed(AssessmentOffer(T0 + 0.7, Role.THERAPIST, "o"))
            core.feed(AssessmentConsent(T0 + 0.8, Role.CLIENT, "c"))
        c0 = time.process_time()
        n_events = 0
        for item in items:
            n_events += len(core.feed(item).assessment_events)  # type: ignore[arg-type]
        return time.process_time() - c0, len(items), n_events

    on = [run(True) for _ in range(3)]
    off = [run(False) for _ in range(3)]
    cpu_on = statistics.median(x[0] for x in on)
    cpu_off = statistics.median(x[0] for x in off)
    n = on[0][1]
    print(
        f"| live core, 15 min of inputs ({n}), assessment running ({on[0][2]} events) / not | "
        f"{cpu_on / n * 1e6:.1f} / {cpu_off / n * 1e6:.1f} µs per input | "
        f"{cpu_on:.2f} / {cpu_off:.2f} s in all | overhead "
        f"{(cpu_on - cpu_off) / (15 * 60) * 100:.3f} % of a core |"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=50)
    ap.add_argument("--live", action="store_true", help="only the live core's overhead")
    args = ap.parse_args()
    if args.live:
        live_overhead()
        return
    run = simulate(client(5.5, 1), 1)
    blocks = [
        score_block(run.t, run.rr_ms, p, start_t=a, end_t=b, corrected=run.corrected)
        for p, (a, b) in zip(run.pacers, run.windows, strict=True)
    ]
    score_block(run.t, run.rr_ms, run.pacers[0], start_t=run.windows[0][0], end_t=run.windows[0][1])

    def one_block() -> None:
        for p, (a, b) in zip(run.pacers, run.windows, strict=True):
            score_block(run.t, run.rr_ms, p, start_t=a, end_t=b, corrected=run.corrected)

    cpu5, wall5 = timed(one_block, args.repeat)
    cpu_c, wall_c = timed(lambda: choose(blocks), args.repeat)

    from biofeedback.service.assessment_demo import simulate_assessment

    def session() -> None:
        simulate_assessment(AssessmentProtocol(), seed=1, client_id="bench")

    cpu_s, wall_s = timed(session, max(3, args.repeat // 10))
    n_beats = [b.n_beats for b in blocks]
    print("| what | CPU per call | wall per call | next to |")
    print("|---|---|---|---|")
    print(
        f"| `score_block`, one block ({min(n_beats)}-{max(n_beats)} beats) | "
        f"{cpu5 / 5 * 1e3:.2f} ms | {wall5 / 5 * 1e3:.2f} ms | "
        f"{cpu5 / 5 / BLOCK_S * 100:.4f} % of the {BLOCK_S:.0f} s block |"
    )
    print(f"| `choose`, five blocks | {cpu_c * 1e6:.0f} µs | {wall_c * 1e6:.0f} µs | |")
    print(
        f"| whole simulated assessment (physiology + signal pipeline + session, 14 min of "
        f"session time) | {cpu_s:.2f} s | {wall_s:.2f} s | {cpu_s / (14 * 60) * 100:.2f} % "
        "of its length |"
    )


if __name__ == "__main__":
    main()
