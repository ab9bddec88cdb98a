"""The live runner: one device, one client, one session, fed in order and fanned out to sinks.

Three tasks feed the session core, all in one event loop so inputs are processed strictly one at
a time: the device's readings, commands arriving over MQTT, and a once-a-second tick of session
time. Every input is recorded before its outputs are published, so the recording is the truth
and replay can reproduce it.

The device is supervised: when its code fails (a driver or parser bug, anything but a clean end),
the runner records a SIGNAL_LOST for it, so the session pauses as it does for a lost strap, tells
the therapist why, and opens a fresh device after a backoff; the first beat from the new one is
preceded by a SIGNAL_RESTORED. The session, its commands and its clock go on meanwhile, and in a
clinic service no other client notices (service/clinic.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from biofeedback.clock import Clock
from biofeedback.devices.readings import Device, DeviceEvent, DeviceEventKind, Notification
from biofeedback.errors import RecordingError
from biofeedback.exposure import SessionSnapshot
from biofeedback.exposure.assessment import AssessmentEvent, AssessmentState
from biofeedback.exposure.messages import ChooseBreathingRate, Command, SessionEvent, Tick
from biofeedback.service import payloads
from biofeedback.service.core import CoreOutput, SessionCore, SessionItem
from biofeedback.service.topics import Topic
from biofeedback.signal import BeatUpdate

log = logging.getLogger(__name__)

TICK_S = 1.0
SNAPSHOT_REFRESH_S = 5.0
DEVICE_RESTART_INITIAL_S = 1.0  # session seconds before the first restart of a failed device
DEVICE_RESTART_MAX_S = 30.0

# What BlueZ (and the kernel under it) say when the adapter has no room for another LE link:
# bluetoothd's "le-connection-concurrent-connection-limit" (EMLINK), the controller's HCI
# "Connection Limit Exceeded" (0x09) and "Connection Rejected due to Limited Resources" (0x0D).
_LINK_LIMIT_TEXTS = (
    "concurrent-connection-limit",
    "connection limit exceeded",
    "limited resources",
    "too many links",
)


def is_link_limit_error(text: str) -> bool:
    """True when a connection failure says the Bluetooth adapter holds no more links."""
    low = text.lower()
    return any(t in low for t in _LINK_LIMIT_TEXTS)


class Publisher(Protocol):
    """Where outputs go (the MQTT link); must never block or raise for a broker outage."""

    def publish_kind(self, client_id: str, kind: Topic, payload: dict[str, Any]) -> None: ...


class Recorder(Protocol):
    """The session recording (biofeedback.recording.SessionRecorder)."""

    def input(self, item: SessionItem, seq: int) -> None: ...

    def update(self, u: BeatUpdate) -> None: ...

    def events(self, evs: list[SessionEvent]) -> None: ...

    def assessment_events(self, evs: list[AssessmentEvent]) -> None: ...

    def snapshot(self, snap: SessionSnapshot) -> None: ...

    def flush_if_due(self, now_monotonic: float) -> None: ...

    def set_meta(self, **fields: Any) -> None: ...


@dataclass(frozen=True, slots=True)
class IncomingCommand:
    """A parsed, role-checked command waiting for the core, with where to send its reply."""

    command: Command
    reply: Callable[[dict[str, Any]], None]


class SessionRunner:
    """Drives a SessionCore from a device, a command queue and a clock."""

    def __init__(
        self,
        *,
        core: SessionCore,
        device: Device | None,
        clock: Clock,
        publisher: Publisher,
        recorder: Recorder | None = None,
        on_snapshot: Callable[[SessionSnapshot], None] | None = None,
        on_baseline: Callable[[Any], None] | None = None,
        on_assessment: Callable[[Any], object] | None = None,
        stop_after_s: float | None = None,
        device_factory: Callable[[], Device] | None = None,
        link_limit_hint: str = "",
    ) -> None:
        self.core = core
        # `device_factory` makes a fresh device after one failed (None: a failure ends the run)
        self.device = device if device is not None or device_factory is None else device_factory()
        self.device_factory = device_factory
        self.link_limit_hint = link_limit_hint
        self.device_failures = 0
        self._failed_at: float | None = None  # session time the failed device last had data
        self._contact_lost = False  # as the devices last said (a fresh one knows nothing of it)
        self.clock = clock
        self.publisher = publisher
        self.recorder = recorder
        self.on_snapshot = on_snapshot
        self.on_baseline = on_baseline
        # called with a resonance assessment's result when it ends (saved to the client's profile)
        self.on_assessment = on_assessment
        self._last_assessment_t = float("-inf")
        self.commands: asyncio.Queue[IncomingCommand] = asyncio.Queue()
        self.stop_after_s = stop_after_s
        self._client = core.client_id
        self._last_snapshot_t = float("-inf")
        self._last_guidance: object = object()
        self._recording_error: str | None = None
        self._status = payloads.StatusTracker(core.client_id)
        self.device_ended = asyncio.Event()

    async def run(self) -> None:
        """Run until cancelled, the device ends, or `stop_after_s` of session time has passed."""
        self._publish_snapshot(force=True)
        self.publisher.publish_kind(
            self._client,
            Topic.ASSESSMENT,
            payloads.assessment(
                self._client,
                self.core.assessment.snapshot(),
                (),
                self.core.assessment.chosen_rate_bpm,
                self.core.assessment.session.protocol,
            ),
        )
        async with asyncio.TaskGroup() as tg:
            device_task = tg.create_task(self._device_loop(), name="device")
            tick_task = tg.create_task(self._tick_loop(), name="tick")
            command_task = tg.create_task(self._command_loop(), name="commands")
            await self.device_ended.wait()
            for task in (device_task, tick_task, command_task):
                task.cancel()

    # ---- feeding --------------------------------------------------------------------------

    async def _device_loop(self) -> None:
        if self.device is None:
            raise ValueError("SessionRunner.run needs a device")
        while True:
            try:
                await self._read_device(self.device)
            except Exception as exc:  # the device's own code failed; CancelledError passes
                if self.device_factory is None:
                    raise
                delay = self._device_failed(self.device, exc)
                await self.clock.sleep(delay)
                self.device = self.device_factory()
                continue
            self.device_ended.set()
            return

    async def _read_device(self, device: Device) -> None:
        async with device:
            async for reading in device.readings():
                if self._failed_at is not None and _has_data(reading):
                    self._device_back(reading)
                self.process(reading)
                if isinstance(reading, DeviceEvent) and reading.kind is DeviceEventKind.ENDED:
                    return

    def _device_failed(self, device: Device, exc: Exception) -> float:
        """Record the failure as lost monitoring (the session pauses), tell the therapist, and
        return how long to wait before a fresh device."""
        self.device_failures += 1
        why = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        log.error(
            "client %s: strap %r failed (%s); its session pauses and the strap is opened again",
            self._client,
            device.name,
            why,
            exc_info=exc,
        )
        now = self.clock.now()
        if self._failed_at is None:
            self._failed_at = now
            self.process(
                DeviceEvent(
                    t=now,
                    device=device.name,
                    kind=DeviceEventKind.SIGNAL_LOST,
                    detail=f"strap software failed: {why}",
                )
            )
        self.publisher.publish_kind(
            self._client,
            Topic.EVENT,
            payloads.service_error(
                self._client, now, "device_failed", f"strap {device.name!r} failed: {why}"
            ),
        )
        n = self.device_failures
        return min(DEVICE_RESTART_MAX_S, DEVICE_RESTART_INITIAL_S * 2.0 ** min(n - 1, 10))

    def _device_back(self, reading: Notification | DeviceEvent) -> None:
        """The fresh device has data: monitoring is restored (its own state knows no loss)."""
        since, self._failed_at = self._failed_at, None
        self.device_failures = 0
        gap = None if since is None else max(0.0, reading.t - since)
        self.process(
            DeviceEvent(
                t=reading.t,
                device=reading.device,
                kind=DeviceEventKind.SIGNAL_RESTORED,
                detail="strap opened again after a failure",
                gap_s=gap,
            )
        )
        m = reading.measurement if isinstance(reading, Notification) else None
        if self._contact_lost and m is not None and m.contact is not False:
            # the failed device lost contact; the fresh one starts with it and will not say so
            self.process(
                DeviceEvent(
                    t=reading.t,
                    device=reading.device,
                    kind=DeviceEventKind.CONTACT_RESTORED,
                    detail="skin contact reported by the strap opened again",
                )
            )

    async def _tick_loop(self) -> None:
        start = self.clock.now()
        while True:
            await self.clock.sleep(TICK_S)
            now = self.clock.now()
            self.process(Tick(now))
            if self.stop_after_s is not None and now - start >= self.stop_after_s:
                log.info("session time limit of %.0f s reached", self.stop_after_s)
                self.device_ended.set()
                return

    async def _command_loop(self) -> None:
        while True:
            incoming = await self.commands.get()
            out = self.process(incoming.command)
            result = out.command
            if result is not None:
                incoming.reply(payloads.command_reply(self._client, out.t, result))

    def submit(self, command: Command, reply: Callable[[dict[str, Any]], None]) -> None:
        """Queue a validated command; it is stamped with the session time it is processed at."""
        self.commands.put_nowait(IncomingCommand(command, reply))

    # ---- one input ------------------------------------------------------------------------

    def process(self, item: SessionItem) -> CoreOutput:
        """Feed one input to the core, record it, publish what it produced."""
        out = self.core.feed(item)
        self._record(item, out)
        if isinstance(item, DeviceEvent):
            self._device_event(item)
        elif isinstance(item, Notification) and item.error is not None:
            self.publisher.publish_kind(
                self._client, Topic.EVENT, payloads.malformed(self._client, item)
            )
        for u in out.updates:
            for kind, payload in payloads.update_payloads(self._client, u):
                self.publisher.publish_kind(self._client, kind, payload)
        for ev in out.events:
            if ev.kind == "transition":
                log.info(
                    "session %s -> %s (%s): %s", ev.from_state, ev.to_state, ev.actor, ev.reason
                )
            payload = payloads.session_event(self._client, ev)
            self.publisher.publish_kind(self._client, Topic.EVENT, payload)
            if ev.kind.startswith("checkin"):
                self.publisher.publish_kind(self._client, Topic.CHECKIN, payload)
        if out.baseline is not None and self.on_baseline is not None:
            self.on_baseline(out.baseline)
        self._publish_assessment(out)
        # the client's own pace changes the pacer at once (no event says so)
        chose = isinstance(item, ChooseBreathingRate)
        self._publish_snapshot(force=bool(out.events or out.assessment_events or chose))
        return out

    def _record(self, item: SessionItem, out: CoreOutput) -> None:
        if self.recorder is None:
            return
        try:
            self.recorder.input(item, out.seq)
            for u in out.updates:
                self.recorder.update(u)
            if out.events:
                self.recorder.events(list(out.events))
            if out.assessment_events:
                self.recorder.assessment_events(list(out.assessment_events))
            if out.baseline is not None:
                self.recorder.set_meta(baseline_created=out.baseline)
            self.recorder.flush_if_due(time.monotonic())
        except RecordingError as exc:
            # The therapist must see this: a session that is not being recorded is not silent.
            if self._recording_error != str(exc):
                self._recording_error = str(exc)
                log.error("recording failed: %s", exc)
                self.publisher.publish_kind(
                    self._client,
                    Topic.EVENT,
                    payloads.service_error(self._client, out.t, "recording_failed", str(exc)),
                )
            return
        if self._recording_error is not None and getattr(self.recorder, "error", None) is None:
            # The rows held in memory were written after all: say so as loudly as the failure.
            self._recording_error = None
            dropped = sum(getattr(self.recorder, "dropped_rows", {}).values())
            if dropped:
                log.warning(
                    "recording works again; %d row(s) were dropped while the disk was full "
                    "(recorded in gaps.tsv)",
                    dropped,
                )
            else:
                log.warning("recording works again; nothing was lost")
            self.publisher.publish_kind(
                self._client,
                Topic.EVENT,
                payloads.service_error(
                    self._client, out.t, "recording_resumed", "recording works again"
                ),
            )

    def _device_event(self, e: DeviceEvent) -> None:
        if e.kind in (DeviceEventKind.CONTACT_LOST, DeviceEventKind.CONTACT_RESTORED):
            self._contact_lost = e.kind is DeviceEventKind.CONTACT_LOST
        if e.kind is DeviceEventKind.MALFORMED:
            # Told once, from the notification itself, which carries the raw bytes.
            return
        if e.kind is DeviceEventKind.ERROR and is_link_limit_error(f"{e.detail} {e.hint}"):
            text = (
                f"the Bluetooth adapter refused a link to strap {e.device!r}: it holds no more "
                f"connections ({e.detail}). "
                + (self.link_limit_hint or "Disconnect a strap or use a second adapter")
            )
            log.error("client %s: %s", self._client, text)
            self.publisher.publish_kind(
                self._client,
                Topic.EVENT,
                payloads.service_error(self._client, e.t, "adapter_link_limit", text),
            )
        self.publisher.publish_kind(
            self._client, Topic.EVENT, payloads.device_event(self._client, e)
        )
        self.publisher.publish_kind(self._client, Topic.STATUS, self._status.update(e))

    def _publish_assessment(self, out: CoreOutput) -> None:
        """The `assessment` topic: at once on its events, every few seconds while it runs."""
        host = self.core.assessment
        evs = out.assessment_events
        for ev in evs:
            if ev.kind == "transition":
                log.info(
                    "assessment %s -> %s (%s): %s", ev.from_state, ev.to_state, ev.actor, ev.reason
                )
        running = host.session.state is AssessmentState.RUNNING
        due = running and out.t - self._last_assessment_t >= SNAPSHOT_REFRESH_S
        if not (evs or due or (out.command is not None and out.command.ok)):
            return
        self._last_assessment_t = out.t
        snap = host.snapshot()
        self.publisher.publish_kind(
            self._client,
            Topic.ASSESSMENT,
            payloads.assessment(
                self._client, snap, evs, host.chosen_rate_bpm, host.session.protocol
            ),
        )
        result = host.finished()
        if result is not None and self.on_assessment is not None:
            try:
                self.on_assessment(result)
            except Exception as exc:  # the profile's disk: logged and told, the session goes on
                log.error("saving the assessment of %s failed: %s", self._client, exc)
                self.publisher.publish_kind(
                    self._client,
                    Topic.EVENT,
                    payloads.service_error(
                        self._client, out.t, "assessment_not_saved", f"not saved: {exc}"
                    ),
                )

    def _publish_snapshot(self, *, force: bool) -> None:
        snap = self.core.snapshot
        if not force and snap.t - self._last_snapshot_t < SNAPSHOT_REFRESH_S:
            return
        self._last_snapshot_t = snap.t
        self.publisher.publish_kind(
            self._client, Topic.SESSION, payloads.session_snapshot(self._client, snap)
        )
        if snap.guidance != self._last_guidance:
            self._last_guidance = snap.guidance
            self.publisher.publish_kind(
                self._client, Topic.GUIDANCE, payloads.guidance(self._client, snap.t, snap.guidance)
            )
        if self.recorder is not None:
            try:
                self.recorder.snapshot(snap)
            except RecordingError as exc:
                log.error("recording the session state failed: %s", exc)
        if self.on_snapshot is not None:
            self.on_snapshot(snap)


def _has_data(reading: Notification | DeviceEvent) -> bool:
    return isinstance(reading, Notification) and reading.measurement is not None
