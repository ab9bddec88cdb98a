"""A simulated chest strap that sends the same 0x2A37 bytes a real one does.

`SimulatedStrap` is the async `Device` the demo and tests use. Its behaviour is decided by
`StrapEmulator`, a synchronous, deterministic core (seeded, time passed in) that turns the beats of
`biofeedback.devices.physiology.Physiology` into Polar-H10-like notifications: about one per
`notify_interval_s`, carrying the RR intervals completed since the previous one (usually 0-2, 3 when
a notification is late), an HR field averaged over the last few seconds, and sensor-contact bits.
Every payload is encoded with `encode_heart_rate_measurement` and decoded again by the real path
(`BeatTimer.notification`), so the simulator exercises the parser and beat timing like a strap.

With `raw_data=True` the strap also streams what a Polar H10's PMD service would: ECG (130 Hz) and
chest acceleration (200 Hz) made by `pmd_sim.PmdEmulator` from the same beats and breathing, as
real notification bytes decoded by the real path (`PmdFrameReader`), on `pmd_readings()`. Each
frame's receive time is its last sample's time plus `_PMD_DELAY_S` (data, like every time here);
frames are handed over at the next heart-rate slot.

Notification times are the emulator's schedule anchored on `clock.now()` when the context is
entered; the strap sleeps on the clock until each is due (so `ScaledClock(speed=20)` runs 20x real
time). If the consumer falls behind, due notifications are delivered late but keep their scheduled
times, so one seed gives the same readings however loaded the machine is.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Self

import numpy as np

from biofeedback.clock import Clock
from biofeedback.devices.hrm import encode_heart_rate_measurement
from biofeedback.devices.physiology import Physiology, SimBeat, SimProfile, check_stimulus
from biofeedback.devices.pmd_readings import PmdReading, PmdSource, PmdStatus, PmdStream
from biofeedback.devices.pmd_sim import PmdEmulator
from biofeedback.devices.pmd_stream import PmdFrameReader
from biofeedback.devices.readings import (
    Device,
    DeviceEvent,
    DeviceEventKind,
    DeviceInfo,
    DeviceReading,
    HeartRateMeasurement,
)
from biofeedback.devices.timing import BeatTimer
from biofeedback.errors import DeviceError

__all__ = ["SimProfile", "SimulatedStrap", "StrapEmulator"]

log = logging.getLogger(__name__)

_HR_AVERAGE_S = 4.0  # the strap's HR field averages the RR of about this many seconds
_LATE_NOTIFICATION_P = 0.03  # a notification sometimes slips to the next connection event
_JITTER_S = 0.04
_NO_RR_NOTICE_AFTER = 10  # as BleStrap: notifications without RR before saying HRV is unavailable
_KJ_PER_S_AT_60_BPM = 0.07  # ~70 W at rest, scaled with heart rate
_PMD_DELAY_S = 0.02  # a PMD frame's delivery delay after its last sample
_PMD_QUEUE_MAX = 4096  # raw-data readings held for a slow consumer (as BleStrap)


def _window_active(elapsed: float, every: float | None, length: float, phase: float) -> bool:
    """Periodic windows [n*every + phase, n*every + phase + length), n >= 1."""
    if every is None:
        return False
    x = elapsed - phase
    n = math.floor(x / every)
    return n >= 1 and x - n * every < length


class StrapEmulator:
    """The strap's behaviour without asyncio: call `start()`, then `step(t)` at each due time."""

    def __init__(
        self,
        name: str,
        *,
        start_t: float,
        seed: int = 1,
        profile: SimProfile | None = None,
        raw_data: bool = False,
        movement_every_s: float | None = None,
    ) -> None:
        self.name = name
        self.profile = profile if profile is not None else SimProfile()
        self.start_t = float(start_t)
        # Raw ECG / ACC (PMD): frames decoded by the real reader, collected per step.
        self.pmd = (
            PmdEmulator(start_t=start_t, seed=seed, movement_every_s=movement_every_s)
            if raw_data
            else None
        )
        self.pmd_reader = PmdFrameReader(name)
        self.pmd_pending: list[PmdReading] = []
        self.seed = seed
        self.model = Physiology(start_t=start_t, seed=seed, profile=self.profile)
        self.timer = BeatTimer(name)
        self._rng = np.random.default_rng([seed, 0x5EED])  # strap's own randomness
        self._k = 0  # index of the last notification slot stepped through
        self._due = self._schedule(1)
        self._last_sent_t = start_t
        self._in_dropout = False
        self._dropout_end = start_t
        self._contact = True
        self._battery: int | None = None
        self._recent: collections.deque[tuple[float, float]] = collections.deque()  # (t, rr_s)
        self._held: list[SimBeat] = []  # beats of a notification that slipped
        self._sent = 0
        self._energy_kj = 0.0
        self._energy_t = start_t
        self._without_rr = 0
        self._no_rr_said = False
        self._corrupted = 0  # malformed payloads sent so far (one per malformed_every_s)
        self.address = f"SIM:00:00:00:{(seed >> 8) & 0xFF:02X}:{seed & 0xFF:02X}"
        self.info = DeviceInfo(
            name=name,
            address=self.address,
            manufacturer="biofeedback",
            model="SimStrap",
            firmware="sim-1",
            hardware="virtual",
            software="biofeedback.devices.simulated",
            serial=f"SIM{seed & 0xFFFFFF:06d}",
        )

    # -- schedule -----------------------------------------------------------------------------
    def next_due(self) -> float:
        """Session time of the next notification slot."""
        return self._due

    def _schedule(self, k: int) -> float:
        # slots stay on a fixed grid (no drift) with a little connection-interval jitter
        jitter = float(self._rng.uniform(-_JITTER_S, _JITTER_S))
        return self.start_t + k * self.profile.notify_interval_s + jitter

    def set_stimulus(self, *, exposure: float, paced_breathing_bpm: float | None) -> None:
        """Forward the client's situation to the physiology model."""
        self.model.set_stimulus(exposure=exposure, paced_breathing_bpm=paced_breathing_bpm)

    # -- readings -----------------------------------------------------------------------------
    def start(self) -> list[DeviceReading]:
        """What a freshly connected strap produces: INFO, CONNECTED, BATTERY."""
        t = self.start_t
        self._battery = self._battery_at(t)
        return [
            self._event(
                t, DeviceEventKind.INFO, "biofeedback SimStrap firmware sim-1", info=self.info
            ),
            self._event(t, DeviceEventKind.CONNECTED, f"connected to {self.address}"),
            self._event(t, DeviceEventKind.BATTERY, "read", battery_pct=self._battery),
        ]

    def _battery_at(self, t: float) -> int:
        p = self.profile
        drained = p.battery_drain_pct_per_h * (t - self.start_t) / 3600.0
        return max(0, math.ceil(p.battery_start_pct - drained - 1e-9))

    def _avg_hr(self, t: float) -> int:
        while self._recent and self._recent[0][0] < t - _HR_AVERAGE_S:
            self._recent.popleft()
        if not self._recent:
            return round(self.model.mean_hr_bpm())
        mean_rr = sum(rr for _, rr in self._recent) / len(self._recent)
        return max(1, min(0xFFFF, round(60.0 / mean_rr)))

    def step(self, t: float) -> list[DeviceReading]:
        """Advance to the notification slot due at `t` and return what the strap sends then.

        Mirrors what `BleStrap` reports for a real strap: a drop is SIGNAL_LOST; on the way back
        CONNECTED and BATTERY (re-read after reconnecting), then SIGNAL_RESTORED with the gap
        since the last data, contact changes, the notification. A malformed payload comes as an
        error `Notification` followed by a MALFORMED event.
        """
        self._k += 1
        self._due = self._schedule(self._k + 1)
        p = self.profile
        out: list[DeviceReading] = []
        elapsed = t - self.start_t

        fresh = self.model.beats_until(t)
        self._pmd_step(t, fresh)
        beats = self._held + fresh
        self._held = []
        for b in beats:
            self._recent.append((b.t, b.rr_s))
        self._energy_kj += (t - self._energy_t) * _KJ_PER_S_AT_60_BPM * self._avg_hr(t) / 60.0
        self._energy_t = t

        if _window_active(elapsed, p.dropout_every_s, p.dropout_len_s, 0.0):
            if not self._in_dropout:
                self._in_dropout = True
                every = p.dropout_every_s or 0.0
                self._dropout_end = (
                    self.start_t + math.floor(elapsed / every) * every + p.dropout_len_s
                )
                log.info("%s: simulated link drop at t=%.1f", self.name, t)
                out.append(
                    self._event(
                        t,
                        DeviceEventKind.SIGNAL_LOST,
                        f"simulated link drop; last data at t={self._last_sent_t:.3f}",
                    )
                )
            return out  # the link is down: the beats of this second are never reported

        battery = self._battery_at(t)
        if self._in_dropout:
            self._in_dropout = False
            gap = t - self._last_sent_t
            log.info("%s: simulated link restored after %.1f s", self.name, gap)
            self.timer.reset()
            self._battery = battery
            out += [
                self._event(t, DeviceEventKind.CONNECTED, f"connected to {self.address}"),
                self._event(t, DeviceEventKind.BATTERY, "read", battery_pct=battery),
                self._event(t, DeviceEventKind.SIGNAL_RESTORED, f"gap of {gap:.1f} s", gap_s=gap),
            ]
            # a reconnected strap only reports beats it measured after the link came back
            beats = [b for b in beats if b.t > self._dropout_end]
        elif battery != self._battery:
            self._battery = battery
            out.append(self._event(t, DeviceEventKind.BATTERY, "notified", battery_pct=battery))

        contact_loss = _window_active(
            elapsed,
            p.contact_loss_every_s,
            p.contact_loss_len_s,
            (p.contact_loss_every_s or 0.0) / 2.0,
        )
        if contact_loss and self._contact:
            self._contact = False
            out.append(
                self._event(t, DeviceEventKind.CONTACT_LOST, "strap reports no skin contact")
            )
        elif not contact_loss and not self._contact:
            self._contact = True
            out.append(self._event(t, DeviceEventKind.CONTACT_RESTORED, "skin contact regained"))

        if self._contact and not p.hr_only and beats and self._rng.random() < _LATE_NOTIFICATION_P:
            # this connection event is missed: the RR intervals ride on the next notification
            self._held = beats
            return out

        if p.hr_only:
            rr: tuple[int, ...] = ()
        elif self._contact:
            rr = tuple(min(0xFFFF, int(b.rr_s * 1024)) for b in beats)
        else:
            # without skin contact a strap reports noise detected as beats: bogus RR, flagged
            n = int(self._rng.integers(0, 3))
            rr = tuple(int(v) for v in self._rng.integers(200, 2000, size=n))
        self._sent += 1
        energy = None
        if p.energy_expended and self._sent % 10 == 1:
            energy = min(0xFFFF, int(self._energy_kj))
        m = HeartRateMeasurement(
            hr_bpm=self._avg_hr(t),
            contact_supported=True,
            contact_detected=self._contact,
            energy_expended_kj=energy,
            rr_1024=rr,
        )
        payload = encode_heart_rate_measurement(m, force_uint16=p.hr_uint16)
        if p.malformed_every_s is not None and elapsed // p.malformed_every_s > self._corrupted:
            self._corrupted = int(elapsed // p.malformed_every_s)
            # a corrupted notification: the last byte is lost in transit
            bad = self.timer.notification(t, payload[:-1])
            out.append(bad)
            out.append(
                self._event(
                    t,
                    DeviceEventKind.MALFORMED,
                    f"{bad.error} (payload {bad.payload.hex() or 'empty'})",
                )
            )
            return out
        out.append(self.timer.notification(t, payload))
        self._last_sent_t = t
        if rr:
            self._without_rr = 0
        else:
            self._without_rr += 1
            if self._without_rr == _NO_RR_NOTICE_AFTER and not self._no_rr_said:
                self._no_rr_said = True
                out.append(
                    self._event(
                        t,
                        DeviceEventKind.INFO,
                        "strap sends heart rate without RR intervals: HRV unavailable",
                        info=self.info,
                    )
                )
        return out

    def _pmd_step(self, t: float, fresh: list[SimBeat]) -> None:
        """The raw-data frames complete by `t`, read as a strap's; those in a drop are lost."""
        if self.pmd is None:
            return
        self.pmd.add_beats(fresh)
        p = self.profile
        for last_t, raw in self.pmd.frames_until(t):
            if _window_active(last_t - self.start_t, p.dropout_every_s, p.dropout_len_s, 0.0):
                continue  # never sent: the reader sees the gap in sensor time
            self.pmd_pending += self.pmd_reader.read(last_t + _PMD_DELAY_S, raw)

    def _event(
        self,
        t: float,
        kind: DeviceEventKind,
        detail: str = "",
        *,
        battery_pct: int | None = None,
        gap_s: float | None = None,
        info: DeviceInfo | None = None,
    ) -> DeviceEvent:
        return DeviceEvent(
            t=t,
            device=self.name,
            kind=kind,
            detail=detail,
            battery_pct=battery_pct,
            gap_s=gap_s,
            info=info,
        )


class SimulatedStrap:
    """A `Device` that simulates a chest strap on a client who reacts to exposure and breathing.

    `async with SimulatedStrap(clock=clock) as strap: async for r in strap.readings(): ...`
    yields INFO, CONNECTED and BATTERY events, then a `Notification` about once per second of
    session time, plus events for simulated drops and contact loss, until the context is left.
    Call `set_stimulus` whenever the exposure intensity or the paced-breathing guidance changes.
    """

    def __init__(
        self,
        name: str = "SimStrap",
        *,
        clock: Clock,
        seed: int = 1,
        profile: SimProfile | None = None,
        raw_data: bool = False,
        movement_every_s: float | None = None,
    ) -> None:
        self.name = name
        self.profile = profile if profile is not None else SimProfile()
        self.raw_data = raw_data
        self.movement_every_s = movement_every_s
        self._pmd_queue: asyncio.Queue[PmdReading | None] | None = None
        self._clock = clock
        self._seed = seed
        self._stimulus: tuple[float, float | None] = (0.0, None)
        self._emulator: StrapEmulator | None = None
        self._open = False
        self._sleepers: set[asyncio.Future[None]] = set()

    @property
    def emulator(self) -> StrapEmulator | None:
        """The running emulator (ground truth for tests), None outside the context."""
        return self._emulator

    def set_stimulus(self, *, exposure: float, paced_breathing_bpm: float | None) -> None:
        """Exposure intensity 0..1 now, and the pacer's rate (None when no guidance runs)."""
        check_stimulus(exposure, paced_breathing_bpm)
        self._stimulus = (exposure, paced_breathing_bpm)
        if self._emulator is not None:
            self._emulator.set_stimulus(exposure=exposure, paced_breathing_bpm=paced_breathing_bpm)

    async def __aenter__(self) -> Self:
        self._emulator = StrapEmulator(
            self.name,
            start_t=self._clock.now(),
            seed=self._seed,
            profile=self.profile,
            raw_data=self.raw_data,
            movement_every_s=self.movement_every_s,
        )
        if self._pmd_queue is not None:
            self._pmd_queue.put_nowait(None)  # ends a reader of the previous context
        self._pmd_queue = asyncio.Queue()
        t = self._clock.now()
        if self.raw_data:
            for stream, rate in ((PmdStream.ECG, 130), (PmdStream.ACC, 200)):
                detail = f"{stream.value.upper()} streaming (sample_rate {rate}, simulated)"
                self._pmd_queue.put_nowait(PmdStatus(self.name, t, stream, detail))
        else:
            self._pmd_queue.put_nowait(
                PmdStatus(self.name, t, None, "raw data (PMD) not enabled on this strap", False)
            )
        exposure, paced = self._stimulus
        self._emulator.set_stimulus(exposure=exposure, paced_breathing_bpm=paced)
        self._open = True
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._open = False
        if self._pmd_queue is not None:
            self._pmd_queue.put_nowait(None)
        for sleeper in list(self._sleepers):
            sleeper.cancel()  # wake readers so they end now, not at the next due time

    async def readings(self) -> AsyncIterator[DeviceReading]:
        """Device events and notifications, in time order, until the context is left.

        A reader waiting for the next notification when the context is left is woken and ends
        at once; cancelling the reader stops it at once too. Re-entering the context starts a
        fresh strap (new connection, same seed) and ends any reader of the previous one.
        """
        emu = self._emulator
        if emu is None or not self._open:
            raise DeviceError(f"{self.name}: enter `async with` the strap before reading from it")
        for r in emu.start():
            yield r
        while self._open and self._emulator is emu:
            due = emu.next_due()
            if not await self._sleep(due - self._clock.now()):
                return
            if not (self._open and self._emulator is emu):
                return
            for r in emu.step(due):
                yield r
            self._hand_over_pmd(emu)

    def _hand_over_pmd(self, emu: StrapEmulator) -> None:
        queue = self._pmd_queue
        pending, emu.pmd_pending = emu.pmd_pending, []
        if queue is None:
            return
        for item in pending:
            if queue.qsize() >= _PMD_QUEUE_MAX:
                queue.get_nowait()  # nobody reads raw data: keep memory bounded
            queue.put_nowait(item)

    async def pmd_readings(self) -> AsyncIterator[PmdReading]:
        """Raw ECG / ACC samples and status (see `PmdSource`), until the context is left.

        Samples arrive as `readings()` is consumed (the heart-rate schedule drives time)."""
        queue = self._pmd_queue
        if queue is None or not self._open:
            raise DeviceError(f"{self.name}: enter `async with` the strap before reading from it")
        while True:
            item = await queue.get()
            if item is None:
                return
            yield item

    async def _sleep(self, seconds: float) -> bool:
        """Sleep on the clock; False when leaving the context cut the sleep short."""
        sleeper = asyncio.ensure_future(self._clock.sleep(seconds))
        self._sleepers.add(sleeper)
        try:
            await sleeper
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # the reader itself is being cancelled
            return False
        finally:
            self._sleepers.discard(sleeper)
            sleeper.cancel()
        return True


if TYPE_CHECKING:  # mypy proves the simulated strap fits the device seam

    def _is_a_device(strap: SimulatedStrap) -> Device:
        return strap

    def _is_a_pmd_source(strap: SimulatedStrap) -> PmdSource:
        return strap
