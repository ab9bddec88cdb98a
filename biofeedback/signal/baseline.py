"""Resting calibration: collects what a baseline needs and refuses to produce a bogus one.

A baseline has to describe *rest*, not the one or two minutes the calibration happened to cover
(docs/arousal.md, "Baseline"):

* centres are medians over the calibration's non-overlapping minutes (of each minute's median
  fast heart rate, and of each minute's 60 s ln RMSSD): from three minutes on, one atypical
  minute (the calmest, or one with a cough and a shift in the chair) cannot set them;
* the spreads are the spread a future resting value has around those centres: the heart rate's
  beat-to-beat spread measured in the calibration (robustly, from the MAD) plus the
  minute-to-minute variability of rest, and the uncertainty of a centre measured over only `k`
  minutes. A short calibration cannot see the minute-to-minute part (its overlapping 60 s windows
  are nearly identical), so it comes from a stated prior, or from the calibration itself once it
  spans three windows or more.

`review` says what looked unusual about a calibration that passed (for the therapist).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from biofeedback.errors import CalibrationError
from biofeedback.signal.measures import Baseline, SignalConfig

_DURATION_SLACK_S = 1.0  # beats arrive at beat times: allow the last one to land a bit early
MIN_HRV_SAMPLES = 10
MIN_COVERAGE = 0.7  # accepted RR must cover this share of the calibration time
MAD_TO_SD = 1.4826  # the MAD of a normal distribution times this is its SD

# Minute-to-minute variability of rest that a calibration of fewer than 3 windows cannot measure:
# the SD of per-minute median fast heart rate, and of the 60 s ln RMSSD of non-overlapping
# minutes, over rest. Measured on the shared resting recordings (docs/arousal.md, "Baseline":
# medians over ECG and strap records 2.5 bpm and 0.15); with 3 or more windows the calibration's
# own value is used when larger.
BETWEEN_MINUTE_HR_BPM = 2.5
BETWEEN_MINUTE_LN_RMSSD = 0.15
MIN_WINDOWS_FOR_OWN_SPREAD = 3
# A window's ln RMSSD is the live 60 s value at the beat nearest its end, within this much.
WINDOW_END_TOLERANCE_S = 5.0

# What makes a calibration that passed "unusual" (docs/arousal.md, "Baseline", with the numbers).
TREND_HR_BPM = 8.0  # second-half median fast HR minus first-half median
TREND_LN_RMSSD = 0.6  # last window's ln RMSSD minus the first's
HISTORY_HR_BPM = 10.0  # new resting HR against the client's previous baseline
HISTORY_LN_RMSSD = 0.5  # new resting ln RMSSD against the previous baseline
HIGH_RESTING_HR_BPM = 100.0
MARGINAL_SHARE = 0.5  # corrected / rejected share above this fraction of the gate's limit


def _mad_sd(values: Sequence[float]) -> float:
    """A robust SD: 1.4826 x the median absolute deviation from the median."""
    m = statistics.median(values)
    return MAD_TO_SD * statistics.median([abs(v - m) for v in values])


def _between(windows: Sequence[float], prior: float) -> float:
    """Minute-to-minute SD: the prior, or the windows' own SD when there are enough and larger."""
    if len(windows) >= MIN_WINDOWS_FOR_OWN_SPREAD:
        return max(prior, statistics.stdev(windows))
    return prior


