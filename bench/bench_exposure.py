"""Speed and memory of the exposure state machine (pure, per input).

Run: .venv/bin/python bench/bench_exposure.py
Prints a Markdown table for docs/benchmarks.md ("Exposure session").
"""

from __future__ import annotations

import contextlib
import gc
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from biofeedback.errors import CommandError
from biofeedback.exposure import (
    ArousalSample,
    Consent,
    ExposureSession,
    OfferStep,
    Role,
    SessionEvent,
    Tick,
    load_protocol,
    parse_protocol,
    phases,
)

ROOT = Path(__file__).resolve().parent.parent
PROTO = load_protocol(ROOT / "config" / "protocols" / "spider-hierarchy.toml")


def _best(fn: Callable[[], int], repeat: int = 5) -> tuple[float, int]:
    best = float("inf")
    n = 0
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        n = fn()
        best = min(best, time.perf_counter() - t0)
    return best, n


def _session() -> ExposureSession:
    s = ExposureSession(PROTO, t=0.0, client_id="bench", needs_calibration=False)
    s.handle(ArousalSample(0.0, 50.0))
    s.handle(OfferStep(0.5, Role.THERAPIST))
    s.handle(Consent(1.0, Role.CLIENT))
    return s


def one_hour_of_beats() -> int:
    """3600 s at 75 bpm, arousal oscillating across the thresholds, ticks every second."""
    s = _session()
    n = 0
    events: list[SessionEvent] = []
    t = 1.0
    while t < 3600.0:
        value = 50.0 + 30.0 * (1 if int(t / 90) % 2 else -1)
        events += s.handle(ArousalSample(t, value))
        n += 1
        if s.snapshot().consent_needed:
            events += s.handle(Consent(t, Role.CLIENT))
        if s.state.value in ("paused", "grounding", "recovered") and int(t) % 30 == 0:
            with contextlib.suppress(CommandError):  # e.g. offered already: keep going
                events += s.handle(OfferStep(t, Role.THERAPIST))
        t += 0.8
        if int(t) != int(t - 0.8):
            events += s.handle(Tick(float(int(t))))
            n += 1
    return n


def handle_only() -> int:
    s = _session()
    for i in range(100_000):
        s.handle(ArousalSample(1.0 + i * 0.8, 50.0))
    return 100_000


def snapshots() -> int:
    s = _session()
    for _ in range(20_000):
        s.snapshot()
    return 20_000


def parse() -> int:
    text = (ROOT / "config" / "protocols" / "spider-hierarchy.toml").read_text()
    for _ in range(500):
        parse_protocol(text, source="x")
    return 500


def schedule() -> int:
    s = _session()
    s.handle(ArousalSample(2.0, 90.0))
    for i in range(3, 20):
        s.handle(ArousalSample(float(i), 90.0))
    g = s.guidance
    assert g is not None
    for i in range(20_000):
        phases(g, 20.0 + i, 50.0 + i)
    return 20_000


def memory() -> tuple[int, int]:
    tracemalloc.start()
    s = _session()
    base = tracemalloc.get_traced_memory()[0]
    t = 1.0
    while t < 3 * 3600.0:
        s.handle(ArousalSample(t, 50.0))
        t += 0.8
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return base, after


def main() -> None:
    rows = []
    dt, n = _best(handle_only)
    rows.append(
        (
            "`handle(ArousalSample)` while exposing",
            f"{n / dt:,.0f} inputs/s ({dt / n * 1e6:.1f} µs each)",
        )
    )
    dt, n = _best(one_hour_of_beats, repeat=3)
    rows.append(
        (
            "one session hour (samples, ticks, a snapshot per sample, pauses, offers, consents)",
            f"{dt * 1e3:.0f} ms CPU for {n} inputs",
        )
    )
    dt, n = _best(snapshots)
    rows.append(
        (
            "`snapshot()` (6-step protocol)",
            f"{n / dt:,.0f} snapshots/s ({dt / n * 1e6:.1f} µs each)",
        )
    )
    dt, n = _best(parse)
    rows.append(("`parse_protocol` (spider-hierarchy.toml)", f"{dt / n * 1e3:.2f} ms each"))
    dt, n = _best(schedule)
    rows.append(("`phases()` for a 30 s window", f"{dt / n * 1e6:.1f} µs each"))
    base, after = memory()
    rows.append(
        (
            "session memory after 3 h of samples",
            f"{(after - base) / 1024:.1f} KiB growth (no per-sample history kept)",
        )
    )
    print("| what | result |\n|---|---|")
    for what, result in rows:
        print(f"| {what} | {result} |")


if __name__ == "__main__":
    main()
