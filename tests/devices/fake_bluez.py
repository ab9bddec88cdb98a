"""A fake `org.bluez` served with dbus-fast: bleak's real BlueZ backend, tested without a radio.

It models what bleak 3.1 actually uses (see bleak/backends/bluezdbus/manager.py and client.py):

- ObjectManager at `/` (dbus-fast's built-in one: `GetManagedObjects`, InterfacesAdded/Removed on
  export/unexport);
- `/org/bluez/hci0` with `org.bluez.Adapter1` (Roles ["central"], Powered) whose
  SetDiscoveryFilter/StartDiscovery/StopDiscovery keep one discovery session per D-Bus sender, like
  bluetoothd does (a second StartDiscovery from the same sender is a no-op, its StopDiscovery ends
  the session for every scanner sharing that connection);
- one `org.bluez.Device1` per strap, exported the first time it advertises while the adapter is
  discovering (bleak only reports devices from signals seen during discovery), then re-announced by
  RSSI updates every `adv_interval_s` while it is in range and not connected;
- on Connect, the GATT tree at BlueZ's `serviceXXXX/charXXXX/descXXXX` paths (bleak derives handles
  and the device path from them), then `ServicesResolved`; on disconnect the tree is removed again,
  as bluetoothd does for an unbonded device;
- Heart Rate (0x180D: 0x2A37 notify, 0x2A38 read), Battery (0x180F: 0x2A19 read[+notify]) and
  Device Information (0x180A) services; notifications are `PropertiesChanged(Value)` after
  StartNotify;
- a switch to drop the link (`drop()`, the strap goes out of range and Connect fails) and to bring
  the strap back (`restore()`); Disconnect during a slow Connect aborts it, as bluetoothd does;
- with `StrapSpec.pmd` set, Polar's PMD service (control point: read / write / indicate; data:
  notify) answering as a real H10 does: the feature read `0f 05 ...`, the H10's ECG settings
  response, ACC settings, the start refusals of issue 13's capture (MTU too small `f0 00 01 0a`,
  invalid parameter `f0 02 00 05 00`) and its acceptance `f0 02 00 00 00 00`; a test pushes data
  frames (ECG built from the real H10 recording, see pmd_frames.py) with `pmd_notify()`.

Helpers for the tests: `ManualClock` (virtual time that moves only when the test says), `Collector`
(reads a device's readings in a task), `StrapDriver` (plays a heart into a fake strap, waiting for
each packet to be read, and only moves time while the device waits on the clock), `open_strap`.

Test code only: it never touches the host's real system bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from dbus_fast import BusType, Message, MessageType, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import (
    DBusBool,
    DBusBytes,
    DBusDict,
    DBusInt16,
    DBusObjectPath,
    DBusSignature,
    DBusStr,
)
from dbus_fast.constants import PropertyAccess
from dbus_fast.errors import DBusError
from dbus_fast.service import ServiceInterface, dbus_method, dbus_property

from biofeedback.devices import pmd as pmd_protocol
from biofeedback.devices.ble import BleStrap
from biofeedback.devices.hrm import encode_heart_rate_measurement
from biofeedback.devices.readings import (
    DeviceEvent,
    DeviceEventKind,
    HeartRateMeasurement,
    Notification,
)
from biofeedback.errors import ParseError

DBusStrList = Annotated[list[str], DBusSignature("as")]
DBusManufacturerData = Annotated[dict[int, Variant], DBusSignature("a{qv}")]

BLUEZ = "org.bluez"
ADAPTER_PATH = "/org/bluez/hci0"
ERR_FAILED = "org.bluez.Error.Failed"
ERR_NOT_CONNECTED = "org.bluez.Error.NotConnected"
ERR_NOT_SUPPORTED = "org.bluez.Error.NotSupported"
ERR_NOT_PERMITTED = "org.bluez.Error.NotPermitted"

# The errno text bluetoothd returns when an LE connection attempt is aborted (out of range).
CONNECT_FAILED_TEXT = "Software caused connection abort"


def uuid16(short: int) -> str:
    """The 128-bit Bluetooth base UUID form BlueZ uses for a 16-bit UUID."""
    return f"0000{short:04x}-0000-1000-8000-00805f9b34fb"


HRS = uuid16(0x180D)
HRM = uuid16(0x2A37)
BODY_SENSOR_LOCATION = uuid16(0x2A38)
BAS = uuid16(0x180F)
BATTERY_LEVEL = uuid16(0x2A19)
DIS = uuid16(0x180A)
CCCD = uuid16(0x2902)
DIS_CHARS = {
    "manufacturer": uuid16(0x2A29),
    "model": uuid16(0x2A24),
    "serial": uuid16(0x2A25),
    "hardware": uuid16(0x2A27),
    "firmware": uuid16(0x2A26),
    "software": uuid16(0x2A28),
}


# The H10's ACC settings: 25/50/100/200 Hz, 16 bit, 2/4/8 g.
H10_ACC_SETTINGS = bytes.fromhex(
    "f0 01 02 00 00 00 04 19 00 32 00 64 00 c8 00 01 01 10 00 02 03 02 00 04 00 08 00"
)
PMD_SERVICE = pmd_protocol.PMD_SERVICE_UUID
PMD_CONTROL = pmd_protocol.PMD_CONTROL_UUID
PMD_DATA = pmd_protocol.PMD_DATA_UUID


@dataclass
class PmdSpec:
    """How the fake PMD service answers (defaults: a Polar H10 that accepts what it offers)."""

    features: bytes = bytes.fromhex("0f05000000000000000000000000000000")
    ecg_settings: bytes = bytes.fromhex("f0 01 00 00 00 00 01 82 00 01 01 0e 00")
    acc_settings: bytes = H10_ACC_SETTINGS
    mtu_refusals: int = 0  # the first N starts answer the capture's MTU refusal
    mtu_refusal: bytes = bytes.fromhex("f0 00 01 0a")
    refuse: dict[int, bytes] = field(default_factory=dict)  # measurement type -> start answer
    accepted: bytes = bytes.fromhex("f0 02 00 00 00 00")  # byte 2 is set to the type
    answer: bool = True  # False: the control point never answers (a hung strap)
    garbage: bytes | None = None  # answer every request with these bytes (a broken firmware)


@dataclass
class StrapSpec:
    """What a fake strap looks like; defaults resemble a Polar H10."""

    name: str = "Polar H10 A1B2C3D4"
    address: str = "A0:9E:1A:00:00:01"
    rssi: int = -58
    battery_pct: int | None = 87  # None: no Battery service
    battery_notify: bool = True
    advertise_hrs: bool = True  # 0x180D in the advertised UUIDs
    info: dict[str, str] | None = field(
        default_factory=lambda: {
            "manufacturer": "Polar Electro Oy",
            "model": "H10",
            "serial": "C0680226",
            "hardware": "39044024.10",
            "firmware": "5.0.0",
            "software": "5.0.0",
        }
    )  # None: no Device Information service
    has_hrs: bool = True  # False: a device without the Heart Rate service
    refuse_connect: bool = False  # advertises but every Connect fails (busy with another central)
    connect_delay_s: float = 0.0  # wall time Connect takes before answering
    read_delay_s: float = 0.0  # wall time each characteristic read takes (a sluggish strap)
    services_delay_s: float = 0.001  # wall time from Connect's reply to ServicesResolved
    pmd: PmdSpec | None = None  # None: no PMD service (every strap but a Polar with raw data)


# --------------------------------------------------------------------------- GATT objects


class GattDescriptor(ServiceInterface):
    def __init__(self, uuid: str, char_path: str, value: bytes) -> None:
        super().__init__("org.bluez.GattDescriptor1")
        self._uuid = uuid
        self._char_path = char_path
        self._value = value

    @dbus_property(access=PropertyAccess.READ)
    def UUID(self) -> DBusStr:
        return self._uuid

    @dbus_property(access=PropertyAccess.READ)
    def Characteristic(self) -> DBusObjectPath:
        return self._char_path

    @dbus_property(access=PropertyAccess.READ)
    def Value(self) -> DBusBytes:
        return self._value

    @dbus_property(access=PropertyAccess.READ)
    def Flags(self) -> DBusStrList:
        return ["read", "write"]

    @dbus_method()
    def ReadValue(self, options: DBusDict) -> DBusBytes:
        return self._value


class GattCharacteristic(ServiceInterface):
    def __init__(
        self,
        strap: FakeStrap,
        uuid: str,
        service_path: str,
        flags: list[str],
        value: bytes = b"",
    ) -> None:
        super().__init__("org.bluez.GattCharacteristic1")
        self._strap = strap
        self._uuid = uuid
        self._service_path = service_path
        self._flags = flags
        self.value = value
        self.notifying = False
        self.start_notify_calls = 0
        self.read_value: bytes | None = None  # what a read returns when not the last value sent

    @dbus_property(access=PropertyAccess.READ)
    def UUID(self) -> DBusStr:
        return self._uuid

    @dbus_property(access=PropertyAccess.READ)
    def Service(self) -> DBusObjectPath:
        return self._service_path

    @dbus_property(access=PropertyAccess.READ)
    def Value(self) -> DBusBytes:
        return self.value

    @dbus_property(access=PropertyAccess.READ)
    def Notifying(self) -> DBusBool:
        return self.notifying

    @dbus_property(access=PropertyAccess.READ)
    def Flags(self) -> DBusStrList:
        return self._flags

    @dbus_method()
    async def ReadValue(self, options: DBusDict) -> DBusBytes:
        self._strap.check_connected()
        self._strap.reads[self._uuid] = self._strap.reads.get(self._uuid, 0) + 1
        if self._strap.spec.read_delay_s:
            await asyncio.sleep(self._strap.spec.read_delay_s)
        if "read" not in self._flags:
            raise DBusError(ERR_NOT_PERMITTED, "Read not permitted")
        return self.value if self.read_value is None else self.read_value

    @dbus_method()
    def StartNotify(self):
        self._strap.check_connected()
        if "notify" not in self._flags and "indicate" not in self._flags:
            raise DBusError(ERR_NOT_SUPPORTED, "Operation is not supported")
        self.start_notify_calls += 1
        if not self.notifying:
            self.notifying = True
            self.emit_properties_changed({"Notifying": True})
            self._strap.pulse()

    @dbus_method()
    def StopNotify(self):
        self._strap.check_connected()
        if self.notifying:
            self.notifying = False
            self.emit_properties_changed({"Notifying": False})
            self._strap.pulse()

    @dbus_method()
    def WriteValue(self, value: DBusBytes, options: DBusDict):
        self._strap.check_connected()
        if "write" not in self._flags:
            raise DBusError(ERR_NOT_PERMITTED, "Write not permitted")
        self._strap.on_write(self._uuid, bytes(value))

    def push(self, value: bytes) -> bool:
        """Send a notification if a client subscribed; True when it went out."""
        self.value = bytes(value)
        if not self.notifying:
            return False
        self.emit_properties_changed({"Value": self.value})
        return True


class GattService(ServiceInterface):
    def __init__(self, uuid: str, device_path: str) -> None:
        super().__init__("org.bluez.GattService1")
        self._uuid = uuid
        self._device_path = device_path

    @dbus_property(access=PropertyAccess.READ)
    def UUID(self) -> DBusStr:
        return self._uuid

    @dbus_property(access=PropertyAccess.READ)
    def Device(self) -> DBusObjectPath:
        return self._device_path

    @dbus_property(access=PropertyAccess.READ)
    def Primary(self) -> DBusBool:
        return True


# --------------------------------------------------------------------------- device


class Device(ServiceInterface):
    def __init__(self, strap: FakeStrap) -> None:
        super().__init__("org.bluez.Device1")
        self._strap = strap

    @dbus_property(access=PropertyAccess.READ)
    def Address(self) -> DBusStr:
        return self._strap.spec.address

    @dbus_property(access=PropertyAccess.READ)
    def AddressType(self) -> DBusStr:
        return "random"

    @dbus_property(access=PropertyAccess.READ)
    def Name(self) -> DBusStr:
        return self._strap.spec.name

    @dbus_property(access=PropertyAccess.READ)
    def Alias(self) -> DBusStr:
        return self._strap.spec.name

    @dbus_property(access=PropertyAccess.READ)
    def Adapter(self) -> DBusObjectPath:
        return ADAPTER_PATH

    @dbus_property(access=PropertyAccess.READ)
    def UUIDs(self) -> DBusStrList:
        return self._strap.advertised_uuids()

    @dbus_property(access=PropertyAccess.READ)
    def RSSI(self) -> DBusInt16:
        return self._strap.spec.rssi

    @dbus_property(access=PropertyAccess.READ)
    def Connected(self) -> DBusBool:
        return self._strap.connected

    @dbus_property(access=PropertyAccess.READ)
    def ServicesResolved(self) -> DBusBool:
        return self._strap.services_resolved

    @dbus_property(access=PropertyAccess.READ)
    def Paired(self) -> DBusBool:
        return False

    @dbus_property(access=PropertyAccess.READ)
    def Bonded(self) -> DBusBool:
        return False

    @dbus_property(access=PropertyAccess.READ)
    def Trusted(self) -> DBusBool:
        return False

    @dbus_property(access=PropertyAccess.READ)
    def Blocked(self) -> DBusBool:
        return False

    @dbus_property(access=PropertyAccess.READ)
    def LegacyPairing(self) -> DBusBool:
        return False

    @dbus_property(access=PropertyAccess.READ)
    def ManufacturerData(self) -> DBusManufacturerData:
        return {}

    @dbus_property(access=PropertyAccess.READ)
    def ServiceData(self) -> DBusDict:
        return {}

    @dbus_method()
    async def Connect(self):
        await self._strap.handle_connect()

    @dbus_method()
    def Disconnect(self):
        if self._strap.connect_pending:
            self._strap._connect_aborted = True
        self._strap.link_down(reason="host")


# --------------------------------------------------------------------------- strap


class FakeStrap:
    """One strap: its Device1 object, GATT tree, link state and a notify switch for tests."""

    def __init__(self, bluez: FakeBlueZ, spec: StrapSpec) -> None:
        self.bluez = bluez
        self.spec = spec
        self.path = f"{ADAPTER_PATH}/dev_{spec.address.upper().replace(':', '_')}"
        self.device = Device(self)
        self.exported = False
        self.in_range = True
        self.connected = False
        self.services_resolved = False
        self.connect_calls = 0
        self.reads: dict[str, int] = {}  # characteristic UUID -> ReadValue calls
        self.connect_pending = False
        self._connect_aborted = False
        self.connect_times: list[float] = []  # bluez.time_source() at each Connect call
        self.disconnect_reasons: list[str] = []
        self._gatt: list[tuple[str, ServiceInterface]] = []
        self._link_generation = 0
        self.link_changed = asyncio.Event()
        self.hrm: GattCharacteristic | None = None
        self.battery: GattCharacteristic | None = None
        self.pmd_control: GattCharacteristic | None = None
        self.pmd_data: GattCharacteristic | None = None
        self.pmd_writes: list[bytes] = []  # every control-point request, in order
        self.pmd_streaming: dict[int, bytes] = {}  # measurement type -> its start request
        self._mtu_refusals_left = spec.pmd.mtu_refusals if spec.pmd is not None else 0

    # ---- advertising

    def advertised_uuids(self) -> list[str]:
        uuids = []
        if self.spec.advertise_hrs:
            uuids.append(HRS)
        return uuids

    @property
    def advertising(self) -> bool:
        return self.in_range and not self.connected

    def advertise(self) -> None:
        """One advertisement seen by the adapter: export on first sight, else an RSSI update."""
        if not self.exported:
            self.bluez.bus.export(self.path, self.device)
            self.exported = True
        else:
            self.device.emit_properties_changed({"RSSI": self.spec.rssi})

    # ---- link

    def check_connected(self) -> None:
        if not self.connected:
            raise DBusError(ERR_NOT_CONNECTED, "Not Connected")

    async def handle_connect(self) -> None:
        self.connect_calls += 1
        if self.bluez.time_source is not None:
            self.connect_times.append(self.bluez.time_source())
        if self.connected:
            return
        if self.spec.connect_delay_s:
            self.connect_pending = True
            try:
                await asyncio.sleep(self.spec.connect_delay_s)
            finally:
                self.connect_pending = False
            if self._connect_aborted:
                self._connect_aborted = False
                # bluetoothd: Disconnect during a pending Connect aborts it
                raise DBusError(ERR_FAILED, "Operation was aborted")
        if not self.in_range or self.spec.refuse_connect:
            raise DBusError(ERR_FAILED, CONNECT_FAILED_TEXT)
        self.connected = True
        self._link_generation += 1
        self.device.emit_properties_changed({"Connected": True})
        self.pulse()
        generation = self._link_generation
        # bluetoothd answers Connect before service discovery finishes; bleak then waits for
        # ServicesResolved, so resolve a moment later on the event loop.
        loop = asyncio.get_running_loop()
        loop.call_later(self.spec.services_delay_s, self._resolve_services, generation)

    def _resolve_services(self, generation: int) -> None:
        if not self.connected or generation != self._link_generation:
            return
        self._export_gatt()
        self.services_resolved = True
        self.device.emit_properties_changed({"ServicesResolved": True})
        self.pulse()

    def link_down(self, *, reason: str) -> None:
        """The link ends (host Disconnect, strap drop): ServicesResolved, Connected, GATT go."""
        if not self.connected:
            return
        self.disconnect_reasons.append(reason)
        self.connected = False
        self._link_generation += 1
        if self.services_resolved:
            self.services_resolved = False
            self.device.emit_properties_changed({"ServicesResolved": False})
        self.device.emit_properties_changed({"Connected": False})
        self._unexport_gatt()
        self.pulse()

    def drop(self) -> None:
        """The strap goes away (out of range, strap off the chest): link lost, Connect fails."""
        self.in_range = False
        self.link_down(reason="strap dropped")

    def restore(self) -> None:
        """The strap is back in range: it advertises again and accepts connections."""
        self.in_range = True
        self.pulse()

    def pulse(self) -> None:
        self.link_changed.set()
        self.link_changed = asyncio.Event()

    @property
    def subscribed(self) -> bool:
        """True when a client has StartNotify'd the Heart Rate Measurement."""
        return self.connected and self.hrm is not None and self.hrm.notifying

    async def wait_subscribed(self) -> None:
        """Wait until the HRM characteristic is notifying (wrap in asyncio.timeout)."""
        while not self.subscribed:
            await self.link_changed.wait()

    # ---- notifications

    def notify(self, payload: bytes) -> bool:
        """Send a 0x2A37 notification (any bytes, malformed too); False when nobody subscribed."""
        if not self.connected or self.hrm is None:
            return False
        return self.hrm.push(payload)

    def pmd_notify(self, frame: bytes) -> bool:
        """Send a PMD data notification (any bytes); False when nobody subscribed."""
        if not self.connected or self.pmd_data is None:
            return False
        return self.pmd_data.push(frame)

    @property
    def pmd_subscribed(self) -> bool:
        return self.connected and self.pmd_data is not None and self.pmd_data.notifying

    def on_write(self, uuid: str, value: bytes) -> None:
        """A characteristic write; the PMD control point answers with an indication."""
        if uuid != PMD_CONTROL or self.spec.pmd is None:
            return
        self.pmd_writes.append(value)
        answer = self._pmd_answer(self.spec.pmd, value)
        if answer is not None and self.pmd_control is not None:
            control = self.pmd_control
            # bluetoothd delivers the write's response before the indication that follows it.
            asyncio.get_running_loop().call_soon(control.push, answer)
        self.pulse()

    def _pmd_answer(self, spec: PmdSpec, req: bytes) -> bytes | None:
        if not spec.answer:
            return None
        if spec.garbage is not None:
            return spec.garbage
        if len(req) < 2:
            return bytes([0xF0, req[0] if req else 0, 0, 4, 0])  # INVALID_LENGTH
        op, mtype = req[0], req[1]
        if op == 0x01:
            if mtype == 0:
                return spec.ecg_settings
            if mtype == 2:
                return spec.acc_settings
            return bytes([0xF0, op, mtype, 3, 0])  # NOT_SUPPORTED
        if op == 0x02:
            if self._mtu_refusals_left > 0:
                self._mtu_refusals_left -= 1
                return spec.mtu_refusal
            if mtype in spec.refuse:
                return spec.refuse[mtype]
            if mtype not in (0, 2):
                return bytes([0xF0, op, mtype, 3, 0])
            if mtype in self.pmd_streaming:
                return bytes([0xF0, op, mtype, 6, 0])  # ALREADY_IN_STATE
            if not self._pmd_settings_offered(spec, mtype, req[2:]):
                return bytes([0xF0, op, mtype, 5, 0])  # INVALID_PARAMETER, as the capture
            self.pmd_streaming[mtype] = req
            return spec.accepted[:2] + bytes([mtype]) + spec.accepted[3:]
        if op == 0x03:
            if self.pmd_streaming.pop(mtype, None) is None:
                return bytes([0xF0, op, mtype, 6, 0])
            return bytes([0xF0, op, mtype, 0, 0])
        return bytes([0xF0, op, mtype, 1, 0])  # INVALID_OP_CODE

    @staticmethod
    def _pmd_settings_offered(spec: PmdSpec, mtype: int, settings: bytes) -> bool:
        offered_raw = spec.ecg_settings if mtype == 0 else spec.acc_settings
        offered = pmd_protocol.parse_settings(offered_raw[5:])
        try:
            asked = pmd_protocol.parse_settings(settings)
        except ParseError:
            return False
        return all(len(v) == 1 and v[0] in offered.get(k, ()) for k, v in asked.items()) and set(
            asked
        ) == set(offered)

    def set_battery(self, pct: int) -> bool:
        """Change the battery level; notifies when a client subscribed."""
        self.spec.battery_pct = pct
        if self.battery is None:
            return False
        return self.battery.push(bytes([pct]))

    # ---- GATT tree

    def _export_gatt(self) -> None:
        dev = self.path
        objs: list[tuple[str, ServiceInterface]] = []

        def service(handle: int, uuid: str) -> str:
            p = f"{dev}/service{handle:04x}"
            objs.append((p, GattService(uuid, dev)))
            return p

        def char(
            svc: str, handle: int, uuid: str, flags: list[str], value: bytes = b""
        ) -> GattCharacteristic:
            p = f"{svc}/char{handle:04x}"
            c = GattCharacteristic(self, uuid, svc, flags, value)
            objs.append((p, c))
            if "notify" in flags or "indicate" in flags:
                objs.append((f"{p}/desc{handle + 1:04x}", GattDescriptor(CCCD, p, b"\x00\x00")))
            return c

        if self.spec.has_hrs:
            hrs = service(0x000C, HRS)
            self.hrm = char(hrs, 0x000D, HRM, ["notify"])
            char(hrs, 0x0010, BODY_SENSOR_LOCATION, ["read"], b"\x01")
        self.battery = None
        if self.spec.battery_pct is not None:
            bas = service(0x0012, BAS)
            flags = ["read", "notify"] if self.spec.battery_notify else ["read"]
            self.battery = char(bas, 0x0013, BATTERY_LEVEL, flags, bytes([self.spec.battery_pct]))
        if self.spec.pmd is not None:
            svc = service(0x0030, PMD_SERVICE)
            self.pmd_control = char(
                svc, 0x0031, PMD_CONTROL, ["read", "write", "indicate"], self.spec.pmd.features
            )
            # Reading the control point always gives the features, whatever it last indicated.
            self.pmd_control.read_value = self.spec.pmd.features
            self.pmd_data = char(svc, 0x0034, PMD_DATA, ["notify"])
            self.pmd_streaming.clear()  # the H10 stops streaming when the link ends
        if self.spec.info is not None:
            dis = service(0x0016, DIS)
            handle = 0x0017
            for key, uuid in DIS_CHARS.items():
                if key in self.spec.info:
                    char(dis, handle, uuid, ["read"], self.spec.info[key].encode())
                handle += 2
        for p, iface in objs:
            self.bluez.bus.export(p, iface)
        self._gatt = objs

    def _unexport_gatt(self) -> None:
        for p, _iface in reversed(self._gatt):
            self.bluez.bus.unexport(p)
        self._gatt = []
        self.hrm = None
        self.battery = None
        self.pmd_control = None
        self.pmd_data = None
        self.pmd_streaming.clear()