def window_bounds(start_t: float, end_t: float, window_s: float) -> list[tuple[float, float]]:
    """The non-overlapping windows of `window_s` that fit in [start_t, end_t] (slack: one s)."""
    n = int((end_t - start_t + _DURATION_SLACK_S) // window_s)
    return [(start_t + i * window_s, start_t + (i + 1) * window_s) for i in range(max(0, n))]


def window_medians(
    t: Sequence[float], v: Sequence[float], bounds: Sequence[tuple[float, float]]
) -> list[float]:
    """Median of the values whose time falls in each window (windows without values skipped)."""
    out = []
    for lo, hi in bounds:
        inside = [x for ti, x in zip(t, v, strict=True) if lo < ti <= hi]
        if inside:
            out.append(statistics.median(inside))
    return out


def window_end_values(
    t: Sequence[float], v: Sequence[float], bounds: Sequence[tuple[float, float]]
) -> list[float]:
    """For each window, the value at the sample nearest its end (within the tolerance): the live
    long-window value that covers just that window."""
    out = []
    for _, hi in bounds:
        best: tuple[float, float] | None = None
        for ti, x in zip(t, v, strict=True):
            d = abs(ti - hi)
            if d <= WINDOW_END_TOLERANCE_S and (best is None or d < best[0]):
                best = (d, x)
        if best is not None:
            out.append(best[1])
    return out


def hr_statistics(
    t: Sequence[float], fast_hr: Sequence[float], start_t: float, end_t: float, window_s: float
) -> tuple[float, float, int]:
    """(centre, spread, windows) of the fast heart rate over a calibration period.

    The centre is the median of the per-window medians: from three windows on, one atypical
    minute (the calmest, or one with a cough and a shift in the chair) cannot set it.
    """
    within = _mad_sd(fast_hr)
    wins = window_medians(t, fast_hr, window_bounds(start_t, end_t, window_s))
    centre = statistics.median(wins) if wins else statistics.median(fast_hr)
    k = max(1, len(wins))
    between = _between(wins, BETWEEN_MINUTE_HR_BPM)
    return centre, math.sqrt(within * within + between * between * (1.0 + 1.0 / k)), k


def ln_rmssd_statistics(
    t: Sequence[float], ln_rmssd: Sequence[float], start_t: float, end_t: float, window_s: float
) -> tuple[float, float, int]:
    """(centre, spread, windows) of the long-window ln RMSSD over a calibration period.

    The centre is the median over the non-overlapping windows (the live value at each window's
    end); the spread is the minute-to-minute variability of that value, widened by the
    uncertainty of a centre measured over `k` windows. The beat-by-beat values of one window are
    not a spread: consecutive 60 s windows share all but a beat or two.
    """
    wins = window_end_values(t, ln_rmssd, window_bounds(start_t, end_t, window_s))
    centre = statistics.median(wins) if wins else statistics.median(ln_rmssd)
    k = max(1, len(wins))
    between = _between(wins, BETWEEN_MINUTE_LN_RMSSD)
    return centre, between * math.sqrt(1.0 + 1.0 / k), len(wins)


class Calibration:
    """Running tallies of one calibration period (bounded by its duration)."""

    __slots__ = (
        "fast_hr",
        "fast_t",
        "hf",
        "ln_rmssd",
        "ln_t",
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
        self.fast_t: list[float] = []
        self.ln_rmssd: list[float] = []
        self.ln_t: list[float] = []
        self.hf: list[float] = []

    def add_fast(self, t: float, bpm: float) -> None:
        """The fast heart rate after one input of the period."""
        self.fast_t.append(t)
        self.fast_hr.append(bpm)

    def add_hrv(self, t: float, ln_rmssd: float) -> None:
        """The long-window ln RMSSD after one beat of the period (once the window is warm)."""
        self.ln_t.append(t)
        self.ln_rmssd.append(ln_rmssd)

    def finish(
        self, t: float, client_id: str, config: SignalConfig, previous: Baseline | None = None
    ) -> Baseline:
        """The baseline, or CalibrationError saying what was wrong and what to do.

        `previous` is the baseline in use: a calibration without RR (heart rate only) does not
        replace one that has HRV. The strap stopped sending RR (or another strap without RR is
        worn), and an HR-only baseline would drop the HRV half of every later estimate, for
        this session and, once saved, the client's next ones; the HRV baseline's heart-rate
        centre still serves while RR is missing.
        """
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
            if previous is not None and previous.ln_rmssd_mean is not None:
                raise CalibrationError(
                    f"the strap sent heart rate but no RR intervals during the {duration:.0f} s, "
                    "so this calibration has no HRV; the client's baseline with HRV stays in "
                    "use: moisten the electrodes and check the strap sends RR (the dashboard "
                    "shows HRV again), then calibrate again"
                )
            return self._hr_only(t, client_id, duration, config)
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
        w = config.long_window_s
        hr_c, hr_s, _ = hr_statistics(self.fast_t, self.fast_hr, self.start_t, t, w)
        ln_c, ln_s, _ = ln_rmssd_statistics(self.ln_t, self.ln_rmssd, self.start_t, t, w)
        return Baseline(
            client_id=client_id,
            created_t=t,
            duration_s=duration,
            n_beats=self.n_accepted,
            corrected_share=corrected,
            hr_mean_bpm=hr_c,
            hr_sd_bpm=hr_s,
            ln_rmssd_mean=ln_c,
            ln_rmssd_sd=ln_s,
            hf_ms2=statistics.fmean(self.hf) if self.hf else None,
        )

    def _hr_only(self, t: float, client_id: str, duration: float, config: SignalConfig) -> Baseline:
        if self.n_hr_samples < max(2, duration / 2.0):
            raise CalibrationError(
                f"only {self.n_hr_samples} heart-rate samples in {duration:.0f} s: check that "
                "the strap is connected and worn, then calibrate again"
            )
        hr_c, hr_s, _ = hr_statistics(
            self.fast_t, self.fast_hr, self.start_t, t, config.long_window_s
        )
        return Baseline(
            client_id=client_id,
            created_t=t,
            duration_s=duration,
            n_beats=0,
            corrected_share=0.0,
            hr_mean_bpm=hr_c,
            hr_sd_bpm=hr_s,
            ln_rmssd_mean=None,
            ln_rmssd_sd=None,
            hf_ms2=None,
        )

    def review(
        self, baseline: Baseline, previous: Baseline | None, config: SignalConfig
    ) -> tuple[str, ...]:
        """What looked unusual about this calibration, in words for the therapist (may be empty).

        A trend across the period (the client was still settling, or getting activated), a
        resting heart rate or HRV far from the client's previous baseline, a heart rate high for
        rest, or a signal quality that passed the gate only narrowly.
        """
        notes: list[str] = []
        half = self.start_t + (baseline.created_t - self.start_t) / 2.0
        first = [v for ti, v in zip(self.fast_t, self.fast_hr, strict=True) if ti <= half]
        second = [v for ti, v in zip(self.fast_t, self.fast_hr, strict=True) if ti > half]
        if first and second:
            a, b = statistics.median(first), statistics.median(second)
            if abs(b - a) >= TREND_HR_BPM:
                what = "rose" if b > a else "fell"
                why = "activated" if b > a else "still settling"
                notes.append(
                    f"heart rate {what} {abs(b - a):.0f} bpm across the calibration ({a:.0f} -> "
                    f"{b:.0f} bpm): the client may have been {why}, not at rest"
                )
        wins = window_end_values(
            self.ln_t,
            self.ln_rmssd,
            window_bounds(self.start_t, baseline.created_t, config.long_window_s),
        )
        if len(wins) >= 2 and abs(wins[-1] - wins[0]) >= TREND_LN_RMSSD:
            change = math.exp(wins[-1] - wins[0]) - 1.0
            notes.append(
                f"HRV (RMSSD) changed by {change:+.0%} from the first to the last minute of the "
                "calibration"
            )
        if baseline.hr_mean_bpm >= HIGH_RESTING_HR_BPM:
            notes.append(
                f"resting heart rate {baseline.hr_mean_bpm:.0f} bpm is high for rest: the client "
                "may be anxious, have just moved, or take a medication that raises it"
            )
        if previous is not None:
            d_hr = baseline.hr_mean_bpm - previous.hr_mean_bpm
            if abs(d_hr) >= HISTORY_HR_BPM:
                notes.append(
                    f"resting heart rate {baseline.hr_mean_bpm:.0f} bpm is {abs(d_hr):.0f} bpm "
                    f"{'above' if d_hr > 0 else 'below'} the client's previous baseline "
                    f"({previous.hr_mean_bpm:.0f} bpm)"
                )
            if baseline.ln_rmssd_mean is not None and previous.ln_rmssd_mean is not None:
                d_ln = baseline.ln_rmssd_mean - previous.ln_rmssd_mean
                if abs(d_ln) >= HISTORY_LN_RMSSD:
                    notes.append(
                        f"resting HRV (RMSSD {math.exp(baseline.ln_rmssd_mean):.0f} ms) is "
                        f"{math.exp(d_ln) - 1.0:+.0%} against the client's previous baseline "
                        f"({math.exp(previous.ln_rmssd_mean):.0f} ms)"
                    )
        if baseline.ln_rmssd_mean is None:
            notes.append("the strap sent no RR intervals: a heart-rate-only baseline, no HRV")
        else:
            n_inputs = self.n_accepted + self.n_rejected
            rejected = self.n_rejected / n_inputs if n_inputs else 0.0
            if baseline.corrected_share > MARGINAL_SHARE * config.calibration_max_corrected:
                notes.append(
                    f"{baseline.corrected_share:.0%} of the beats needed artifact correction "
                    "(marginal signal quality)"
                )
            if rejected > MARGINAL_SHARE * config.calibration_max_rejected:
                notes.append(f"{rejected:.0%} of the inputs were implausible (marginal signal)")
        return tuple(notes)
