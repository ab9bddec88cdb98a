"""Service-level costs: CLI start-up, and one client's whole session core per input.

    .venv/bin/python bench/bench_service.py [--hours 1]

1. `biofeedback --help` wall time (the CLI defers scipy, bleak, paho and aiohttp).
2. SessionCore.feed over a simulated session (strap notifications, a tick per second, the client
   consenting and answering check-ins): cost per input and how many clients one core could serve
   in real time.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

from biofeedback.devices.simulated import StrapEmulator
from biofeedback.exposure import load_protocol
from biofeedback.exposure.messages import Consent, Role, SessionState, SudsAnswer, Tick
from biofeedback.service.core import SessionCore
from biofeedback.signal import SignalConfig

ROOT = Path(__file__).resolve().parent.parent
T0 = 1_764_064_800.0


def cli_help_ms(runs: int = 10) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "biofeedback", "--help"], check=True, capture_output=True
        )
        out.append((time.perf_counter() - t) * 1000)
    return out


def session(hours: float, *, trace: bool) -> tuple[int, float, float, int]:
    """(inputs, seconds in feed, session seconds, peak traced bytes or 0 when not traced)."""
    core = SessionCore(
        client_id="bench",
        protocol=load_protocol(ROOT / "config" / "protocols" / "spider-hierarchy.toml"),
        signal_config=SignalConfig(),
        start_t=T0,
    )
    strap = StrapEmulator("SimStrap", start_t=T0, seed=5)
    n = 0
    busy = 0.0
    if trace:
        tracemalloc.start()

    def feed(item: object) -> None:
        nonlocal n, busy
        t = time.perf_counter()
        core.feed(item)  # type: ignore[arg-type]
        busy += time.perf_counter() - t
        n += 1
        snap = core.snapshot
        strap.set_stimulus(
            exposure=0.9 if snap.state is SessionState.EXPOSING else 0.0,
            paced_breathing_bpm=6.0 if snap.guidance is not None else None,
        )

    for r in strap.start():
        feed(r)
    end = T0 + hours * 3600
    next_tick = T0 + 1.0
    while next_tick < end:
        due = strap.next_due()
        if due <= next_tick:
            for r in strap.step(due):
                feed(r)
            continue
        feed(Tick(next_tick))
        snap = core.snapshot
        if snap.checkin_due:
            feed(SudsAnswer(next_tick, Role.CLIENT, 30, f"s{n}"))
        if snap.consent_needed:
            feed(Consent(next_tick, Role.CLIENT, f"c{n}"))
        next_tick += 1.0
    peak = 0
    if trace:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return n, busy, next_tick - T0, peak


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hours", type=float, default=1.0)
    args = ap.parse_args()
    helps = cli_help_ms()
    print(f"biofeedback --help: median {statistics.median(helps):.0f} ms, max {max(helps):.0f} ms")
    n, busy, span, _ = session(args.hours, trace=False)
    print(
        f"SessionCore: {n} inputs over {span:.0f} s of session: {busy / n * 1e6:.0f} µs per input,"
        f" {span / busy:.0f}x real time (clients one core could serve)"
    )
    _, _, span, peak = session(min(args.hours, 0.25), trace=True)
    print(f"SessionCore peak traced memory over {span:.0f} s: {peak / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