# --------------------------------------------------------------------------- adapter


class Adapter(ServiceInterface):
    def __init__(self, bluez: FakeBlueZ) -> None:
        super().__init__("org.bluez.Adapter1")
        self._bluez = bluez

    @dbus_property(access=PropertyAccess.READ)
    def Address(self) -> DBusStr:
        return "00:1A:7D:DA:71:13"

    @dbus_property(access=PropertyAccess.READ)
    def Alias(self) -> DBusStr:
        return "fake-hci0"

    @dbus_property(access=PropertyAccess.READ)
    def Powered(self) -> DBusBool:
        return self._bluez.powered

    @dbus_property(access=PropertyAccess.READ)
    def Discovering(self) -> DBusBool:
        return bool(self._bluez.discovery_sessions)

    @dbus_property(access=PropertyAccess.READ)
    def Roles(self) -> DBusStrList:
        return ["central", "peripheral"]

    @dbus_method()
    def SetDiscoveryFilter(self, properties: DBusDict):
        sender = self._bluez.current_sender
        uuids = properties.get("UUIDs")
        self._bluez.discovery_filters[sender] = (
            {u.lower() for u in uuids.value} if isinstance(uuids, Variant) and uuids.value else None
        )

    @dbus_method()
    def StartDiscovery(self):
        was = bool(self._bluez.discovery_sessions)
        self._bluez.discovery_sessions.add(self._bluez.current_sender)
        self._bluez.start_discovery_calls += 1
        if self._bluez.time_source is not None:
            self._bluez.start_discovery_times.append(self._bluez.time_source())
        if not was:
            self.emit_properties_changed({"Discovering": True})
        # The first advertisements arrive right after discovery starts.
        asyncio.get_running_loop().call_soon(self._bluez.advertise_once)

    @dbus_method()
    def StopDiscovery(self):
        sender = self._bluez.current_sender
        if sender not in self._bluez.discovery_sessions:
            raise DBusError(ERR_FAILED, "No discovery started")
        self._bluez.discovery_sessions.discard(sender)
        if not self._bluez.discovery_sessions:
            self.emit_properties_changed({"Discovering": False})
            self._bluez.discovery_ended.set()
            self._bluez.discovery_ended = asyncio.Event()

    @dbus_method()
    def RemoveDevice(self, device: DBusObjectPath):
        for strap in self._bluez.straps:
            if strap.path == device and strap.exported:
                strap.link_down(reason="removed")
                self._bluez.bus.unexport(strap.path)
                strap.exported = False
                return
        raise DBusError("org.bluez.Error.DoesNotExist", "Does Not Exist")


