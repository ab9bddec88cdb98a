"""Resting calibration: collects what a baseline needs and refuses to produce a bogus one."""

from __future__ import annotations

import math
import statistics

from biofeedback.errors import CalibrationError
from biofeedback.signal.measures import Baseline, SignalConfig

_DURATION_SLACK_S = 1.0  # beats arrive at beat times: allow the last one to land a bit early
MIN_HRV_SAMPLES = 10
MIN_COVERAGE = 0.7  # accepted RR must cover this share of the calibration time


class Calibration:
    """Running tallies of one calibration period (bounded by its duration)."""

    __slots__ = (
        "fast_hr",
        "hf",
        "ln_rmssd",
        "n_accepted",
        "n_corrected",
        "n_hr_samples",
        "n_rejected",
        "rr_sum_ms",
        "start_t",
    )

    def __init__(self, start_t: float) -> None:
        self.start_t = start_t
        self.n_accepted = 0
        self.n_rejected = 0
        self.n_corrected = 0
        self.n_hr_samples = 0
        self.rr_sum_ms = 0.0
        self.fast_hr: list[float] = []
        self.ln_rmssd: list[float] = []
        self.hf: list[float] = []

    def finish(self, t: float, client_id: str, config: SignalConfig) -> Baseline:
        """The baseline, or CalibrationError saying what was wrong and what to do."""
        if not client_id or not isinstance(client_id, str):
            raise CalibrationError("a calibration needs a non-empty pseudonymous client id")
        t = float(t)
        duration = t - self.start_t
        if not math.isfinite(duration) or duration < config.calibration_s - _DURATION_SLACK_S:
            raise CalibrationError(
                f"calibration lasted {duration:.0f} s but needs {config.calibration_s:.0f} s of "
                "quiet rest: start it again and let it run to the end"
            )
        if self.n_accepted == 0 and self.n_hr_samples > 0:
            return self._hr_only(t, client_id, duration)
        n_inputs = self.n_accepted + self.n_rejected
        clean = self.n_accepted - self.n_corrected
        if clean < config.calibration_min_beats:
            raise CalibrationError(
                f"only {clean} clean beats in {duration:.0f} s (need at least "
                f"{config.calibration_min_beats}): check that the strap is moist, snug and "
                "connected, then calibrate again"
            )
        rejected = self.n_rejected / n_inputs
        if rejected > config.calibration_max_rejected:
            raise CalibrationError(
                f"{rejected:.0%} of the beats were implausible (limit "
                f"{config.calibration_max_rejected:.0%}): check the strap's fit and battery, "
                "then calibrate again"
            )
        corrected = self.n_corrected / self.n_accepted
        if corrected > config.calibration_max_corrected:
            raise CalibrationError(
                f"{corrected:.0%} of the beats needed artifact correction (limit "
                f"{config.calibration_max_corrected:.0%}): ask the client to sit still, check "
                "the strap's contact, then calibrate again"
            )
        coverage = self.rr_sum_ms / 1000.0 / duration
        if coverage < MIN_COVERAGE:
            raise CalibrationError(
                f"beats cover only {coverage:.0%} of the {duration:.0f} s (dropouts): keep the "
                "client close to the receiver and calibrate again"
            )
        if len(self.ln_rmssd) < MIN_HRV_SAMPLES:
            raise CalibrationError(
                f"HRV could not be measured: no {config.long_window_s:.0f} s stretch without a "
                "gap during calibration; calibrate again without interruptions"
            )
        return Baseline(
            client_id=client_id,
            created_t=t,
            duration_s=duration,
            n_beats=self.n_accepted,
            corrected_share=corrected,
            hr_mean_bpm=statistics.fmean(self.fast_hr),
            hr_sd_bpm=statistics.stdev(self.fast_hr),
            ln_rmssd_mean=statistics.fmean(self.ln_rmssd),
            ln_rmssd_sd=statistics.stdev(self.ln_rmssd),
            hf_ms2=statistics.fmean(self.hf) if self.hf else None,
        )

    def _hr_only(self, t: float, client_id: str, duration: float) -> Baseline:
        if self.n_hr_samples < max(2, duration / 2.0):
            raise CalibrationError(
                f"only {self.n_hr_samples} heart-rate samples in {duration:.0f} s: check that "
                "the strap is connected and worn, then calibrate again"
            )
        return Baseline(
            client_id=client_id,
            created_t=t,
            duration_s=duration,
            n_beats=0,
            corrected_share=0.0,
            hr_mean_bpm=statistics.fmean(self.fast_hr),
            hr_sd_bpm=statistics.stdev(self.fast_hr),
            ln_rmssd_mean=None,
            ln_rmssd_sd=None,
            hf_ms2=None,
        )
