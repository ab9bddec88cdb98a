"""The real Polar H10 record (../shared/data/polar-h10-ecg-pvc): loaders and the scoring used by
the tests and bench/bench_ecg.py (docs/ecg.md explains the reference)."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from tests.support import REPO_ROOT

F64 = npt.NDArray[np.float64]
RECORD = REPO_ROOT.parent / "shared" / "data" / "polar-h10-ecg-pvc" / "polar_h10.csv"


@dataclass(frozen=True)
class H10Record:
    """Sample times (s from the first sample), ECG (µV), and the strap's RR (ms) with the time
    of each beat reconstructed from its notification (the last RR of a notification ends at the
    notification's row time, earlier ones that much before: what a service does)."""

    t: F64
    ecg_uv: F64
    strap_t: F64
    strap_rr_ms: F64


def record_path() -> Path:
    return RECORD


def load_h10(path: Path | None = None) -> H10Record:
    """Load the record; skip (or fail under CI=true) when the shared data is absent."""
    p = path or RECORD
    if not p.exists():
        msg = f"real H10 record not found at {p} (../shared/data/polar-h10-ecg-pvc)"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
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
        st += [end - b / 1000.0 for b in back]
        srr += rrs
    return H10Record(t, np.asarray(ecg), np.asarray(st), np.asarray(srr))


def pvc_reference(rr_ms: F64) -> npt.NDArray[np.bool_]:
    """Which strap beats are premature ventricular by the strap's own timing alone (independent
    of the ECG pipeline): a coupling interval under 40 % of itself plus the following pause
    (alternating short-long; a normal pair is 50 %), or the first beat of a couplet (shorter
    than 70 % of the interval before it and followed by such a beat)."""
    n = rr_ms.size
    v = np.zeros(n, dtype=bool)
    for i in range(n - 1):
        v[i] = rr_ms[i] / (rr_ms[i] + rr_ms[i + 1]) < 0.4
    for i in range(1, n - 1):
        if v[i + 1] and rr_ms[i] < 0.7 * rr_ms[i - 1]:
            v[i] = True
    return v