# --------------------------------------------------------------------------- the service


class FakeBlueZ:
    """The fake bluetoothd: owns `org.bluez` on a (private) system bus."""

    def __init__(self, bus_address: str, *, adv_interval_s: float = 0.02) -> None:
        self.bus_address = bus_address
        self.adv_interval_s = adv_interval_s
        self.bus: MessageBus = MessageBus(bus_address=bus_address, bus_type=BusType.SYSTEM)
        self.adapter = Adapter(self)
        self.powered = True
        self.straps: list[FakeStrap] = []
        self.discovery_sessions: set[str] = set()
        self.discovery_filters: dict[str, set[str] | None] = {}
        self.start_discovery_calls = 0
        self.start_discovery_times: list[float] = []
        self.discovery_ended = asyncio.Event()  # set (and replaced) each time discovery stops
        self.current_sender = ""
        self.time_source: Callable[[], float] | None = None  # e.g. a ManualClock's now
        self._adv_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.bus.connect()
        self.bus.add_message_handler(self._note_sender)
        self.bus.export(ADAPTER_PATH, self.adapter)
        await self.bus.request_name(BLUEZ)
        self._adv_task = asyncio.create_task(self._advertiser(), name="fake-bluez-advertiser")

    async def stop(self) -> None:
        if self._adv_task is not None:
            self._adv_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._adv_task
            self._adv_task = None
        if self.bus.connected:
            self.bus.disconnect()
            await self.bus.wait_for_disconnect()

    def add_strap(self, spec: StrapSpec | None = None, **kw: Any) -> FakeStrap:
        """Put a strap near the adapter (it advertises while discovery runs)."""
        strap = FakeStrap(self, spec if spec is not None else StrapSpec(**kw))
        self.straps.append(strap)
        return strap

    # D-Bus method handlers do not see the caller; bluetoothd keys discovery sessions by sender, so
    # note the sender of each incoming call just before dbus-fast dispatches it (returning None
    # lets normal dispatch go on).
    def _note_sender(self, msg: Message) -> None:
        if msg.message_type == MessageType.METHOD_CALL and msg.sender:
            self.current_sender = msg.sender

    def _passes_filter(self, strap: FakeStrap) -> bool:
        filters = [self.discovery_filters.get(s) for s in self.discovery_sessions]
        if any(f is None for f in filters):
            return True
        uuids = {u.lower() for u in strap.advertised_uuids()}
        return any(f is not None and f & uuids for f in filters)

    def advertise_once(self) -> None:
        if not self.discovery_sessions or not self.bus.connected:
            return
        for strap in self.straps:
            if strap.advertising and self._passes_filter(strap):
                strap.advertise()

    async def _advertiser(self) -> None:
        while True:
            await asyncio.sleep(self.adv_interval_s)
            self.advertise_once()


