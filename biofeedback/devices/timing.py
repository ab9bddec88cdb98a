"""Beat timing: give each RR interval of a notification its own time, without inventing beats.

RR intervals carry no timestamps and one notification can hold several, sometimes seconds old.
The newest RR ends at (about) the receive time; older ones end earlier by the sum of the RR values
after them. When the strap's own RR sum runs ahead of the receive clock (notification jitter,
buffering), times are pushed forward just enough to stay strictly increasing, never backwards.
"""

from __future__ import annotations

from biofeedback.devices.hrm import parse_heart_rate_measurement
from biofeedback.devices.readings import Beat, HeartRateMeasurement, Notification
from biofeedback.errors import ParseError

# Beats closer together than this after reconstruction are nudged apart to keep times monotonic.
_MIN_STEP_S = 1e-3


class BeatTimer:
    """Reconstructs beat times for one device's stream of notifications."""

    def __init__(self, device: str) -> None:
        self.device = device
        self._last_t: float | None = None

    def reset(self) -> None:
        """Forget the last beat time (after a reconnect the old chain no longer applies)."""
        self._last_t = None

    def beats(self, received_t: float, m: HeartRateMeasurement) -> tuple[Beat, ...]:
        """Beats of one measurement received at `received_t`, oldest first, times increasing."""
        if not m.rr_1024:
            return ()
        rr_ms = m.rr_ms
        ends: list[float] = []
        t = received_t
        for v in reversed(rr_ms):
            ends.append(t)
            t -= v / 1000.0
        ends.reverse()
        out: list[Beat] = []
        for end, v in zip(ends, rr_ms, strict=True):
            if self._last_t is not None and end <= self._last_t:
                end = self._last_t + _MIN_STEP_S
            self._last_t = end
            out.append(Beat(t=end, rr_ms=v, hr_bpm=m.hr_bpm, contact=m.contact, device=self.device))
        return tuple(out)

    def notification(self, received_t: float, payload: bytes) -> Notification:
        """Parse `payload` and time its beats; a malformed payload becomes an error Notification."""
        try:
            m = parse_heart_rate_measurement(payload)
        except ParseError as exc:
            return Notification(
                t=received_t,
                device=self.device,
                payload=bytes(payload),
                measurement=None,
                beats=(),
                error=str(exc),
            )
        return Notification(
            t=received_t,
            device=self.device,
            payload=bytes(payload),
            measurement=m,
            beats=self.beats(received_t, m),
        )


# ---------------------------------------------------------------------- PMD (raw ECG / ACC)

_OFFSET_BUCKET_S = 10.0  # one lower-envelope point per this much sensor time
_OFFSET_BUCKETS = 30  # drift is fitted over this many points (five minutes)
_FIT_FROM = 6  # fewer points than this (a minute) fit the slope worse than assuming none
_MAX_DRIFT = 200e-6  # fitted drift beyond +-200 ppm is noise, not two crystals: ignore the fit


