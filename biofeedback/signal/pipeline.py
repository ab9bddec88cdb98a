"""SignalPipeline: one client's beats in, metrics, quality and arousal out, one input at a time.

Pure and deterministic: time arrives with every input, nothing is read from a clock, nothing
raises on bad beats (they come back with a reason). Per-beat work is O(1) amortised: the intake
screen and the artifact detector (intake.py, artifacts.py) work per beat on bounded windows, the
spectrum at a bounded cadence (frequency.py).
"""

from __future__ import annotations

import bisect
import logging
import math
from collections import deque

import numpy as np

from biofeedback.errors import CalibrationError
from biofeedback.signal import arousal as arousal_mod
from biofeedback.signal.artifacts import Detector, Judgement
from biofeedback.signal.baseline import Calibration
from biofeedback.signal.config import validate_config
from biofeedback.signal.ecg_reconcile import EcgVerdict, overrule
from biofeedback.signal.frequency import MIN_SPAN_S, frequency_domain
from biofeedback.signal.intake import US_PER_MS, ProvisionalScreen, hr_reason, rr_reason
from biofeedback.signal.measures import (
    Arousal,
    Baseline,
    BeatUpdate,
    CleanBeat,
    FrequencyDomain,
    SignalConfig,
    SignalQuality,
    TimeDomain,
)
from biofeedback.signal.timedomain import CONTACT_CODES, SegmentStore, TimeWindow

log = logging.getLogger(__name__)

WARM_SHARE = 0.75  # HRV counts once the segment covers this share of the long window
MOVEMENT_STALE_S = 5.0  # a "moving" report counts this long (the meter reports every second)
PROVISIONAL = "provisional"  # CleanBeat.artifact of a beat the intake screen replaced
HR_ONLY_REASON = "the strap sends no RR intervals: HRV unavailable"


def signal_quality(
    corrected_share: float,
    rejected_share: float,
    contact: bool | None,
    hrv_available: bool,
    hrv_reason: str | None,
    min_quality: float,
) -> SignalQuality:
    """Quality score = 1 - 2 * corrected share - rejected share (0 without skin contact)."""
    score = max(0.0, min(1.0, 1.0 - 2.0 * corrected_share - rejected_share))
    reason: str | None = None
    if contact is False:
        score = 0.0
        reason = "no skin contact: moisten and tighten the strap"
    elif score < min_quality:
        reason = (
            f"signal quality too low ({corrected_share:.0%} of recent beats corrected, "
            f"{rejected_share:.0%} of recent inputs rejected)"
        )
    elif not hrv_available:
        reason = hrv_reason
    return SignalQuality(score, corrected_share, rejected_share, contact, hrv_available, reason)


def _median(values: deque[int] | deque[float] | list[int]) -> float:
    """Median as statistics.median computes it (mean of the middle two for even counts)."""
    v = sorted(values)
    n = len(v)
    h = n // 2
    return v[h] if n % 2 else (v[h - 1] + v[h]) / 2


def _update_time(t: object, fallback: float | None) -> float:
    """A rejected input's time for its update: its own when finite, else the newest valid time
    (an update stamped NaN could not be published as JSON)."""
    if isinstance(t, (int, float)) and math.isfinite(t):
        return float(t)
    return fallback if fallback is not None else 0.0


