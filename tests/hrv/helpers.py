"""Shared helpers for the signal tests: feeding series and asking neurokit2 for batch values."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from biofeedback.signal import BeatUpdate, SignalConfig, SignalPipeline


def feed(
    t: Sequence[float] | np.ndarray,
    rr: Sequence[float] | np.ndarray,
    p: SignalPipeline | None = None,
) -> tuple[SignalPipeline, list[BeatUpdate]]:
    """Push every (t, rr) into a pipeline; returns it and all updates."""
    p = p or SignalPipeline()
    return p, [p.push_rr(float(a), float(b)) for a, b in zip(t, rr, strict=True)]


def nk_time(rr_ms: Sequence[float]) -> dict[str, float]:
    """neurokit2.hrv_time on exactly these RR values (ms)."""
    import neurokit2 as nk

    with warnings.catch_warnings():
        # SDANN/SDNNI over 1-5 min sub-windows warn on short windows; we do not use them
        warnings.simplefilter("ignore", RuntimeWarning)
        df = nk.hrv_time({"RRI": np.asarray(rr_ms, dtype=float)})
    return {k: float(df[f"HRV_{k}"].iloc[0]) for k in ("MeanNN", "SDNN", "RMSSD", "pNN50")}


def rel(a: float, b: float) -> float:
    """Relative difference (0 when both are 0)."""
    return 0.0 if a == b else abs(a - b) / max(abs(a), abs(b))


NO_ARTIFACTS = SignalConfig(artifact_correction=False)