# --------------------------------------------------------------------------- test helpers


class ManualClock:
    """A `Clock` whose time moves only when the test says so (sleepers wake as it passes them).

    Lets a test drive minutes of strap time as fast as D-Bus round trips allow, with exact
    receive times and no wall-clock races in the staleness watchdog or the backoff.
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._t = start
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []
        self._sleeper_added = asyncio.Event()

    @property
    def speed(self) -> float:
        return 1.0

    def now(self) -> float:
        return self._t

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (self._t + seconds, fut)
        self._sleepers.append(entry)
        self._sleeper_added.set()
        self._sleeper_added = asyncio.Event()
        try:
            await fut
        finally:
            with contextlib.suppress(ValueError):
                self._sleepers.remove(entry)

    def advance(self, dt: float) -> None:
        """Move time forward by `dt` seconds and wake every sleeper whose deadline passed."""
        if dt < 0:
            raise ValueError(f"time cannot go back ({dt})")
        self._t += dt
        for deadline, fut in list(self._sleepers):
            if deadline <= self._t and not fut.done():
                fut.set_result(None)

    @property
    def sleepers(self) -> int:
        return len(self._sleepers)

    async def wait_for_sleeper(self, within_s: float = 10.0) -> bool:
        """Wait (wall time) until something sleeps on this clock; False if nothing did.

        A driver that only advances time while the code under test waits on the clock keeps
        wall-time work (D-Bus calls, scans) from being stamped with a later virtual time. The
        wait is long: a strap always comes back to the clock (backoff, staleness watchdog), and on
        a loaded machine one bleak connect can take seconds of wall time; giving up early moves
        strap time on in the middle of it.
        """
        try:
            async with asyncio.timeout(within_s):
                while not self._sleepers:
                    await self._sleeper_added.wait()
        except TimeoutError:
            return False
        return True


class Collector:
    """Reads a device's `readings()` in a task and lets the test wait for what it expects."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._changed = asyncio.Event()

    async def consume(self, readings: Any) -> None:
        async for item in readings:
            self.items.append(item)
            self._changed.set()

    async def wait_for(
        self, predicate: Callable[[list[Any]], bool], within_s: float = 30.0
    ) -> None:
        """Wait (wall time) until `predicate(items)` holds; fail the test with what arrived."""
        try:
            async with asyncio.timeout(within_s):
                while not predicate(self.items):
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            tail = "\n".join(repr(i)[:200] for i in self.items[-8:])
            raise AssertionError(
                f"condition not met in {within_s} s; {len(self.items)} item(s), last:\n{tail}"
            ) from None