class SignalPipeline:
    """Streaming HRV, quality and arousal for one client (see the module docstring)."""

    def __init__(
        self, config: SignalConfig | None = None, baseline: Baseline | None = None
    ) -> None:
        self.config = validate_config(config or SignalConfig())
        self._baseline = baseline
        self._paced_hz = self.config.paced_breathing_hz
        self._store = SegmentStore()
        self._short = TimeWindow(self._store, self.config.short_window_s)
        self._long = TimeWindow(self._store, self.config.long_window_s)
        self._detector = Detector(self.config.artifact_lag_beats)
        self._artifacts = self.config.artifact_correction
        thr = self.config.provisional_threshold
        self._screen = ProvisionalScreen(float(thr or 0.0), self.config.provisional_beats)
        self._fast_rr: deque[int] = deque(
            maxlen=max(self.config.fast_beats, self.config.paced_fast_max_beats)
        )
        # the newest fast_beats of them: the unguided median sorts this, not a copy of those
        self._fast_rr_n: deque[int] = deque(maxlen=self.config.fast_beats)
        self._guided_hz: float | None = None
        self._fast_hr: deque[float] = deque(maxlen=self.config.fast_beats)
        self._recent: deque[bool] = deque(maxlen=self.config.quality_inputs)
        self._n_recent_rejected = 0
        self._calibration: Calibration | None = None
        self._calibration_notes: tuple[str, ...] = ()
        self._last_t: float | None = None  # newest accepted beat
        self._last_hr_t: float | None = None  # newest accepted HR-only sample
        self._contact: bool | None = None
        self._hr_only = False
        self._seg_start_t: float | None = None
        self._last_freq_t: float | None = None
        self._latest_freq: FrequencyDomain | None = None
        self._quality_cache: SignalQuality | None = None
        self._quality_key: tuple[float, float, bool | None, bool, str | None] | None = None
        self._ecg_verdicts: dict[int, EcgVerdict] = {}  # segment index -> the ECG's verdict
        self._moving_t: float | None = None  # newest movement report saying "moving"
        self._new_segment()

    # ---- public API ------------------------------------------------------------------------

    @property
    def baseline(self) -> Baseline | None:
        """The client's baseline in use, None until calibrated or given."""
        return self._baseline

    @baseline.setter
    def baseline(self, b: Baseline | None) -> None:
        self._baseline = b

    @property
    def calibrating(self) -> bool:
        """Whether a calibration period is running."""
        return self._calibration is not None

    @property
    def calibration_notes(self) -> tuple[str, ...]:
        """What looked unusual about the last calibration that passed (for the therapist)."""
        return self._calibration_notes

    @property
    def paced_hz(self) -> float:
        """The paced-breathing frequency coherence is measured at."""
        return self._paced_hz

    @property
    def guided_hz(self) -> float | None:
        """The guided paced-breathing rate in Hz, None when breathing is not being guided."""
        return self._guided_hz

    @property
    def latest_frequency(self) -> FrequencyDomain | None:
        """The newest spectral result of this segment (None before 60 s or after a gap)."""
        return self._latest_freq

    @property
    def retained_beats(self) -> int:
        """Beats currently held in memory (bounded by the longest window plus slack)."""
        return len(self._store.t)

    def set_paced_frequency(self, hz: float) -> None:
        """Measure coherence at `hz` from now on (ignored with a log line when implausible)."""
        if isinstance(hz, (int, float)) and 0.04 <= hz <= 0.4:
            self._paced_hz = float(hz)
        else:
            log.warning("paced breathing frequency %r Hz ignored: must be 0.04-0.4 Hz", hz)

    def set_paced_breathing(self, hz: float | None) -> None:
        """Paced breathing is guided at `hz` from now on (None: not guided).

        Coherence is then measured at `hz`, and the fast heart rate spans one full breath, so
        the deliberately large respiratory swing of slow breathing does not read as arousal.
        """
        if hz is None:
            self._guided_hz = None
            return
        self.set_paced_frequency(hz)
        self._guided_hz = self._paced_hz if self._paced_hz == float(hz) else None

    def mark_gap(self, t: float) -> None:
        """Monitoring was lost at `t`: windows restart and no interval bridges the gap."""
        log.debug("gap marked at %s", t)
        self._new_segment()

    def start_calibration(self, t: float) -> None:
        """Begin collecting a resting baseline (restarts one already running)."""
        self._calibration = Calibration(float(t))

    def finish_calibration(self, t: float, client_id: str) -> Baseline:
        """End the calibration; the new baseline is used from now on.

        Raises CalibrationError saying why (too short, too few clean beats, too many
        corrections or rejections, dropouts, heart rate only while the baseline in use has
        HRV) and keeps the previous baseline then.
        """
        cal = self._calibration
        if cal is None:
            raise CalibrationError("no calibration is running: start one first")
        self._calibration = None
        previous = self._baseline
        b = cal.finish(t, client_id, self.config, previous)
        self._baseline = b
        self._calibration_notes = cal.review(b, previous, self.config)
        return b

    def cancel_calibration(self) -> None:
        """Drop a running calibration (the baseline in use stays)."""
        self._calibration = None

    def push_rr(self, t: float, rr_ms: float, contact: bool | None = None) -> BeatUpdate:
        """One RR interval ending at `t` (s). Never raises: bad beats come back `rejected`."""
        self._contact = contact
        self._hr_only = False
        last_t = self._last_t
        c = self.config
        # fast path for the common case; NaN fails every comparison and takes the full check
        if (
            type(t) is float
            and type(rr_ms) is float
            and c.min_rr_ms <= rr_ms <= c.max_rr_ms
            and last_t is not None
            and last_t < t < math.inf
        ):
            reason = None
        else:
            reason = rr_reason(t, rr_ms, last_t, c)
        recent = self._recent
        if len(recent) == recent.maxlen:
            self._n_recent_rejected -= recent[0]
        recent.append(reason is not None)
        if reason is not None:
            self._n_recent_rejected += 1
        cal = self._calibration
        if reason is not None:
            if cal is not None:
                cal.n_rejected += 1
            return self._update(_update_time(t, self._last_t), None, reason, None, (), None)
        t = float(t)
        rr_ms = float(rr_ms)
        if last_t is not None and t - last_t > c.gap_s:
            self._new_segment()
        self._last_t = t
        x = round(rr_ms * US_PER_MS)  # whole µs, as intake.rr_to_us
        v = self._screen.push(x)
        k = self._store.append(t, v, contact, x)
        if self._seg_start_t is None:
            self._seg_start_t = t
        self._short.add_newest()
        self._long.add_newest()
        # the fast heart rate stays on raw values: its 5-beat median already ignores an isolated
        # artifact, and screening it would delay a genuine surge by half the reference window
        self._fast_rr.append(x)
        self._fast_rr_n.append(x)
        revised = self._judge(x) if self._artifacts else ()
        seg0 = self._seg_start_t
        freq = (
            self._frequency(t)
            if t - seg0 >= MIN_SPAN_S
            and (self._last_freq_t is None or t - self._last_freq_t >= c.frequency_cadence_s)
            else None
        )
        if v == x:
            beat = CleanBeat(t, x / 1000.0, rr_ms, False, None, contact)
            hr = 60000.0 / rr_ms
        else:
            beat = CleanBeat(t, v / 1000.0, rr_ms, True, PROVISIONAL, contact)
            hr = 60_000_000.0 / v
        if cal is not None:
            cal.n_accepted += 1
            cal.rr_sum_ms += rr_ms
            cal.n_corrected += sum(1 for b in revised if b.corrected and b.t >= cal.start_t)
        if k & 255 == 0:  # trimming the store is amortised; it keeps at most a few hundred extra
            self._drop_old(k)
        return self._update(t, beat, None, hr, revised, freq)

    def push_hr(self, t: float, hr_bpm: float, contact: bool | None = None) -> BeatUpdate:
        """A heart rate without RR intervals (HR-only strap): HRV unavailable, arousal from HR."""
        self._contact = contact
        reason = hr_reason(t, hr_bpm, self._last_hr_t)
        if reason is not None:
            return self._update(_update_time(t, self._last_hr_t), None, reason, None, (), None)
        t = float(t)
        if self._last_hr_t is not None and t - self._last_hr_t > self.config.gap_s:
            self._fast_hr.clear()
        self._last_hr_t = t
        # One estimator (docs/arousal.md): below 60 bpm a strap that sends RR has notifications
        # without one. The value stays on RR (and HRV) until RR has been absent for gap_s, the
        # time after which the RR windows would restart anyway; only then heart rate alone.
        self._hr_only = self._last_t is None or t - self._last_t > self.config.gap_s
        self._fast_hr.append(float(hr_bpm))
        if self._calibration is not None:
            self._calibration.n_hr_samples += 1
        return self._update(t, None, None, float(hr_bpm), (), None)

    def set_ecg_verdict(self, t: float, verdict: EcgVerdict) -> bool:
        """What the ECG says about the RR interval pushed at `t` (ecg_reconcile.RrReconciler):
        NORMAL is never corrected, ECTOPIC always is (docs/ecg.md). False, and ignored, when
        no beat was pushed at exactly `t` in this segment or it has been judged already."""
        st = self._store
        i = bisect.bisect_left(st.t, t)
        if not self._artifacts or i == len(st.t) or st.t[i] != t:
            return False
        k = st.base + i
        if k < self._detector.next_beat:
            return False
        self._ecg_verdicts[k] = verdict
        if verdict is EcgVerdict.ECTOPIC:
            # corrected at once, not only when the RR detector reaches the beat six beats later:
            # in bigeminy the raw tail would otherwise dominate the live RMSSD. The judgement
            # then sets (and reports) the final value. A coupling interval whose pause had not
            # arrived yet is corrected with it.
            for m in (i - 1, i):  # a provisional value from the intake screen is replaced too
                if m >= 0 and self._ecg_verdicts.get(st.base + m) is EcgVerdict.ECTOPIC:
                    self._ecg_now(m)
        return True

    def _ecg_now(self, i: int) -> None:
        """Correct ectopic interval i (store index) at once (set_ecg_verdict)."""
        st = self._store
        k = st.base + i
        recent = [st.x[m] for m in range(max(0, i - 8), i) if not st.corrected[m]]
        j = overrule(
            Judgement(k, st.x[i], None), EcgVerdict.ECTOPIC, recent[-5:], self._ecg_pair(i)
        )
        if j.artifact is not None:
            old, was = st.x[i], st.corrected[i]
            st.x[i], st.corrected[i] = j.value_us, 1
            self._short.replace(k, old, j.value_us, was, 1)
            self._long.replace(k, old, j.value_us, was, 1)

    def set_movement(self, t: float, moving: bool) -> None:
        """The chest accelerometer's word at `t` (movement.MovementSample): while the client
        moves, arousal carries the reason "movement" and a lower confidence (arousal.py). A
        report older than MOVEMENT_STALE_S no longer counts."""
        self._moving_t = float(t) if moving else None

    def window_values_ms(self, which: str = "long") -> list[float]:
        """Current cleaned RR values (ms) of the "short" or "long" window, oldest first."""
        return (self._short if which == "short" else self._long).values_ms()

    # ---- internals -------------------------------------------------------------------------

    def _new_segment(self) -> None:
        self._store.clear()
        self._short.reset()
        self._long.reset()
        self._fast_rr.clear()
        self._fast_rr_n.clear()
        self._screen.reset()
        self._detector.reset()
        self._fast_hr.clear()
        self._ecg_verdicts.clear()
        self._seg_start_t = None
        self._last_freq_t = None
        self._latest_freq = None

    def _judge(self, x: int) -> tuple[CleanBeat, ...]:
        judgements = self._detector.push(x)
        if not judgements:
            return ()
        st = self._store
        base = st.base
        out: list[CleanBeat] = []
        for j in judgements:
            i = j.k - base
            if self._ecg_verdicts:
                v = self._ecg_verdicts.pop(j.k, None)
                if v is not None:
                    recent = [st.x[m] for m in range(max(0, i - 8), i) if not st.corrected[m]]
                    j = overrule(j, v, recent[-5:], self._ecg_pair(i))
            was = st.corrected[i]
            if j.artifact is None:
                if not was:
                    continue
                new, now = st.raw[i], 0  # screened at intake, judged normal: restore raw
            else:
                new, now = j.value_us, 1
            old = st.x[i]
            st.x[i] = new
            st.corrected[i] = now
            self._short.replace(j.k, old, new, was, now)
            self._long.replace(j.k, old, new, was, now)
            contact = CONTACT_CODES[st.contact[i]]
            out.append(
                CleanBeat(st.t[i], new / 1000.0, st.raw[i] / 1000.0, bool(now), j.artifact, contact)
            )
        return tuple(out)

    def _ecg_pair(self, i: int) -> int | None:
        """Half of interval i plus its partner (a coupling interval and its pause: the shorter
        before the longer), for an ectopic interval with no normal one nearby."""
        raw = self._store.raw
        if i > 0 and raw[i] > raw[i - 1]:
            return (raw[i - 1] + raw[i]) // 2
        if i + 1 < len(raw) and raw[i + 1] > raw[i]:
            return (raw[i] + raw[i + 1]) // 2
        return None

    def _frequency(self, t: float) -> FrequencyDomain | None:
        c = self.config
        if self._seg_start_t is None or t - self._seg_start_t < MIN_SPAN_S:
            return None
        if self._last_freq_t is not None and t - self._last_freq_t < c.frequency_cadence_s:
            return None
        self._last_freq_t = t
        st = self._store
        lo = bisect.bisect_right(st.t, t - c.frequency_window_s)
        ts = np.array(st.t[lo:])
        xs = np.array(st.x[lo:], dtype=np.float64) / 1000.0  # the same division, in one call
        fd = frequency_domain(
            t, c.frequency_window_s, ts, xs, self._paced_hz, c.coherence_half_width_hz
        )
        if self._calibration is not None and fd.hf_ms2 is not None:
            self._calibration.hf.append(fd.hf_ms2)
        self._latest_freq = fd
        return fd

    def _drop_old(self, k: int) -> None:
        st = self._store
        horizon = st.t[-1] - max(self.config.frequency_window_s, self.config.long_window_s)
        keep = st.base + bisect.bisect_right(st.t, horizon)
        # beats not judged yet stay: a judgement may still change their value
        pending = self._detector.next_beat if self._artifacts else k + 1
        st.drop_before(min(keep, self._short.lo, self._long.lo, pending))

    def _fast(self) -> float | None:
        if self._hr_only:
            return _median(self._fast_hr) if self._fast_hr else None
        rr = self._fast_rr
        if not rr:
            return None
        if self._guided_hz is None:
            return 60_000_000.0 / _median(self._fast_rr_n)
        n = self.config.fast_beats
        m = len(rr)
        recent = list(rr)[-n:]
        breath_us = 1_000_000.0 / self._guided_hz
        n = min(m, max(n, math.ceil(breath_us * len(recent) / sum(recent))))
        if m <= n:
            return 60_000_000.0 / _median(rr)
        # the newest n by index from the right (O(1) each on a deque), not a copy of all of it
        return 60_000_000.0 / _median([rr[i] for i in range(m - n, m)])

    def _update(
        self,
        t: float,
        beat: CleanBeat | None,
        rejected: str | None,
        hr: float | None,
        revised: tuple[CleanBeat, ...],
        freq: FrequencyDomain | None,
    ) -> BeatUpdate:
        c = self.config
        short: TimeDomain | None = None
        long: TimeDomain | None = None
        if self._hr_only:
            hrv_ok = False
            hrv_reason: str | None = HR_ONLY_REASON
            corrected_share = 0.0
        else:
            lw = self._long
            short = self._short.metrics()
            long = lw.metrics()
            corrected_share = lw.ncorr / lw.n if lw.n else 0.0
            seg0, last_t = self._seg_start_t, self._last_t
            warm = (
                seg0 is not None
                and last_t is not None
                and last_t - seg0 >= WARM_SHARE * c.long_window_s
            )
            hrv_ok = warm and long is not None and (long.rmssd_ms or 0.0) > 0
            if hrv_ok:
                hrv_reason = None
            elif warm:
                hrv_reason = "no beat-to-beat variability in the last minute (RMSSD is 0)"
            else:
                hrv_reason = "HRV window still filling (start or after a gap)"
        rejected_share = self._n_recent_rejected / len(self._recent) if self._recent else 0.0
        key = (corrected_share, rejected_share, self._contact, hrv_ok, hrv_reason)
        quality = self._quality_cache
        if quality is None or key != self._quality_key:
            # most beats leave the quality unchanged: the frozen object is shared then
            quality = signal_quality(*key, c.min_quality)
            self._quality_cache, self._quality_key = quality, key
        # hrv_ok means RMSSD > 0: its log, as arousal.ln_or_none, without the call
        ln_rmssd = (
            math.log(long.rmssd_ms) if hrv_ok and long is not None and long.rmssd_ms else None
        )
        fast = self._fast()
        cal = self._calibration
        if (
            cal is not None
            and fast is not None
            and (beat is not None or (hr is not None and self._hr_only))
        ):
            cal.add_fast(t, fast)
            if ln_rmssd is not None and beat is not None:
                cal.add_hrv(t, ln_rmssd)
        aro: Arousal = arousal_mod.estimate(
            t,
            fast,
            ln_rmssd,
            quality,
            self._baseline,
            c,
            "calibrating" if cal is not None else "no baseline",
        )
        mt = self._moving_t
        if mt is not None and -MOVEMENT_STALE_S <= t - mt <= MOVEMENT_STALE_S:
            aro = arousal_mod.during_movement(aro)
        return BeatUpdate(t, beat, rejected, hr, short, long, freq, quality, aro, revised)
