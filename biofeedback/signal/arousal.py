"""The arousal estimate (definition and rationale in docs/arousal.md).

fast = 25 + 18.75 * z_HR       z_HR = (HR_fast - HR_base) / max(sd_HR_base, floor)
slow = 25 + 18.75 * z_vagal    z_vagal = (lnRMSSD_base - lnRMSSD_60s) / max(sd_lnRMSSD_base, floor)
value = w * fast + (1 - w) * slow, each clipped to 0..100; heart rate alone when HRV is missing.
"""

from __future__ import annotations

import dataclasses
import math

from biofeedback.signal.measures import (
    Arousal,
    ArousalBasis,
    Baseline,
    SignalConfig,
    SignalQuality,
)

MOVEMENT_REASON = "movement"  # Arousal.reason starts with it while the client moves
MOVEMENT_CONFIDENCE = 0.5  # confidence factor while moving (docs/ecg.md, "Movement")

Z_OFFSET = 25.0  # a client exactly at their resting baseline scores 25
Z_SCALE = 18.75  # +4 baseline spreads reaches 100, -1.33 reaches 0


_HR_HRV = ArousalBasis.HR_HRV  # enum attribute lookups are slow on the per-beat path
_HR_ONLY = ArousalBasis.HR_ONLY
_UNKNOWN = ArousalBasis.UNKNOWN


def component(z: float) -> float:
    """A z-score relative to the baseline, mapped linearly onto 0..100 and clipped."""
    v = Z_OFFSET + Z_SCALE * z
    return 0.0 if v < 0.0 else (100.0 if v > 100.0 else v)


def estimate(
    t: float,
    fast_hr: float | None,
    ln_rmssd: float | None,
    quality: SignalQuality,
    baseline: Baseline | None,
    config: SignalConfig,
    no_baseline_reason: str = "no baseline",
) -> Arousal:
    """Arousal from the fast heart rate and the long-window ln RMSSD, or why it is unknown."""
    unknown = _UNKNOWN
    if baseline is None:
        return Arousal(t, None, 0.0, None, None, unknown, no_baseline_reason)
    if fast_hr is None:
        return Arousal(t, None, 0.0, None, None, unknown, "no heart rate yet")
    if quality.score < config.min_quality:
        why = quality.reason or "signal quality too low"
        return Arousal(t, None, quality.score, None, None, unknown, why)
    fast = component(
        (fast_hr - baseline.hr_mean_bpm) / max(baseline.hr_sd_bpm, config.hr_sd_floor_bpm)
    )
    if ln_rmssd is not None and baseline.ln_rmssd_mean is not None:
        sd = max(baseline.ln_rmssd_sd or 0.0, config.ln_rmssd_sd_floor)
        slow = component((baseline.ln_rmssd_mean - ln_rmssd) / sd)
        w = config.fast_weight
        value = w * fast + (1.0 - w) * slow
        return Arousal(t, value, quality.score, fast, slow, _HR_HRV, quality.reason)
    if baseline.ln_rmssd_mean is None:
        why = "baseline has no HRV: arousal from heart rate alone"
    else:
        why = f"{quality.reason or 'HRV unavailable'}: arousal from heart rate alone"
    conf = quality.score * config.hr_only_confidence
    return Arousal(t, fast, conf, fast, None, _HR_ONLY, why)


def ln_or_none(rmssd_ms: float | None) -> float | None:
    """ln RMSSD, None when RMSSD is missing or zero (a flat series has no vagal signal)."""
    if rmssd_ms is None or rmssd_ms <= 0:
        return None
    return math.log(rmssd_ms)


def during_movement(a: Arousal, factor: float = MOVEMENT_CONFIDENCE) -> Arousal:
    """The estimate while the chest accelerometer says the client moves: heart rate then also
    answers exertion, talking or shifting in the chair, not only fear. The value stays (pausing
    stays the default: the protocol decides whether movement may trigger a pause); the reason
    starts with "movement" and the confidence is multiplied by `factor`."""
    if a.value is None:
        return a
    why = MOVEMENT_REASON if a.reason is None else f"{MOVEMENT_REASON}; {a.reason}"
    return dataclasses.replace(a, confidence=a.confidence * factor, reason=why)