def notifications(items: list[Any]) -> list[Notification]:
    return [i for i in items if isinstance(i, Notification)]


def events(items: list[Any], kind: DeviceEventKind | None = None) -> list[DeviceEvent]:
    return [i for i in items if isinstance(i, DeviceEvent) and (kind is None or i.kind == kind)]


@dataclass
class Sent:
    """One notification the driver delivered: its virtual send time, RR values and bytes."""

    t: float
    rr_1024: tuple[int, ...]
    payload: bytes


class StrapDriver:
    """Plays a plausible heart into a FakeStrap on a ManualClock, as fast as D-Bus allows.

    Time advances by each notification's RR sum just before it is sent, and the driver waits until
    the device under test has read it, so receive times are exact and no watchdog races wall time.
    """

    def __init__(
        self, strap: FakeStrap, clock: ManualClock, collector: Collector, *, seed: int = 1
    ) -> None:
        self.strap = strap
        self.clock = clock
        self.collector = collector
        self.rng = random.Random(seed)
        self.sent: list[Sent] = []
        self.missed_rr = 0  # beats that happened while nobody was subscribed

    def _rr(self) -> int:
        # ~70 bpm with respiratory sinus arrhythmia (0.25 Hz) and a little noise, in 1/1024 s.
        t = self.clock.now()
        s = 0.85 + 0.06 * math.sin(2 * math.pi * 0.25 * t) + self.rng.gauss(0, 0.01)
        return round(s * 1024)

    async def beats(
        self,
        duration_s: float,
        *,
        contact: bool | None = True,
        with_rr: bool = True,
        energy_kj: int | None = None,
    ) -> None:
        """Send about `duration_s` of notifications (1-2 RR each), one at a time."""
        end = self.clock.now() + duration_s
        while self.clock.now() < end:
            group = tuple(self._rr() for _ in range(1 if self.rng.random() < 0.7 else 2))
            self.clock.advance(sum(group) / 1024)
            hr = round(60 * 1024 * len(group) / sum(group))
            m = HeartRateMeasurement(
                hr_bpm=hr,
                contact_supported=contact is not None,
                contact_detected=bool(contact),
                energy_expended_kj=energy_kj,
                rr_1024=group if with_rr else (),
            )
            await self.send(encode_heart_rate_measurement(m), group if with_rr else ())

    async def send(self, payload: bytes, rr_1024: tuple[int, ...] = ()) -> bool:
        """Notify `payload` now; wait until it was read. False (nothing sent) if not subscribed."""
        if not self.strap.subscribed:
            self.missed_rr += len(rr_1024)
            return False
        before = len(notifications(self.collector.items))
        assert self.strap.notify(payload)
        self.sent.append(Sent(self.clock.now(), rr_1024, payload))
        await self.collector.wait_for(lambda items: len(notifications(items)) > before)
        return True

    async def pass_time(self, duration_s: float, *, step_s: float = 0.5) -> None:
        """Let `duration_s` of strap time pass with no notifications (the device may reconnect)."""
        end = self.clock.now() + duration_s
        while self.clock.now() < end:
            await self._settle()
            await self.clock.wait_for_sleeper()
            self.clock.advance(min(step_s, end - self.clock.now()))
            await asyncio.sleep(0.002)

    async def _settle(self, within_s: float = 30.0) -> None:
        # While a connection is being set up (Connected but not yet subscribed) strap time stands
        # still, as it would for a strap whose setup takes a fraction of a second.
        # A scan runs in wall time inside bleak: hold strap time still until it ends too.
        async with asyncio.timeout(within_s):
            while self.strap.connected and not self.strap.subscribed:
                await self.strap.link_changed.wait()
            while self.strap.bluez.discovery_sessions:
                await self.strap.bluez.discovery_ended.wait()

    async def until_subscribed(self, *, step_s: float = 0.5, within_s: float = 60.0) -> float:
        """Advance time until the device under test has (re)subscribed; returns strap seconds."""
        start = self.clock.now()
        async with asyncio.timeout(within_s):
            while not self.strap.subscribed:
                await self._settle()
                if self.strap.subscribed:
                    break
                await self.clock.wait_for_sleeper()
                if self.strap.subscribed:
                    break
                self.clock.advance(step_s)
                await asyncio.sleep(0.002)
        return self.clock.now() - start

    async def outage(self, duration_s: float) -> None:
        """The strap drops and stays away `duration_s`, then is back (not yet reconnected)."""
        self.strap.drop()
        await self.pass_time(duration_s)
        self.strap.restore()


@contextlib.asynccontextmanager
async def open_strap(
    target: str, clock: ManualClock, **kw: Any
) -> AsyncIterator[tuple[BleStrap, Collector]]:
    """Open a BleStrap on the fake BlueZ with a Collector reading it in a task."""
    # Deadlines in wall time, generous for a loaded machine (a scan ends as soon as the strap
    # advertises; tests of the timeouts themselves set their own)
    kw.setdefault("scan_timeout_s", 1.0)
    kw.setdefault("connect_timeout_s", 30.0)
    kw.setdefault("rng", random.Random(0))
    strap = BleStrap(target, clock=clock, **kw)
    collector = Collector()
    async with strap, asyncio.TaskGroup() as tg:
        task = tg.create_task(collector.consume(strap.readings()))
        yield strap, collector
        task.cancel()
