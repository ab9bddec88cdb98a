"""In-process A/B of the live signal path at two git revisions: on a shared, loaded machine the
noise between two benchmark runs is larger than a 10-20 % gain, so both versions run in one
process, pass after pass, alternating which goes first, on the same series.

Run: .venv/bin/python bench/ab_signal.py --old REV [--new REV] [--only PATH ...]
     [--hours H] [--passes N]

Each revision's `biofeedback` package is extracted with `git archive` and imported under its own
name (`biofeedback_old`, `biofeedback_new`: the package's absolute imports are renamed in the
copy). `--only` takes every other file of the new side from the old revision, so a file someone
else changed between the two (e.g. the artifact detector) does not enter the comparison.
Reported: CPU time (`process_time`) per beat of `push_rr` for the full live path at the default
spectral cadence and without the spectrum, each side's median over the passes and the median of
the per-pass ratio new / old (the two sides of a pass run seconds apart, so it moves least with
the load). Also one spectrum (`frequency_domain` on the 120 s windows the stream computes,
alternated the same way).
"""

from __future__ import annotations

import argparse
import bisect
import gc
import importlib
import io
import os
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
_NAME = re.compile(r"\bbiofeedback\b(?=[.\s]|$)", re.MULTILINE)


def extract(rev: str, dest: Path, name: str, only: list[str], new_rev: str | None) -> None:
    """`biofeedback` of `rev` as package `name` under `dest`; with `only`, those paths come from
    `new_rev` and everything else from `rev`."""
    tar = subprocess.run(
        ["git", "archive", rev, "biofeedback"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
        tf.extractall(dest, filter="data")
    pkg = dest / "biofeedback"
    for path in only:
        assert new_rev is not None
        text = subprocess.run(
            ["git", "show", f"{new_rev}:{path}"], cwd=ROOT, capture_output=True, check=True
        ).stdout
        (dest / path).write_bytes(text)
    for f in pkg.rglob("*.py"):
        f.write_text(_NAME.sub(name, f.read_text()))
    pkg.rename(dest / name)


def live_windows(signal: Any, hours: float) -> tuple[list[float], list[float], list[Any]]:
    """The series and the (t, rr) windows the stream computes a spectrum on (15 s cadence)."""
    import numpy as np

    syn = importlib.import_module(signal.__name__ + ".synthetic")
    t, rr = syn.rr_series(3600 * hours, seed=7, hr_bpm=75.0)
    tl, rl = t.tolist(), rr.tolist()
    wins, last = [], None
    for i, tt in enumerate(tl):
        if tt - tl[0] < 60.0 or (last is not None and tt - last < 15.0):
            continue
        last = tt
        lo = bisect.bisect_right(tl, tt - 120.0)
        wins.append((np.array(tl[lo : i + 1]), np.rint(np.array(rl[lo : i + 1]) * 1000) / 1000))
    return tl, rl, wins


def per_beat(sig: ModuleType, cadence: float, tl: list[float], rl: list[float]) -> float:
    b = sig.Baseline("bench", 0.0, 120.0, 150, 0.0, 75.0, 3.0, 3.6, 0.15, 800.0)
    p = sig.SignalPipeline(sig.SignalConfig(frequency_cadence_s=cadence), b)
    gc.collect()
    c0 = time.process_time()
    for a, x in zip(tl, rl, strict=True):
        p.push_rr(a, x)
    return (time.process_time() - c0) / len(tl) * 1e6


def per_spectrum(sig: ModuleType, wins: list[Any]) -> float:
    fd = importlib.import_module(sig.__name__ + ".frequency").frequency_domain
    c0 = time.process_time()
    for ts, xs in wins:
        fd(float(ts[-1]), 120.0, ts, xs, 0.1, 0.015)
    return (time.process_time() - c0) / len(wins) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--old", required=True, help="revision before the change")
    ap.add_argument("--new", default="HEAD", help="revision after it (default HEAD)")
    ap.add_argument("--only", nargs="*", default=[], help="paths taken from --new")
    ap.add_argument("--hours", type=float, default=0.5, help="streaming series length")
    ap.add_argument("--passes", type=int, default=10)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        extract(args.old, Path(tmp), "biofeedback_old", [], None)
        if args.only:
            extract(args.old, Path(tmp), "biofeedback_new", args.only, args.new)
        else:
            extract(args.new, Path(tmp), "biofeedback_new", [], None)
        sys.path.insert(0, tmp)
        sides = {n: importlib.import_module(f"biofeedback_{n}.signal") for n in ("old", "new")}
        tl, rl, wins = live_windows(sides["new"], args.hours)
        for sig in sides.values():  # warm: scipy's import, the plans
            per_spectrum(sig, wins[:3])
        rows: dict[str, dict[str, list[float]]] = {}
        print(f"load average at start {os.getloadavg()[0]:.1f}")
        for i in range(args.passes):
            order = ("old", "new") if i % 2 == 0 else ("new", "old")
            for label, run in (
                (
                    "full live path, spectrum every 15 s, per beat",
                    lambda s: per_beat(s, 15.0, tl, rl),
                ),
                ("live path without the spectrum, per beat", lambda s: per_beat(s, 1e12, tl, rl)),
                (f"one spectrum ({len(wins)} live 120 s windows)", lambda s: per_spectrum(s, wins)),
            ):
                for n in order:
                    rows.setdefault(label, {}).setdefault(n, []).append(run(sides[n]))
        print(f"load average at end {os.getloadavg()[0]:.1f}")
    only = f" (only {', '.join(args.only)})" if args.only else ""
    print(f"old {args.old}, new {args.new}{only}")
    print(f"{len(tl)} beats ({args.hours:g} h at 75 bpm), {args.passes} passes, CPU µs\n")
    print(
        "| measure | old: median (min-max) | new: median (min-max) | new / old, median of passes |"
    )
    print("|---|---|---|---|")
    for label, d in rows.items():
        o, n = d["old"], d["new"]
        ratio = statistics.median(b / a for a, b in zip(o, n, strict=True))
        print(
            f"| {label} | {statistics.median(o):.1f} ({min(o):.1f}-{max(o):.1f}) | "
            f"{statistics.median(n):.1f} ({min(n):.1f}-{max(n):.1f}) | {ratio:.3f} |"
        )


if __name__ == "__main__":
    main()
