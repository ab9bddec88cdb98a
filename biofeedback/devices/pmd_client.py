"""One BLE connection's conversation with a strap's PMD service (raw ECG / ACC), over bleak.

`BleStrap` creates a `PmdLink` per connection when it was asked for raw data (`PmdConfig`) and
the strap has the PMD service. The link:

1. subscribes to the control point (indications: the responses) and the data characteristic;
2. reads the features (`0f 05 ...`: which streams exist);
3. per wanted stream (ECG; ACC at the chosen rate and range): asks for the settings, picks the
   wanted values among those offered (the nearest offered rate when the wanted one is not), and
   starts the stream;
4. retries a start refused with INVALID_MTU (the strap needs a larger ATT MTU than the link has
   yet: BlueZ negotiates the MTU itself right after connecting and offers clients no way to ask
   for one, so the remedy is to wait for that exchange and ask again, `mtu_retries` times);
5. reports any other refusal (its error code and name, `PmdStatus(ok=False)`) and carries on
   without that stream: heart rate and RR never depend on PMD;
6. decodes every data notification: timed samples (`PmdTimer`), gaps for lost or cut frames,
   malformed frames kept as `PmdMalformed`;
7. on leaving, stops the streams it started (bounded), before the link is closed.

Control-point waits and retry delays are wall time (they are radio round trips, like bleak's
own calls); sample times are on the session clock.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from bleak import BleakClient
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.exc import BleakError

from biofeedback.clock import Clock
from biofeedback.devices import pmd
from biofeedback.devices.pmd import (
    ControlOp,
    ControlResponse,
    ControlStatus,
    MeasurementType,
    PmdRefusedError,
    SettingType,
)
from biofeedback.devices.pmd_readings import PmdReading, PmdStatus, PmdStream
from biofeedback.devices.pmd_stream import DEFAULT_RATE_HZ, PmdFrameReader
from biofeedback.errors import DeviceError, ParseError

__all__ = ["PmdConfig", "PmdLink", "has_pmd"]

log = logging.getLogger(__name__)

_STREAM_TYPE = {PmdStream.ECG: MeasurementType.ECG, PmdStream.ACC: MeasurementType.ACC}
_RESPONSES_MAX = 16


@dataclass(frozen=True, slots=True)
class PmdConfig:
    """Which raw streams to ask a strap for, and how patiently."""

    ecg: bool = True
    acc_rate_hz: int | None = 200  # None: no ACC; the H10 offers 25, 50, 100, 200
    acc_range_g: int = 8  # the H10 offers 2, 4, 8
    acc_resolution_bits: int = 16
    response_timeout_s: float = 5.0
    mtu_retries: int = 3
    mtu_retry_delay_s: float = 0.5  # doubled after each MTU refusal

    def __post_init__(self) -> None:
        if self.acc_rate_hz is not None and self.acc_rate_hz <= 0:
            raise DeviceError(f"ACC rate must be > 0 Hz, got {self.acc_rate_hz}")
        if self.acc_range_g <= 0:
            raise DeviceError(f"ACC range must be > 0 g, got {self.acc_range_g}")
        if not self.response_timeout_s > 0 or self.mtu_retries < 0:
            raise DeviceError("PMD response timeout must be > 0 s and MTU retries >= 0")

    @property
    def streams(self) -> tuple[PmdStream, ...]:
        out = []
        if self.ecg:
            out.append(PmdStream.ECG)
        if self.acc_rate_hz is not None:
            out.append(PmdStream.ACC)
        return tuple(out)


def has_pmd(client: BleakClient) -> bool:
    """True when the connected strap has the PMD control point and data characteristics."""
    services = client.services
    return (
        services.get_characteristic(pmd.PMD_CONTROL_UUID) is not None
        and services.get_characteristic(pmd.PMD_DATA_UUID) is not None
    )


class PmdLink:
    """The PMD conversation of one connection (see the module docstring)."""

    def __init__(
        self,
        device: str,
        *,
        clock: Clock,
        config: PmdConfig,
        reader: PmdFrameReader,
        emit: Callable[[PmdReading], None],
    ) -> None:
        self.device = device
        self._clock = clock
        self._config = config
        self._reader = reader  # owned by the strap: it outlives a connection (gaps across drops)
        self._emit = emit
        # Bounded: a strap that indicates without being asked must not grow memory.
        self._responses: asyncio.Queue[bytes] = asyncio.Queue(maxsize=_RESPONSES_MAX)
        self._lock = asyncio.Lock()
        self._active = False  # data notifications are accepted
        self.started: list[PmdStream] = []

    # ------------------------------------------------------------------ setup / teardown

    async def start(self, client: BleakClient) -> None:
        """Subscribe, read the features and start the wanted streams (refusals are reported)."""
        self._active = True
        await client.start_notify(pmd.PMD_CONTROL_UUID, self._on_control)
        await client.start_notify(pmd.PMD_DATA_UUID, self._on_data)
        features = pmd.parse_features(bytes(await client.read_gatt_char(pmd.PMD_CONTROL_UUID)))
        offered = ", ".join(
            pmd.MeasurementType(i).name if i in pmd.MeasurementType._value2member_map_ else str(i)
            for i in sorted(features.available)
        )
        self._status(None, f"PMD features: {offered or 'none'}")
        for stream in self._config.streams:
            if not features.has(_STREAM_TYPE[stream]):
                self._status(stream, f"the strap does not offer {stream.value.upper()}", ok=False)
                continue
            try:
                await self._start_stream(client, stream)
            except (PmdRefusedError, ParseError) as exc:
                log.warning("strap %r: %s not started: %s", self.device, stream.value, exc)
                self._status(stream, f"{stream.value.upper()} not started: {exc}", ok=False)

    async def stop(self, client: BleakClient) -> None:
        """Stop the streams this link started (best effort: the link may already be gone)."""
        self._active = False
        for stream in list(self.started):
            try:
                r = await self._request(
                    client, pmd.request_stop(_STREAM_TYPE[stream]), ControlOp.STOP, stream
                )
                if not r.ok and r.status != ControlStatus.ALREADY_IN_STATE:
                    log.debug("strap %r: stop %s: %s", self.device, stream.value, r.describe())
            except (BleakError, DeviceError, ParseError, TimeoutError, OSError, EOFError) as exc:
                log.debug("strap %r: stop %s failed: %s", self.device, stream.value, exc)
        self.started.clear()

    async def _start_stream(self, client: BleakClient, stream: PmdStream) -> None:
        mtype = _STREAM_TYPE[stream]
        r = await self._request(client, pmd.request_settings(mtype), ControlOp.GET_SETTINGS, stream)
        if not r.ok:
            raise PmdRefusedError(f"give the {stream.value.upper()} settings", r.status)
        offered = pmd.parse_settings(r.parameters)
        chosen, note = self._choose(stream, offered)
        rate = float(chosen.get(SettingType.SAMPLE_RATE, DEFAULT_RATE_HZ[stream]))
        request = pmd.request_start(mtype, chosen)
        delay = self._config.mtu_retry_delay_s
        for attempt in range(self._config.mtu_retries + 1):
            r = await self._request(client, request, ControlOp.START, stream)
            if r.status != ControlStatus.INVALID_MTU:
                break
            if attempt == self._config.mtu_retries:
                raise PmdRefusedError(f"start {stream.value.upper()}", r.status)
            log.info(
                "strap %r: %s start refused (MTU too small, %s); retrying in %.1f s",
                self.device,
                stream.value,
                r.raw.hex(" "),
                delay,
            )
            self._status(stream, f"{stream.value.upper()} start refused: MTU too small, retrying")
            await asyncio.sleep(delay)
            delay *= 2
        if not r.ok:
            raise PmdRefusedError(f"start {stream.value.upper()}", r.status)
        if stream is PmdStream.ACC:
            self._reader.acc_factor = pmd.start_factor(r)
        self._reader.set_rate(stream, rate)
        self.started.append(stream)
        settings = ", ".join(f"{k.name.lower()} {v}" for k, v in sorted(chosen.items()))
        self._status(stream, f"{stream.value.upper()} streaming ({settings}){note}")
        log.info("strap %r: %s streaming (%s)%s", self.device, stream.value, settings, note)

    def _choose(
        self, stream: PmdStream, offered: dict[SettingType, tuple[float, ...]]
    ) -> tuple[dict[SettingType, int], str]:
        """The start settings: the wanted value of each setting the strap offers, else the
        nearest offered one (said in the note)."""
        cfg = self._config
        wanted: dict[SettingType, int] = {}
        if stream is PmdStream.ACC:
            assert cfg.acc_rate_hz is not None
            wanted = {
                SettingType.SAMPLE_RATE: cfg.acc_rate_hz,
                SettingType.RESOLUTION: cfg.acc_resolution_bits,
                SettingType.RANGE: cfg.acc_range_g,
            }
        chosen: dict[SettingType, int] = {}
        notes = []
        for kind, values in offered.items():
            if kind is SettingType.FACTOR or not values:
                continue
            ints = [int(v) for v in values]
            want = wanted.get(kind)
            if want is None:
                chosen[kind] = max(ints)  # ECG: the H10 offers one rate and one resolution
            elif want in ints:
                chosen[kind] = want
            else:
                chosen[kind] = min(ints, key=lambda v: (abs(v - want), -v))
                notes.append(f"{kind.name.lower()} {want} not offered, using {chosen[kind]}")
        return chosen, (": " + "; ".join(notes)) if notes else ""

    async def _request(
        self, client: BleakClient, payload: bytes, op: ControlOp, stream: PmdStream
    ) -> ControlResponse:
        """Write one control-point request and wait for its response indication."""
        mtype = _STREAM_TYPE[stream]
        async with self._lock:
            while not self._responses.empty():  # late answers to an earlier, timed-out request
                self._responses.get_nowait()
            await client.write_gatt_char(pmd.PMD_CONTROL_UUID, payload, response=True)
            try:
                async with asyncio.timeout(self._config.response_timeout_s):
                    while True:
                        r = pmd.parse_control_response(await self._responses.get())
                        if r.op == op and r.measurement == mtype:
                            return r
                        if op is ControlOp.START and r.status == ControlStatus.INVALID_MTU:
                            # A real H10's MTU refusal does not echo the op and type (issue 13's
                            # capture: f0 00 01 0a); its status is unambiguous after a start.
                            return r
                        log.debug(
                            "strap %r: PMD response %s ignored while waiting for %s %s",
                            self.device,
                            r.raw.hex(" "),
                            op.name,
                            mtype.name,
                        )
            except TimeoutError as exc:
                raise DeviceError(
                    f"strap {self.device!r} did not answer the PMD {op.name} {mtype.name} request "
                    f"within {self._config.response_timeout_s:g} s"
                ) from exc

    def _status(self, stream: PmdStream | None, detail: str, *, ok: bool = True) -> None:
        self._emit(PmdStatus(self.device, self._clock.now(), stream, detail, ok))

    # ------------------------------------------------------------------ notifications

    def _on_control(self, _char: BleakGATTCharacteristic, data: bytearray) -> None:
        if self._responses.full():
            self._responses.get_nowait()  # the oldest unasked-for answer goes
        self._responses.put_nowait(bytes(data))

    def _on_data(self, _char: BleakGATTCharacteristic, data: bytearray) -> None:
        if not self._active:
            return
        for reading in self._reader.read(self._clock.now(), bytes(data)):
            self._emit(reading)
