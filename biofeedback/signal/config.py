"""Checks on a SignalConfig, so a broken `[signal]` table fails at start with a clear message."""

from __future__ import annotations

import math

from biofeedback.errors import ConfigError
from biofeedback.signal.artifacts import MIN_DETECTOR_BEATS, MIN_LAG
from biofeedback.signal.measures import SignalConfig

MAX_TIME_WINDOW_S = 300.0  # keeps the exact integer sums inside int64 in the offline path


def validate_config(c: SignalConfig) -> SignalConfig:
    """`c` itself when every field is usable, else ConfigError naming the field."""

    def bad(field: str, why: str) -> ConfigError:
        return ConfigError(f"[signal] {field} = {getattr(c, field)!r}: {why}")

    for name in (
        "short_window_s",
        "long_window_s",
        "frequency_window_s",
        "frequency_cadence_s",
        "calibration_s",
        "paced_breathing_hz",
        "min_rr_ms",
        "max_rr_ms",
        "gap_s",
        "coherence_half_width_hz",
    ):
        v = getattr(c, name)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            raise bad(name, "must be a positive number")
    if c.long_window_s > MAX_TIME_WINDOW_S or c.short_window_s > c.long_window_s:
        raise bad("long_window_s", f"windows must satisfy short <= long <= {MAX_TIME_WINDOW_S:g} s")
    if not 60.0 <= c.frequency_window_s <= 300.0:
        raise bad("frequency_window_s", "must be between 60 and 300 s")
    if c.min_rr_ms >= c.max_rr_ms:
        raise bad("min_rr_ms", "must be below max_rr_ms")
    if not 0.04 <= c.paced_breathing_hz <= 0.4:
        raise bad("paced_breathing_hz", "must be between 0.04 and 0.4 Hz (2.4-24 breaths/min)")
    for name in (
        "artifact_every_beats",
        "artifact_lag_beats",
        "fast_beats",
        "paced_fast_max_beats",
        "quality_inputs",
    ):
        v = getattr(c, name)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise bad(name, "must be a positive integer")
    if c.artifact_lag_beats < MIN_LAG:
        raise bad(
            "artifact_lag_beats",
            f"must be at least {MIN_LAG}: the detector's centred criteria need that many beats",
        )
    if c.artifact_buffer_beats < max(
        MIN_DETECTOR_BEATS, c.artifact_every_beats + c.artifact_lag_beats
    ):
        raise bad(
            "artifact_buffer_beats",
            f"must be at least artifact_every_beats + artifact_lag_beats and {MIN_DETECTOR_BEATS}",
        )
    thr = c.provisional_threshold
    if thr is not None and (
        isinstance(thr, bool)
        or not isinstance(thr, (int, float))
        or not math.isfinite(thr)
        or not 0.0 <= thr < 1.0
    ):
        raise bad("provisional_threshold", "must be 0 (screen off) or a fraction below 1")
    pb = c.provisional_beats
    if isinstance(pb, bool) or not isinstance(pb, int) or pb < 3:
        raise bad("provisional_beats", "must be an integer of at least 3")
    for name in (
        "min_quality",
        "hr_only_confidence",
        "fast_weight",
        "calibration_max_corrected",
        "calibration_max_rejected",
    ):
        v = getattr(c, name)
        if not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
            raise bad(name, "must be between 0 and 1")
    if c.calibration_min_beats < 2 or c.hr_sd_floor_bpm <= 0 or c.ln_rmssd_sd_floor <= 0:
        raise bad("calibration_min_beats", "calibration needs >= 2 beats and positive floors")
    return c
