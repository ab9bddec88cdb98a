"""What crosses the devices seam from a strap's raw-data (PMD) streams: timed ECG and ACC samples,
gaps, malformed frames; and the `PmdSource` protocol a device implements to offer them.

These travel beside the beats, never instead of them: `Device.readings()` is unchanged (RR,
events), and a device that can stream raw data also offers `pmd_readings()`. A strap without PMD
(or a device that never had it) simply does not implement `PmdSource`, so nothing that consumes
beats changes for it.

Times (`t`) are service-clock seconds, like `Beat.t`: mapped from the strap's own sensor clock by
`biofeedback.devices.timing.PmdTimer` (per-sample times, robust to BLE delivery jitter).
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


class PmdStream(enum.StrEnum):
    ECG = "ecg"
    ACC = "acc"


@dataclass(frozen=True, slots=True)
class EcgSamples:
    """One ECG frame's samples, each with its own service time."""

    device: str
    t: tuple[float, ...]  # service time of each sample, increasing
    uv: tuple[int, ...]  # microvolts
    sensor_time_ns: int  # strap's time of the last sample
    received_t: float  # when the notification arrived
    payload: bytes  # the notification as received (kept by the recording)


@dataclass(frozen=True, slots=True)
class AccSamples:
    """One ACC frame's samples (x, y, z milli-g), each with its own service time."""

    device: str
    t: tuple[float, ...]
    mg: tuple[tuple[int, int, int], ...]
    sensor_time_ns: int
    received_t: float
    payload: bytes
    factor: float = 1.0  # the stream's FACTOR (needed to decode `payload` again)


@dataclass(frozen=True, slots=True)
class PmdGap:
    """Samples the strap took but we never got (lost or cut frames, a dropped link).

    Counted from the strap's own sensor clock: `gap_s` of sensor time between the last sample we
    have and the first sample after, `lost_samples` of them at the stream's measured rate.
    """

    device: str
    stream: PmdStream
    t: float  # service time of the first sample after the gap
    gap_s: float
    lost_samples: int
    reason: str


@dataclass(frozen=True, slots=True)
class PmdMalformed:
    """A data notification that did not decode (kept, so nothing received is lost)."""

    device: str
    received_t: float
    payload: bytes
    error: str


@dataclass(frozen=True, slots=True)
class PmdStatus:
    """What the strap's PMD service said: features, settings, started or refused streams."""

    device: str
    t: float
    stream: PmdStream | None
    detail: str
    ok: bool = True


PmdReading = EcgSamples | AccSamples | PmdGap | PmdMalformed | PmdStatus


@runtime_checkable
class PmdSource(Protocol):
    """A device that can stream raw ECG / ACC beside its beats.

    `pmd_readings()` yields in arrival order and ends when the device's context is left; for a
    strap that turns out to have no PMD service it yields one `PmdStatus(ok=False)` and then only
    ends with the context.
    """

    name: str

    def pmd_readings(self) -> AsyncIterator[PmdReading]: ...