class SensorClock:
    """Maps a strap's sensor clock (ns) onto the service clock (s), robust to delivery jitter.

    A frame's receive time is its last sample's sensor time plus an offset plus a delivery delay
    that is never negative (radio, connection interval, queueing). So the least-delayed frames
    bound the offset from above: per `_OFFSET_BUCKET_S` of sensor time we keep the smallest
    `received - sensor` seen, and (from a minute on) fit a line through the last `_OFFSET_BUCKETS`
    of those minima;
    the slope is the crystals' relative drift, the line the offset at any sensor time. A late
    frame moves nothing; the mapping follows drift without one frame's jitter in it.
    """

    def __init__(self) -> None:
        self._points: list[tuple[float, float]] = []  # (bucket start sensor s, min offset)
        self._bucket = -1

    def reset(self) -> None:
        self._points.clear()
        self._bucket = -1

    def observe(self, received_t: float, sensor_s: float) -> None:
        candidate = received_t - sensor_s
        bucket = int(sensor_s // _OFFSET_BUCKET_S)
        if bucket == self._bucket and self._points:
            _, best = self._points[-1]
            if candidate < best:
                self._points[-1] = (sensor_s, candidate)
            return
        self._bucket = bucket
        self._points.append((sensor_s, candidate))
        del self._points[:-_OFFSET_BUCKETS]

    @property
    def drift_ppm(self) -> float:
        """Fitted drift of the sensor clock against the service clock (0 until two points)."""
        return self._fit()[1] * 1e6

    def _fit(self) -> tuple[float, float]:
        """(offset at sensor time 0, slope) of the lower envelope."""
        pts = self._points
        if not pts:
            return 0.0, 0.0
        if len(pts) < _FIT_FROM:
            return min(o for _, o in pts), 0.0
        n = len(pts)
        ms = sum(s for s, _ in pts) / n
        mo = sum(o for _, o in pts) / n
        sxx = sum((s - ms) ** 2 for s, _ in pts)
        slope = sum((s - ms) * (o - mo) for s, o in pts) / sxx if sxx > 0 else 0.0
        if abs(slope) > _MAX_DRIFT:
            return min(o for _, o in pts), 0.0
        # The line through the mean sits inside the jitter; shift it down onto the lowest point.
        lift = min(o - (mo + slope * (s - ms)) for s, o in pts)
        return mo - slope * ms + lift, slope

    def to_service(self, sensor_s: float) -> float:
        """Service time of a sensor time (call `observe` first)."""
        a, b = self._fit()
        return sensor_s + a + b * sensor_s


class PmdTimer:
    """Gives each sample of a PMD stream its service time and counts the frames that never came.

    Per frame: the last sample is at the frame's sensor time; the others are one sample period
    apart before it. When the previous frame ended exactly one period before this frame's first
    sample (within half a period), the period is measured from the two frames' sensor times (the
    H10's 130 Hz is really ~130.2 Hz); otherwise the samples in between were lost (a cut or lost
    notification, a dropped link) and a gap of that much sensor time is reported, the same way a
    lost RR is a gap rather than a made-up beat. A sensor time that goes backwards means the strap
    restarted its stream: the chain starts over (reported as a gap of unknown length, 0 samples).
    """

    def __init__(self, nominal_rate_hz: float) -> None:
        if not nominal_rate_hz > 0:
            raise ValueError(f"sample rate must be > 0 Hz, got {nominal_rate_hz!r}")
        self.nominal_rate_hz = nominal_rate_hz
        self.clock = SensorClock()
        self._period_s = 1.0 / nominal_rate_hz
        self._last_ns: int | None = None
        self._last_t: float | None = None

    @property
    def period_s(self) -> float:
        """The sample period in use (measured once frames have followed each other)."""
        return self._period_s

    def reset(self) -> None:
        """Forget everything (another strap, or a stream restarted with other settings)."""
        self.clock.reset()
        self._period_s = 1.0 / self.nominal_rate_hz
        self._last_ns = None
        self._last_t = None

    def frame(
        self, received_t: float, sensor_time_ns: int, n: int
    ) -> tuple[tuple[float, ...], tuple[float, int, str] | None]:
        """Service times of a frame's `n` samples, and (gap_s, lost samples, why) if any came
        before it."""
        if n <= 0:
            return (), None
        gap: tuple[float, int, str] | None = None
        period = self._period_s
        last_ns = self._last_ns
        if last_ns is not None:
            dt = (sensor_time_ns - last_ns) / 1e9
            if dt <= 0:
                gap = (0.0, 0, "sensor time went back: the strap restarted the stream")
                self.clock.reset()
                self._last_t = None
            else:
                missing = round(dt / period) - n
                if missing >= 1:
                    gap = (dt - n * period, missing, "frames lost or cut")
                else:
                    measured = dt / n
                    # Follow the real rate slowly; one odd frame moves it little.
                    if abs(measured - period) < 0.25 * period:
                        period += (measured - period) * 0.05
                        self._period_s = period
        sensor_last_s = sensor_time_ns / 1e9
        self.clock.observe(received_t, sensor_last_s)
        end = self.clock.to_service(sensor_last_s)
        times = [end - period * (n - 1 - i) for i in range(n)]
        prev = self._last_t
        if prev is not None and times[0] <= prev:
            # The offset fit moved back a little: keep the stream strictly increasing.
            push = prev + _MIN_STEP_S * 1e-3 - times[0]
            times = [x + push for x in times]
        self._last_ns = sensor_time_ns
        self._last_t = times[-1]
        return tuple(times), gap
