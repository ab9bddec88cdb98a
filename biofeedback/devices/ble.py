"""A real Bluetooth LE chest strap (bleak) as a `Device`: connect, stream, and reconnect forever.

    strap = BleStrap("Polar H10 A1B2C3D4", clock=wall_clock())
    async with strap:
        async for reading in strap.readings():   # Notification | DeviceEvent, never ends by itself
            ...

Per connection: locate the strap (last known BLE device, else a scan for its name/address),
connect, read Device Information (0x180A, first connection only) -> one INFO event, read Battery
Level (0x2A19) -> BATTERY (and subscribe when the strap notifies it), subscribe to Heart Rate
Measurement (0x2A37).
Every 0x2A37 notification becomes a `Notification` via `BeatTimer.notification(clock.now(), ...)`;
a malformed one becomes a `Notification` with `error` set plus a MALFORMED event, never a crash.

Signal loss and gaps (what the session relies on):
- a drop is the strap disconnecting (bleak's disconnected callback) or no valid 0x2A37 notification
  for `stale_after_s` session seconds while connected (the link is then torn down and rebuilt);
- the first drop after data has flowed emits SIGNAL_LOST once; later failed attempts emit nothing;
- reconnect attempts go on while the context is open: the first immediately, then after
  `reconnect_initial_s`, doubling up to `reconnect_max_s`, each delay jittered by +-20 % (never
  above the cap);
- the first valid notification after a loss emits SIGNAL_RESTORED with `gap_s` = its receive time
  minus the receive time of the last valid notification before the loss (the span with no data);
  the beat timer is reset on every new connection, so no RR is counted back across a gap;
- CONTACT_LOST / CONTACT_RESTORED follow the sensor-contact bits (straps that do not report contact
  emit neither); beats while contact is lost carry `contact=False`;
- packets that never parse do not count as signal (a garbage-only stream goes stale);
- a strap that sends no RR intervals gets one INFO event "... HRV unavailable" after 10 packets.
Logging: the first failure of a run of failures is a warning, repeats are debug, recovery is info.

Raw ECG / ACC (Polar Measurement Data): only when constructed with `pmd=PmdConfig(...)`. Then,
after Heart Rate is subscribed on each connection, a `PmdLink` (pmd_client.py) starts the wanted
streams beside it, and `pmd_readings()` yields timed samples, gaps and status (see
pmd_readings.py). Nothing about RR depends on it: a strap without the PMD service, a refused
stream or a PMD failure is one `PmdStatus(ok=False)` and heart rate goes on exactly as without.
Leaving the context stops the started streams before the link is closed.

Connection attempts (scan, connect) run in wall time inside bleak; backoff delays and the
staleness watchdog use the session clock, so a virtual or fast clock makes them quick in tests.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
from collections.abc import AsyncIterator, Coroutine
from contextlib import AsyncExitStack
from typing import Self

from bleak import BleakClient
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.device import BLEDevice
from bleak.exc import BleakDeviceNotFoundError, BleakError

from biofeedback.clock import Clock
from biofeedback.devices.pmd_client import PmdConfig, PmdLink, has_pmd
from biofeedback.devices.pmd_readings import PmdReading, PmdStatus
from biofeedback.devices.pmd_stream import PmdFrameReader
from biofeedback.devices.readings import (
    DeviceEvent,
    DeviceEventKind,
    DeviceInfo,
    DeviceReading,
    Notification,
)
from biofeedback.devices.scan import (
    BATTERY_LEVEL_UUID,
    HEART_RATE_MEASUREMENT_UUID,
    find_strap,
    uuid16,
)
from biofeedback.devices.timing import BeatTimer
from biofeedback.errors import DeviceError, ParseError

__all__ = ["DEVICE_INFORMATION_UUIDS", "BleStrap"]

log = logging.getLogger(__name__)

# Device Information service (0x180A) strings, by DeviceInfo field.
DEVICE_INFORMATION_UUIDS: dict[str, str] = {
    "manufacturer": uuid16(0x2A29),
    "model": uuid16(0x2A24),
    "serial": uuid16(0x2A25),
    "hardware": uuid16(0x2A27),
    "firmware": uuid16(0x2A26),
    "software": uuid16(0x2A28),
}

_JITTER = 0.2  # backoff delays are multiplied by a uniform factor in [1 - J, 1 + J]
_RESCAN_AFTER_FAILURES = 3  # forget the cached BLE device (rescan) after this many failures
_NO_RR_NOTICE_AFTER = 10  # valid notifications without RR before saying HRV is unavailable
_DISCONNECT_TIMEOUT_S = 5.0
_PMD_STOP_TIMEOUT_S = 3.0
_PMD_QUEUE_MAX = 4096  # raw-data readings held for a slow consumer (~30 s of ECG + ACC)

# Errors a connection attempt or a live link can end with; all of them mean "try again later".
# dbus-fast (Linux only) raises its own errors when the system bus itself goes away.
_RETRYABLE: tuple[type[BaseException], ...] = (
    BleakError,
    DeviceError,
    TimeoutError,
    OSError,
    EOFError,
)
try:  # pragma: no cover - platform dependent
    from dbus_fast.errors import DBusFastError

    _RETRYABLE = (*_RETRYABLE, DBusFastError)
except ImportError:  # pragma: no cover - not Linux
    pass

_PMD_ERRORS: tuple[type[BaseException], ...] = (*_RETRYABLE, ParseError)


class _Signal(enum.StrEnum):
    NEVER = "never"  # no valid notification yet
    OK = "ok"
    LOST = "lost"


class BleStrap:
    """A heart-rate strap over BLE; see the module docstring for the event contract."""

    def __init__(
        self,
        target: str,
        *,
        clock: Clock,
        reconnect_initial_s: float = 1.0,
        reconnect_max_s: float = 30.0,
        stale_after_s: float = 5.0,
        scan_timeout_s: float = 10.0,
        connect_timeout_s: float = 20.0,
        rng: random.Random | None = None,
        pmd: PmdConfig | None = None,
    ) -> None:
        if not target.strip():
            raise DeviceError("strap name or address is empty (see `biofeedback scan`)")
        for label, value in (
            ("reconnect_initial_s", reconnect_initial_s),
            ("reconnect_max_s", reconnect_max_s),
            ("stale_after_s", stale_after_s),
            ("scan_timeout_s", scan_timeout_s),
            ("connect_timeout_s", connect_timeout_s),
        ):
            if not value > 0:
                raise DeviceError(f"{label} must be > 0 seconds, got {value!r}")
        if clock.speed != 1.0:
            # Receive times and the staleness watchdog would be scaled while the strap's RR
            # values and its ~1 Hz notifications stay in real time.
            raise DeviceError(
                f"a real strap runs in real time: clock speed must be 1, got {clock.speed:g}"
            )
        if reconnect_max_s < reconnect_initial_s:
            raise DeviceError(
                f"reconnect_max_s ({reconnect_max_s}) is below reconnect_initial_s "
                f"({reconnect_initial_s})"
            )
        self.name = target.strip()
        self._clock = clock
        self._reconnect_initial_s = reconnect_initial_s
        self._reconnect_max_s = reconnect_max_s
        self._stale_after_s = stale_after_s
        self._scan_timeout_s = scan_timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._rng = rng if rng is not None else random.Random()
        self._timer = BeatTimer(self.name)
        self._pmd_config = pmd
        self._pmd_reader = PmdFrameReader(self.name)
        self._pmd_queue: asyncio.Queue[PmdReading | None] | None = None
        self._pmd_dropped = 0

        self._queue: asyncio.Queue[DeviceReading | None] | None = None
        self._stack: AsyncExitStack | None = None
        self._task: asyncio.Task[None] | None = None

        self._device: BLEDevice | None = None  # last BLE device found for `target`
        self._info: DeviceInfo | None = None
        self._signal = _Signal.NEVER
        self._last_data_t: float = 0.0  # receive time of the last valid notification
        self._streaming = False  # notifications of the current link are accepted
        self._closing = False  # the context is being left: a link ending now is no signal loss
        self._contact: bool | None = None  # last reported skin contact
        self._watch_from = 0.0  # when the current link started streaming
        self._valid_notifications = 0
        self._malformed_in_row = 0
        self._no_rr_count = 0
        self._no_rr_said = False
        self._failures = 0  # failed attempts since data last flowed (drives backoff and rescans)
        self._outage_logged = False  # the current run of trouble was already logged as a warning
        self._error_hint_said: str | None = None  # fix hint of the last ERROR event this outage
        self._link_was_up = False  # the current attempt got as far as a connection
        self.connections = 0  # successful connections so far (diagnostics)

    # ------------------------------------------------------------------ lifetime

    async def __aenter__(self) -> Self:
        if self._stack is not None:
            raise DeviceError(f"strap {self.name!r} is already open")
        self._queue = asyncio.Queue()
        self._pmd_queue = asyncio.Queue(maxsize=_PMD_QUEUE_MAX + 1)
        self._closing = False
        stack = AsyncExitStack()
        tg = await stack.enter_async_context(asyncio.TaskGroup())
        self._task = tg.create_task(self._run(), name=f"ble-strap:{self.name}")
        self._stack = stack
        return self

    async def __aexit__(self, *exc: object) -> None:
        stack, task, queue = self._stack, self._task, self._queue
        self._stack = self._task = None
        self._closing = True
        if task is not None:
            task.cancel()
        try:
            if stack is not None:
                await stack.aclose()
        finally:
            if queue is not None:
                queue.put_nowait(None)  # ends readings() of a consumer in another task
            if self._pmd_queue is not None:
                self._pmd_queue.put_nowait(None)

    async def readings(self) -> AsyncIterator[DeviceReading]:
        """Notifications and device events in order; ends only when the context is left."""
        queue = self._queue
        if queue is None:
            raise DeviceError("use `async with strap:` before calling readings()")
        while True:
            item = await queue.get()
            if item is None:
                return
            yield item

    async def pmd_readings(self) -> AsyncIterator[PmdReading]:
        """Raw ECG / ACC samples, gaps and PMD status in order (only with `pmd=` set); ends when
        the context is left. Without a consumer the oldest are dropped beyond ~30 s."""
        queue = self._pmd_queue
        if queue is None:
            raise DeviceError("use `async with strap:` before calling pmd_readings()")
        while True:
            item = await queue.get()
            if item is None:
                return
            yield item

    def _emit_pmd(self, item: PmdReading) -> None:
        queue = self._pmd_queue
        if queue is None:
            return
        if queue.qsize() >= _PMD_QUEUE_MAX:
            queue.get_nowait()  # a stalled consumer must not grow memory without bound
            self._pmd_dropped += 1
            if self._pmd_dropped == 1:
                log.warning("strap %r: raw-data readings not consumed; dropping oldest", self.name)
        queue.put_nowait(item)

    def _emit(self, item: DeviceReading) -> None:
        if self._queue is not None:
            self._queue.put_nowait(item)

    def _event(
        self,
        kind: DeviceEventKind,
        detail: str = "",
        *,
        battery_pct: int | None = None,
        gap_s: float | None = None,
        info: DeviceInfo | None = None,
        hint: str = "",
    ) -> None:
        self._emit(
            DeviceEvent(
                t=self._clock.now(),
                device=self.name,
                kind=kind,
                detail=detail,
                battery_pct=battery_pct,
                gap_s=gap_s,
                info=info,
                hint=hint,
            )
        )

    # ------------------------------------------------------------------ reconnect loop

    async def _run(self) -> None:
        while True:
            try:
                await self._connect_and_stream()
            except _RETRYABLE as exc:
                if not self._link_was_up:
                    self._tell_error(_explain(exc), _hint(exc))
                self._note_trouble(_explain(exc), failed_attempt=True, hint=_hint(exc))
            except Exception as exc:
                # Not foreseen (a bleak or OS internal): keep the traceback, keep trying; a
                # session must not end because one connection attempt hit an odd corner.
                (log.debug if self._outage_logged else log.error)(
                    "strap %r: unexpected error, still reconnecting: %s",
                    self.name,
                    _explain(exc),
                    exc_info=True,
                )
                self._outage_logged = True
                if not self._link_was_up:
                    self._tell_error(_explain(exc), _GENERIC_HINT)
                self._note_trouble(_explain(exc), failed_attempt=True)
            if self._failures:
                await self._clock.sleep(self._backoff(self._failures))

    def _backoff(self, failures: int) -> float:
        """Delay before the next attempt after `failures` failed ones (jittered, capped)."""
        cap = self._reconnect_max_s
        base = min(cap, self._reconnect_initial_s * 2.0 ** min(max(0, failures - 1), 30))
        delay = base * self._rng.uniform(1 - _JITTER, 1 + _JITTER)
        # Straps that dropped together must not retry in lockstep at the cap either.
        return delay if delay <= cap else cap * self._rng.uniform(1 - _JITTER, 1.0)

    def _tell_error(self, why: str, hint: str) -> None:
        """An attempt that failed before a link was up is an ERROR event (what is wrong, and the
        fix), so the therapist sees the cause, not only "monitoring lost": once per run of
        trouble, and again only when the fix changes (Bluetooth came back, the strap is still
        not found)."""
        if hint != self._error_hint_said:
            self._error_hint_said = hint
            self._event(DeviceEventKind.ERROR, why, hint=hint)

    def _note_trouble(self, why: str, *, failed_attempt: bool, hint: str | None = None) -> None:
        """Log a drop or failed attempt: warning once per run of trouble, then debug."""
        if failed_attempt:
            self._failures += 1
            if self._failures >= _RESCAN_AFTER_FAILURES:
                self._device = None
        if not self._outage_logged:
            self._outage_logged = True
            if hint:
                log.warning(
                    "strap %r: %s; reconnecting until it is back. Fix: %s", self.name, why, hint
                )
            else:
                log.warning("strap %r: %s; reconnecting until it is back", self.name, why)
        else:
            log.debug("strap %r: attempt %d: %s", self.name, self._failures, why)

    def _lose_signal(self, why: str) -> None:
        """Emit SIGNAL_LOST once per outage (only after data has flowed)."""
        if self._signal is _Signal.OK and not self._closing:
            self._signal = _Signal.LOST
            self._event(
                DeviceEventKind.SIGNAL_LOST,
                f"{why}; last data at t={self._last_data_t:.3f}",
            )

    async def _locate(self) -> BLEDevice:
        if self._device is not None:
            return self._device
        device = await find_strap(self.name, timeout_s=self._scan_timeout_s)
        if device is None:
            raise DeviceError(
                f"strap {self.name!r} not found in {self._scan_timeout_s:g} s of scanning",
                "is it worn with moistened electrodes (they wake it), charged, in range, and not "
                "connected to another app? `biofeedback scan` lists the straps in range",
            )
        self._device = device
        return device

    async def _connect_and_stream(self) -> None:
        """One connection, from locating the strap to the link ending (drop or staleness)."""
        self._link_was_up = False
        device = await self._locate()
        disconnected = asyncio.Event()
        client = BleakClient(
            device,
            disconnected_callback=lambda _c: disconnected.set(),
            timeout=self._connect_timeout_s,
        )
        try:
            await client.connect()
        except BleakDeviceNotFoundError:
            self._device = None  # BlueZ forgot it: scan again next time
            raise
        except TimeoutError as exc:
            raise DeviceError(
                f"strap {self.name!r} did not accept a connection within "
                f"{self._connect_timeout_s:g} s",
                "bring it closer, check it is on (moistened electrodes), and disconnect it from "
                "any phone or app that holds it",
            ) from exc
        self.connections += 1
        self._link_was_up = True  # what goes wrong from here on follows a CONNECTED event
        self._error_hint_said = None  # connected: the next failure is told again
        data_before = self._valid_notifications
        why = "link ended"
        try:
            if self._outage_logged:
                log.info(
                    "strap %r: connected again after %d failed attempt(s)",
                    self.name,
                    self._failures,
                )
            self._timer.reset()
            self._malformed_in_row = 0
            self._event(DeviceEventKind.CONNECTED, f"connected to {device.address}")
            self._streaming = True
            try:
                # bleak's GATT calls have no timeout of their own on BlueZ (ATT's is 30 s).
                async with asyncio.timeout(self._connect_timeout_s):
                    await self._setup_link(client, device)
            except TimeoutError as exc:
                raise DeviceError(
                    f"strap {self.name!r} connected but did not answer GATT requests within "
                    f"{self._connect_timeout_s:g} s"
                ) from exc
            pmd_task = self._start_pmd(client)
            try:
                why = await self._watch(disconnected)
            finally:
                await self._end_pmd(client, pmd_task, link_up=not disconnected.is_set())
        except _RETRYABLE as exc:
            why = _explain(exc)
            raise
        finally:
            self._streaming = False
            await self._disconnect(client)
            self._lose_signal(why)
        if self._valid_notifications > data_before:
            self._note_trouble(why, failed_attempt=False)  # next attempt at once
        else:
            self._note_trouble(
                why + " (no heart rate data on this connection)", failed_attempt=True
            )

    def _start_pmd(self, client: BleakClient) -> tuple[PmdLink, asyncio.Task[None]] | None:
        """Start the raw-data streams beside heart rate (a task: RR flows while it negotiates)."""
        config = self._pmd_config
        if config is None:
            return None
        if not has_pmd(client):
            self._emit_pmd(
                PmdStatus(self.name, self._clock.now(), None, "no PMD service on this strap", False)
            )
            return None
        link = PmdLink(
            self.name,
            clock=self._clock,
            config=config,
            reader=self._pmd_reader,
            emit=self._emit_pmd,
        )
        task = asyncio.create_task(self._run_pmd(client, link), name=f"pmd:{self.name}")
        return link, task

    async def _run_pmd(self, client: BleakClient, link: PmdLink) -> None:
        try:
            await link.start(client)
        except _PMD_ERRORS as exc:
            # The link may be going down, or the strap answered nonsense: RR is unaffected.
            log.warning("strap %r: raw data (PMD) not started: %s", self.name, _explain(exc))
            self._emit_pmd(
                PmdStatus(self.name, self._clock.now(), None, f"PMD failed: {_explain(exc)}", False)
            )
        except Exception as exc:
            # Not foreseen: keep the traceback; heart rate must go on regardless.
            log.error("strap %r: raw data (PMD) failed: %s", self.name, exc, exc_info=True)
            self._emit_pmd(
                PmdStatus(self.name, self._clock.now(), None, f"PMD failed: {_explain(exc)}", False)
            )

    async def _end_pmd(
        self,
        client: BleakClient,
        started: tuple[PmdLink, asyncio.Task[None]] | None,
        *,
        link_up: bool,
    ) -> None:
        if started is None:
            return
        link, task = started
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        if link_up and self._closing:
            # Leaving the session: tell the strap to stop streaming before the link closes.
            try:
                async with asyncio.timeout(_PMD_STOP_TIMEOUT_S):
                    await link.stop(client)
            except TimeoutError:
                log.debug("strap %r: PMD stop timed out", self.name)

    async def _watch(self, disconnected: asyncio.Event) -> str:
        """Wait until the link drops or goes stale; returns why."""
        if await _first_of(disconnected.wait(), self._until_stale()) == 0:
            return "the strap disconnected"
        return f"no heart rate notification for {self._stale_after_s:g} s"

    async def _until_stale(self) -> None:
        # The remaining time is computed just before each sleep, in the same step, so a clock
        # that jumps (virtual time in tests, a suspended laptop) cannot stretch the deadline.
        while True:
            since = max(self._last_data_t, self._watch_from)
            remaining = since + self._stale_after_s - self._clock.now()
            if remaining <= 0:
                return
            await self._clock.sleep(remaining)

    async def _disconnect(self, client: BleakClient) -> None:
        # Always called, even after the strap dropped: bleak opens one D-Bus connection per link
        # and only disconnect() releases it. Also runs while the context is being left (the task
        # is cancelled): disconnect anyway, bounded, so the strap is free for the next session.
        try:
            async with asyncio.timeout(_DISCONNECT_TIMEOUT_S):
                await client.disconnect()
        except _RETRYABLE as exc:
            log.debug("strap %r: disconnect failed: %s", self.name, exc)

    # ------------------------------------------------------------------ per-connection setup

    async def _setup_link(self, client: BleakClient, device: BLEDevice) -> None:
        # Device Information does not change between reconnects of the same strap; skipping its
        # six reads shortens every gap (each read is a radio round trip).
        if self._info is None or self._info.address != device.address:
            await self._read_device_information(client, device)
        await self._setup_battery(client)
        hrm = client.services.get_characteristic(HEART_RATE_MEASUREMENT_UUID)
        if hrm is None:
            raise DeviceError(
                f"{device.address} has no Heart Rate Measurement characteristic (0x2A37): "
                "is it a heart-rate strap?"
            )
        self._watch_from = self._clock.now()
        await client.start_notify(hrm, self._on_hrm)

    async def _read_device_information(self, client: BleakClient, device: BLEDevice) -> None:
        fields: dict[str, str | None] = {}
        for key, uuid in DEVICE_INFORMATION_UUIDS.items():
            char = client.services.get_characteristic(uuid)
            if char is None:
                continue
            try:
                raw = await client.read_gatt_char(char)
            except BleakError as exc:
                log.debug("strap %r: %s not readable: %s", self.name, key, exc)
                continue
            text = bytes(raw).split(b"\x00", 1)[0].decode("utf-8", errors="replace").strip()
            fields[key] = text or None
        info = DeviceInfo(
            name=device.name or self.name,
            address=device.address,
            manufacturer=fields.get("manufacturer"),
            model=fields.get("model"),
            firmware=fields.get("firmware"),
            hardware=fields.get("hardware"),
            software=fields.get("software"),
            serial=fields.get("serial"),
        )
        if info != self._info:
            self._info = info
            log.info("strap %r: %s at %s", self.name, _describe(info), device.address)
            self._event(DeviceEventKind.INFO, _describe(info), info=info)

    async def _setup_battery(self, client: BleakClient) -> None:
        char = client.services.get_characteristic(BATTERY_LEVEL_UUID)
        if char is None:
            log.debug("strap %r: no Battery Level characteristic", self.name)
            return
        if "read" in char.properties:
            try:
                self._battery(bytes(await client.read_gatt_char(char)), "read")
            except BleakError as exc:
                log.debug("strap %r: battery not readable: %s", self.name, exc)
        if "notify" in char.properties:
            try:
                await client.start_notify(char, self._on_battery)
            except BleakError as exc:
                log.debug("strap %r: battery notifications refused: %s", self.name, exc)

    def _battery(self, data: bytes, how: str) -> None:
        if len(data) < 1 or data[0] > 100:
            log.warning("strap %r: implausible battery level %r ignored", self.name, data.hex())
            return
        self._event(DeviceEventKind.BATTERY, how, battery_pct=int(data[0]))

    # ------------------------------------------------------------------ notification callbacks

    def _on_battery(self, _char: BleakGATTCharacteristic, data: bytearray) -> None:
        if self._streaming:
            self._battery(bytes(data), "notified")

    def _on_hrm(self, _char: BleakGATTCharacteristic, data: bytearray) -> None:
        if not self._streaming:
            return  # a late notification of a link being torn down
        t = self._clock.now()
        n = self._timer.notification(t, bytes(data))
        if n.error is not None or n.measurement is None:
            self._malformed(n)
            return
        self._malformed_in_row = 0
        self._valid_notifications += 1
        if self._signal is _Signal.LOST:
            gap = t - self._last_data_t
            log.info("strap %r: signal restored after a %.1f s gap", self.name, gap)
            self._event(DeviceEventKind.SIGNAL_RESTORED, f"gap of {gap:.1f} s", gap_s=gap)
        elif self._signal is _Signal.NEVER:
            log.info("strap %r: heart rate data flowing", self.name)
        self._signal = _Signal.OK
        self._failures = 0
        self._outage_logged = False
        self._error_hint_said = None
        self._last_data_t = t
        contact = n.measurement.contact
        if contact is False and self._contact is not False:
            self._event(DeviceEventKind.CONTACT_LOST, "strap reports no skin contact")
        elif contact is True and self._contact is False:
            self._event(DeviceEventKind.CONTACT_RESTORED, "skin contact regained")
        if contact is not None:
            self._contact = contact
        self._check_rr(n)
        self._emit(n)

    def _malformed(self, n: Notification) -> None:
        self._malformed_in_row += 1
        detail = f"{n.error} (payload {n.payload.hex() or 'empty'})"
        if self._malformed_in_row == 1:
            log.warning("strap %r: malformed heart rate notification: %s", self.name, detail)
        else:
            log.debug(
                "strap %r: malformed notification #%d: %s",
                self.name,
                self._malformed_in_row,
                detail,
            )
        self._emit(n)
        self._event(DeviceEventKind.MALFORMED, detail)

    def _check_rr(self, n: Notification) -> None:
        if self._no_rr_said or n.measurement is None:
            return
        if n.measurement.rr_1024:
            self._no_rr_count = 0
            return
        self._no_rr_count += 1
        if self._no_rr_count >= _NO_RR_NOTICE_AFTER:
            self._no_rr_said = True
            msg = "strap sends heart rate without RR intervals: HRV unavailable"
            log.warning("strap %r: %s", self.name, msg)
            self._event(DeviceEventKind.INFO, msg, info=self._info)


_GENERIC_HINT = (
    "check that the strap is worn with moistened electrodes, charged, in range and not "
    "connected to another app; the service keeps trying"
)


def _hint(exc: BaseException) -> str:
    """What a person can do about a failed connection attempt."""
    if isinstance(exc, DeviceError) and exc.hint:
        return exc.hint
    return _GENERIC_HINT


def _explain(exc: BaseException) -> str:
    if isinstance(exc, DeviceError) and exc.hint:
        return exc.problem  # the fix travels separately (ERROR events, the warning's hint)
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else repr(exc)


def _describe(info: DeviceInfo) -> str:
    parts = [p for p in (info.manufacturer, info.model) if p]
    if info.firmware:
        parts.append(f"firmware {info.firmware}")
    return " ".join(parts) or "no Device Information service"


async def _first_of(*aws: Coroutine[object, object, object]) -> int:
    """Run the awaitables until the first finishes; cancel the rest; return the winner's index."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        return next(i for i, t in enumerate(tasks) if t in done)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
