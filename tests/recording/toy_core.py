"""A small deterministic core with SessionCore's shape, for replay tests before the real one."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from biofeedback.devices.readings import DeviceEvent, Notification
from biofeedback.exposure.messages import Role, SessionEvent, SessionState
from biofeedback.signal.measures import (
    Arousal,
    ArousalBasis,
    BeatUpdate,
    CleanBeat,
    SignalQuality,
    TimeDomain,
)


@dataclass(frozen=True, slots=True)
class ToyOutput:
    updates: tuple[BeatUpdate, ...] = ()
    events: tuple[SessionEvent, ...] = ()


class ToyCore:
    """Running mean RR and a threshold on it; commands become transition events."""

    def __init__(self, *, jitter: bool = False) -> None:
        self.n = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.ev_seq = 0
        self.state = SessionState.READY
        self.jitter = jitter  # a non-deterministic core, to show the comparison can fail
        self.snapshot = {"state": self.state}

    def feed(self, item: Any) -> ToyOutput:
        ups: list[BeatUpdate] = []
        evs: list[SessionEvent] = []
        if isinstance(item, Notification):
            for b in item.beats:
                self.n += 1
                d = b.rr_ms - self.mean
                self.mean += d / self.n
                self.m2 += d * (b.rr_ms - self.mean)
                sd = math.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else None
                value = min(100.0, max(0.0, (900.0 - self.mean) / 3))
                if self.jitter and self.n == 50:
                    value += 1e-9
                td = TimeDomain(30.0, self.n, self.mean, 60000 / self.mean, sd, sd, None)
                ups.append(
                    BeatUpdate(
                        t=b.t,
                        beat=CleanBeat(b.t, b.rr_ms, b.rr_ms, False, None, b.contact),
                        rejected=None if b.rr_ms > 250 else "implausible",
                        hr_bpm=60000 / b.rr_ms,
                        short=td,
                        long=None,
                        frequency=None,
                        quality=SignalQuality(1.0, 0.0, 0.0, b.contact, True),
                        arousal=Arousal(b.t, value, 1.0, value, None, ArousalBasis.HR_HRV),
                    )
                )
                if value > 60 and self.state is not SessionState.PAUSED:
                    evs.append(self._go(b.t, SessionState.PAUSED, "arousal", value))
        elif isinstance(item, DeviceEvent):
            pass
        elif hasattr(item, "role"):
            evs.append(self._go(item.t, SessionState.EXPOSING, type(item).__name__, None))
        self.snapshot = {"state": self.state, "n": self.n}
        return ToyOutput(tuple(ups), tuple(evs))

    def _go(self, t: float, to: SessionState, reason: str, value: float | None) -> SessionEvent:
        self.ev_seq += 1
        ev = SessionEvent(
            self.ev_seq, t, "transition", Role.SYSTEM, self.state, to, reason, {"arousal": value}
        )
        self.state = to
        return ev
