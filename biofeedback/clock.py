"""Clocks for the async parts: real time, or a virtual epoch that runs `speed` times faster.

`signal` and `exposure` never read a clock; devices and the service do, through one of these, so
that a demo at `--speed 20` and a real session run the same code.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    """Session time in seconds (a Unix-epoch-like float) and sleeping in session seconds."""

    @property
    def speed(self) -> float: ...

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class ScaledClock:
    """Session time = start + elapsed wall time x speed (speed 1 is real time)."""

    def __init__(self, speed: float = 1.0, *, start: float | None = None) -> None:
        if not speed > 0:
            raise ValueError(f"clock speed must be > 0, got {speed!r}")
        self._speed = float(speed)
        self._start = time.time() if start is None else start
        self._m0 = time.monotonic()

    @property
    def speed(self) -> float:
        return self._speed

    def now(self) -> float:
        return self._start + (time.monotonic() - self._m0) * self._speed

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self._speed)


def wall_clock() -> ScaledClock:
    """The real-time clock used with real straps."""
    return ScaledClock(1.0)
