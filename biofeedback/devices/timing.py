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
