"""Plausibility checks on what a strap sends, before any beat reaches the metrics.

Every check returns a reason instead of raising: a bad beat is reported and dropped, never fatal.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from biofeedback.signal.measures import SignalConfig

US_PER_MS = 1000
MIN_HR_BPM = 20.0
MAX_HR_BPM = 250.0


def rr_reason(t: float, rr_ms: float, last_t: float | None, config: SignalConfig) -> str | None:
    """Why an RR interval ending at `t` is implausible, or None when it may be used."""
    if not isinstance(t, (int, float)) or not math.isfinite(t):
        return "beat time is not a finite number"
    if not isinstance(rr_ms, (int, float)) or math.isnan(rr_ms):
        return "RR interval is not a number"
    if rr_ms <= 0:
        return f"RR interval {rr_ms:g} ms is not positive"
    if rr_ms < config.min_rr_ms:
        return f"RR interval {rr_ms:g} ms is below {config.min_rr_ms:g} ms"
    if rr_ms > config.max_rr_ms:
        return f"RR interval {rr_ms:g} ms is above {config.max_rr_ms:g} ms"
    if last_t is not None and t <= last_t:
        return f"beat time {t:.3f} s is not after the previous beat at {last_t:.3f} s"
    return None


def hr_reason(t: float, hr_bpm: float, last_t: float | None) -> str | None:
    """Why a heart-rate-only sample is implausible, or None when it may be used."""
    if not isinstance(t, (int, float)) or not math.isfinite(t):
        return "sample time is not a finite number"
    if not isinstance(hr_bpm, (int, float)) or not math.isfinite(hr_bpm):
        return "heart rate is not a finite number"
    if not MIN_HR_BPM <= hr_bpm <= MAX_HR_BPM:
        return f"heart rate {hr_bpm:g} bpm is outside {MIN_HR_BPM:g}..{MAX_HR_BPM:g} bpm"
    if last_t is not None and t <= last_t:
        return f"sample time {t:.3f} s is not after the previous sample at {last_t:.3f} s"
    return None


def rr_to_us(rr_ms: float) -> int:
    """RR in whole microseconds: metrics run on exact integer sums of these."""
    return round(rr_ms * US_PER_MS)


def accept_offline(
    t: npt.NDArray[np.float64], rr_ms: npt.NDArray[np.float64], config: SignalConfig
) -> npt.NDArray[np.bool_]:
    """Vectorised `rr_reason(...) is None` over a whole recording, with the same ordering rule.

    A beat is accepted when its values are plausible and its time is after every earlier
    accepted beat; accepted times only grow, so that is a running maximum over plausible beats.
    """
    with np.errstate(invalid="ignore"):
        valid = (
            np.isfinite(t)
            & ~np.isnan(rr_ms)
            & (rr_ms > 0)
            & (rr_ms >= config.min_rr_ms)
            & (rr_ms <= config.max_rr_ms)
        )
    running = np.maximum.accumulate(np.where(valid, t, -np.inf))
    before = np.concatenate(([-np.inf], running[:-1]))
    return np.asarray(valid & (t > before), dtype=np.bool_)
