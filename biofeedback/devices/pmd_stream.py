"""PMD data notifications -> timed readings, for any source of frames (BLE, simulator, replay).

Pure: the receive time comes in as data. One `PmdFrameReader` per strap keeps a `PmdTimer` per
stream, so sample times and gaps (lost or cut frames, dropped links) follow the strap's own sensor
clock across reconnects.
"""

from __future__ import annotations

import logging

from biofeedback.devices import pmd
from biofeedback.devices.pmd_readings import (
    AccSamples,
    EcgSamples,
    PmdGap,
    PmdMalformed,
    PmdReading,
    PmdStream,
)
from biofeedback.devices.timing import PmdTimer
from biofeedback.errors import ParseError

__all__ = ["DEFAULT_RATE_HZ", "PmdFrameReader"]

log = logging.getLogger(__name__)

DEFAULT_RATE_HZ = {PmdStream.ECG: 130.0, PmdStream.ACC: 200.0}


class PmdFrameReader:
    """Decodes one strap's PMD data notifications into samples, gaps and malformed frames."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.acc_factor = 1.0  # the ACC stream's FACTOR (from its start response)
        self.timers: dict[PmdStream, PmdTimer] = {}
        self._malformed_in_row = 0

    def set_rate(self, stream: PmdStream, rate_hz: float) -> None:
        """The stream's nominal rate (its start settings); a change restarts its timing."""
        timer = self.timers.get(stream)
        if timer is None or timer.nominal_rate_hz != rate_hz:
            self.timers[stream] = PmdTimer(rate_hz)

    def read(self, received_t: float, raw: bytes) -> list[PmdReading]:
        """The readings of one notification received at `received_t` (a gap first, if any)."""
        try:
            frame = pmd.decode_frame(raw, acc_factor=self.acc_factor)
        except ParseError as exc:
            self._malformed_in_row += 1
            (log.warning if self._malformed_in_row == 1 else log.debug)(
                "strap %r: malformed PMD frame: %s (%d bytes)", self.device, exc, len(raw)
            )
            return [PmdMalformed(self.device, received_t, raw, str(exc))]
        self._malformed_in_row = 0
        stream = PmdStream.ECG if isinstance(frame, pmd.EcgFrame) else PmdStream.ACC
        timer = self.timers.get(stream)
        if timer is None:
            timer = self.timers[stream] = PmdTimer(DEFAULT_RATE_HZ[stream])
        n = len(frame.samples_uv) if isinstance(frame, pmd.EcgFrame) else len(frame.samples_mg)
        times, gap = timer.frame(received_t, frame.sensor_time_ns, n)
        out: list[PmdReading] = []
        if gap is not None:
            gap_s, lost, why = gap
            log.info(
                "strap %r: %s gap of %.3f s (%d samples): %s",
                self.device,
                stream.value,
                gap_s,
                lost,
                why,
            )
            out.append(PmdGap(self.device, stream, times[0], gap_s, lost, why))
        if isinstance(frame, pmd.EcgFrame):
            out.append(
                EcgSamples(
                    self.device, times, frame.samples_uv, frame.sensor_time_ns, received_t, raw
                )
            )
        else:
            out.append(
                AccSamples(
                    self.device,
                    times,
                    frame.samples_mg,
                    frame.sensor_time_ns,
                    received_t,
                    raw,
                    self.acc_factor,
                )
            )
        return out
