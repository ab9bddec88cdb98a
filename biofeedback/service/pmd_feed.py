"""A strap's raw data (ECG / ACC, Polar's PMD) into the recording and onto MQTT, beside the beats.

The session path does not change: `SessionRunner` reads `device.readings()` (beats, events) as for
any strap. `PmdFeedDevice` wraps the device and, while it is open, reads `pmd_readings()` in a
task of its own (owned by its context) when the device offers them (`PmdSource`); a device
without raw data is passed through untouched. Each raw reading goes to the sink:

- the recording (`SessionRecorder.pmd`): every frame's bytes, gaps, malformed frames and status in
  pmd.tsv, every ECG sample in ecg.tsv;
- MQTT `ecg` (docs/mqtt.md): `EcgBatcher` batches samples by their own times, at most one message
  per `interval_s` (1 s) of session time, plus one when a gap cuts a batch short, each at most
  `max_s` (2 s) of samples; QoS 0 with expiry like the other live samples.

A failing sink (a full disk, a closed link) is logged, never allowed to end the strap or the
session: raw data is an addition to the beats, not a dependency.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol, Self

from biofeedback.devices.pmd_readings import (
    EcgSamples,
    PmdGap,
    PmdReading,
    PmdSource,
    PmdStatus,
    PmdStream,
)
from biofeedback.devices.readings import Device, DeviceReading
from biofeedback.service import payloads
from biofeedback.service.topics import Topic

__all__ = ["EcgBatcher", "PmdFeedDevice", "PmdSink", "with_pmd_feed"]

log = logging.getLogger(__name__)


class _Publisher(Protocol):
    def publish_kind(self, client_id: str, kind: Topic, payload: dict[str, Any]) -> None: ...


class EcgBatcher:
    """ECG samples -> `ecg` payloads at a bounded rate (pure: times come with the samples)."""

    def __init__(self, client_id: str, *, interval_s: float = 1.0, max_s: float = 2.0) -> None:
        if not (interval_s > 0 and max_s >= interval_s):
            raise ValueError("need interval_s > 0 and max_s >= interval_s")
        self.client_id = client_id
        self.interval_s = interval_s
        self.max_s = max_s
        self._t: list[float] = []
        self._uv: list[int] = []
        self._device = ""
        self._gap_before: float | None = None

    def add(self, r: PmdReading) -> list[dict[str, Any]]:
        """Take one reading; the payloads that are due now (usually none, at most two)."""
        out: list[dict[str, Any]] = []
        if isinstance(r, PmdGap) and r.stream is PmdStream.ECG:
            out += self._flush()  # the samples before the gap go as they are
            self._gap_before = (self._gap_before or 0.0) + r.gap_s
            return out
        if not isinstance(r, EcgSamples):
            return out
        self._device = r.device
        self._t.extend(r.t)
        self._uv.extend(r.uv)
        # A message covers at least `interval_s` of samples, so messages start >= 1 s apart.
        if self._t[-1] - self._t[0] >= self.interval_s:
            out += self._flush()
        return out

    def _flush(self) -> list[dict[str, Any]]:
        if not self._t:
            return []
        t, uv = self._t, self._uv
        dropped = 0
        keep_from = 0
        while t[-1] - t[keep_from] >= self.max_s:
            keep_from += 1
        if keep_from:
            dropped = keep_from
            t, uv = t[keep_from:], uv[keep_from:]
        dt = (t[-1] - t[0]) / (len(t) - 1) if len(t) > 1 else None
        payload = payloads.ecg(
            self.client_id,
            device=self._device,
            t=t[0],
            dt_s=dt if dt is not None else 1 / 130,
            uv=uv,
            gap_before_s=self._gap_before,
            dropped_samples=dropped,
        )
        self._t, self._uv, self._gap_before = [], [], None
        return [payload]


class PmdSink:
    """Where one client's raw readings go: its recording and its MQTT link."""

    def __init__(
        self,
        client_id: str,
        publisher: _Publisher | None,
        recorder: object | None,
        *,
        batcher: EcgBatcher | None = None,
    ) -> None:
        self.client_id = client_id
        self.publisher = publisher
        self.recorder = recorder
        self.batcher = batcher if batcher is not None else EcgBatcher(client_id)
        self.published = 0
        self.failures = 0

    def __call__(self, r: PmdReading) -> None:
        record = getattr(self.recorder, "pmd", None)
        if record is not None:
            try:
                record(r)
            except Exception as exc:  # a closed or failing recording must not stop the strap
                self._failed("recording", exc)
        if isinstance(r, PmdStatus):
            (log.info if r.ok else log.warning)(
                "client %s: strap %r raw data: %s", self.client_id, r.device, r.detail
            )
        if self.publisher is None:
            return
        for payload in self.batcher.add(r):
            try:
                self.publisher.publish_kind(self.client_id, Topic.ECG, payload)
                self.published += 1
            except Exception as exc:  # the link keeps its own queue; never end the strap
                self._failed("MQTT", exc)

    def _failed(self, where: str, exc: Exception) -> None:
        self.failures += 1
        (log.error if self.failures == 1 else log.debug)(
            "client %s: raw data not passed to %s: %s", self.client_id, where, exc
        )


class PmdFeedDevice:
    """A `Device` whose raw readings (if any) flow to `sink` while it is open."""

    def __init__(self, inner: Device, sink: Callable[[PmdReading], None]) -> None:
        self.inner = inner
        self.name = inner.name
        self._sink = sink
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        await self.inner.__aenter__()
        if isinstance(self.inner, PmdSource):
            self._task = asyncio.create_task(self._pump(self.inner), name=f"pmd-feed:{self.name}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        task, self._task = self._task, None
        try:
            await self.inner.__aexit__(*exc)
        finally:
            if task is not None:
                # The device's own exit ended pmd_readings(): let the pump pass on what was left.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(task), timeout=1.0)
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def readings(self) -> AsyncIterator[DeviceReading]:
        return self.inner.readings()

    def __getattr__(self, name: str) -> Any:
        # set_stimulus (the demo's simulated person), emulator, ... belong to the inner device
        return getattr(self.inner, name)

    async def _pump(self, source: PmdSource) -> None:
        async for r in source.pmd_readings():
            self._sink(r)


def with_pmd_feed(
    device: Device, client_id: str, publisher: _Publisher | None, recorder: object | None
) -> Device:
    """`device`, with its raw data (if it streams any) recorded and published for `client_id`."""
    return PmdFeedDevice(device, PmdSink(client_id, publisher, recorder))
