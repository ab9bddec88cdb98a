"""What crosses the devices seam: parsed measurements, timed beats, device events, Device.

Times (`t`) are float seconds on the session clock: Unix epoch seconds for real straps, a virtual
(possibly accelerated) epoch for the simulated strap. Nothing downstream reads a clock of its own.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol, Self

RR_UNITS_PER_SECOND = 1024


@dataclass(frozen=True, slots=True)
class HeartRateMeasurement:
    """One decoded Heart Rate Measurement (0x2A37) notification."""

    hr_bpm: int
    contact_supported: bool
    contact_detected: bool  # always False when contact_supported is False
    energy_expended_kj: int | None
    rr_1024: tuple[int, ...]  # RR intervals in 1/1024 s, oldest first

    @property
    def rr_ms(self) -> tuple[float, ...]:
        """RR intervals in milliseconds (exact: n * 1000 / 1024)."""
        return tuple(v * 1000.0 / RR_UNITS_PER_SECOND for v in self.rr_1024)

    @property
    def contact(self) -> bool | None:
        """Skin contact: True/False when the strap reports it, None when it cannot tell."""
        return self.contact_detected if self.contact_supported else None


@dataclass(frozen=True, slots=True)
class Beat:
    """One heartbeat: the RR interval that ends at time `t` (the R peak)."""

    t: float
    rr_ms: float
    hr_bpm: int  # the HR the strap reported in the same notification
    contact: bool | None  # None: the strap does not report skin contact
    device: str


@dataclass(frozen=True, slots=True)
class Notification:
    """A raw 0x2A37 notification as received, with what was decoded from it.

    `measurement` is None and `error` says why when the payload was malformed; `beats` holds the
    RR intervals of the notification, each given its own reconstructed time.
    """

    t: float  # receive time
    device: str
    payload: bytes
    measurement: HeartRateMeasurement | None
    beats: tuple[Beat, ...]
    error: str | None = None


class DeviceEventKind(enum.StrEnum):
    CONNECTED = "connected"
    SIGNAL_LOST = "signal_lost"  # connection dropped or no notification for too long
    SIGNAL_RESTORED = "signal_restored"  # gap_s says how long it lasted
    CONTACT_LOST = "contact_lost"
    CONTACT_RESTORED = "contact_restored"
    BATTERY = "battery"
    INFO = "info"  # Device Information read
    MALFORMED = "malformed"  # a notification could not be parsed (detail says why)
    ENDED = "ended"  # the device has no more data (replay finished, simulation stopped)
    ERROR = "error"  # the strap cannot be reached (detail: what is wrong, hint: how to fix it)


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """Device Information service (0x180A) strings, when readable."""

    name: str
    address: str
    manufacturer: str | None = None
    model: str | None = None
    firmware: str | None = None
    hardware: str | None = None
    software: str | None = None
    serial: str | None = None


@dataclass(frozen=True, slots=True)
class DeviceEvent:
    """Something that happened to the strap rather than to the heart."""

    t: float
    device: str
    kind: DeviceEventKind
    detail: str = ""
    battery_pct: int | None = None
    gap_s: float | None = None
    info: DeviceInfo | None = None
    hint: str = ""  # ERROR: what a person can do about it


DeviceReading = Notification | DeviceEvent


class Device(Protocol):
    """A source of readings: BLE strap, simulated strap or replay all look like this.

    Use as `async with device: async for r in device.readings(): ...`. `readings()` ends when the
    device has nothing more to give (replay end) or when the context is left.
    """

    name: str

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc: object) -> None: ...

    def readings(self) -> AsyncIterator[DeviceReading]: ...
