"""Find heart-rate chest straps over Bluetooth LE (bleak): list them, or locate one by name/address.

Scanning filters on the standard Heart Rate service (0x180D), which Polar, Garmin, Wahoo and other
standard straps advertise. Battery Level (0x2A19) is not advertised by most straps, so `scan` reads
it by connecting briefly to each strap found (concurrently, each bounded by a timeout); a strap
that is busy with another central or refuses the read just has `battery_pct=None`.

Only one scan runs at a time per event loop: bluetoothd keeps one discovery session per D-Bus
connection and bleak shares one connection per loop, so two overlapping scans would stop each
other's discovery (the first to finish ends it for both).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import weakref
from collections.abc import Mapping
from dataclasses import dataclass

from bleak import BleakClient, BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakError

from biofeedback.errors import DeviceError

__all__ = [
    "BATTERY_LEVEL_UUID",
    "HEART_RATE_MEASUREMENT_UUID",
    "HEART_RATE_SERVICE_UUID",
    "StrapAdvert",
    "bluetooth_unavailable",
    "check_bluetooth",
    "find_strap",
    "scan",
    "scan_lock",
    "system_bus_socket",
    "uuid16",
]

log = logging.getLogger(__name__)


def uuid16(short: int) -> str:
    """The 128-bit form (Bluetooth base UUID) of a 16-bit SIG UUID, as bleak reports it."""
    return f"0000{short:04x}-0000-1000-8000-00805f9b34fb"


HEART_RATE_SERVICE_UUID = uuid16(0x180D)
HEART_RATE_MEASUREMENT_UUID = uuid16(0x2A37)
BATTERY_LEVEL_UUID = uuid16(0x2A19)


@dataclass(frozen=True, slots=True)
class StrapAdvert:
    """A strap seen while scanning."""

    name: str
    address: str  # MAC on Linux/Windows, a CoreBluetooth UUID on macOS
    rssi: int  # dBm; -127 when the platform did not report it
    battery_pct: int | None = None  # None when it could not be read


_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def scan_lock() -> asyncio.Lock:
    """The lock that serialises discovery within the running event loop (see module docstring)."""
    loop = asyncio.get_running_loop()
    lock = _locks.get(loop)
    if lock is None:
        lock = _locks[loop] = asyncio.Lock()
    return lock


_DEFAULT_SYSTEM_BUS = "unix:path=/var/run/dbus/system_bus_socket"
_START_BLUEZ = (
    "start it with `sudo systemctl start bluetooth` (`systemctl status bluetooth` shows why it "
    "stopped)"
)
_OTHER_OS = (
    "on macOS allow Bluetooth for the terminal app in System Settings > Privacy & Security > "
    "Bluetooth; on Windows turn Bluetooth on in Settings"
)


def system_bus_socket(env: Mapping[str, str] | None = None) -> str | None:
    """The file of the D-Bus system bus BlueZ is reached through (None: not a socket file)."""
    address = (os.environ if env is None else env).get("DBUS_SYSTEM_BUS_ADDRESS")
    for part in (address or _DEFAULT_SYSTEM_BUS).split(";"):
        kind, _, params = part.partition(":")
        if kind != "unix":
            continue
        for param in params.split(","):
            key, _, value = param.partition("=")
            if key == "path":
                return value
    return None


def bluetooth_unavailable(exc: BaseException) -> DeviceError:
    """A `DeviceError` saying what is missing and how to fix it when Bluetooth cannot be used.

    The errors underneath name nothing ("[Errno 2] No such file or directory" is the D-Bus
    socket, "ServiceUnknown" is bluetoothd): the message names the file or the service.
    """
    why = f"{type(exc).__name__}: {exc}"
    reason = getattr(getattr(exc, "reason", None), "name", None)
    text = str(exc)
    if isinstance(exc, OSError) and not isinstance(exc, TimeoutError) and sys.platform == "linux":
        sock = exc.filename or system_bus_socket()
        errno_text = f"[Errno {exc.errno}] {exc.strerror or exc}: {sock!r}"
        if isinstance(exc, PermissionError):
            return DeviceError(
                f"Bluetooth is not available: no permission to use the D-Bus system bus at "
                f"{sock} ({errno_text})",
                "run the service as a user allowed to use Bluetooth (on most systems the "
                "`bluetooth` group), or fix the D-Bus policy",
            )
        return DeviceError(
            f"Bluetooth is not available: the D-Bus system bus at {sock} cannot be reached, so "
            f"bluetoothd cannot be asked for an adapter ({errno_text})",
            "start D-Bus and BlueZ (`sudo systemctl start dbus bluetooth`); in a container, "
            "share the host's /var/run/dbus with it; no Bluetooth on this machine at all? use "
            "`biofeedback demo` to try the software with a simulated strap",
        )
    if "ServiceUnknown" in text or ("org.bluez" in text and "not provided" in text):
        return DeviceError(
            f"Bluetooth is not available: bluetoothd (BlueZ) is not running ({why})", _START_BLUEZ
        )
    if reason in ("NO_BLUETOOTH", "NO_BLE_CENTRAL_ROLE"):
        return DeviceError(
            f"Bluetooth is not available: no Bluetooth LE adapter found ({why})",
            "plug in a Bluetooth adapter (a USB dongle works) and check `rfkill list` and "
            "`bluetoothctl list`",
        )
    if reason == "POWERED_OFF":
        return DeviceError(
            f"Bluetooth is not available: the adapter is switched off, not powered ({why})",
            "`bluetoothctl power on` (and `rfkill unblock bluetooth` if it is blocked)",
        )
    if reason in ("DENIED_BY_USER", "DENIED_BY_SYSTEM"):
        return DeviceError(
            f"Bluetooth is not available: access was denied ({why})",
            "allow Bluetooth for this program; " + _OTHER_OS,
        )
    return DeviceError(
        f"Bluetooth is not available ({why})",
        "on Linux check that bluetoothd runs (systemctl status bluetooth), the adapter is "
        "powered (bluetoothctl power on) and not blocked (rfkill list); " + _OTHER_OS,
    )


async def check_bluetooth() -> None:
    """Raise `DeviceError` (what is missing, and the fix) when no adapter can be used right now.

    On Linux it asks BlueZ for a powered adapter (no scan, no radio use): what `run` checks
    before anything starts. Elsewhere there is no cheap check; the first scan finds out.
    """
    if sys.platform != "linux":
        return
    # bleak's BlueZ manager is shared per event loop by bleak itself; the strap reuses it.
    from bleak.backends.bluezdbus.manager import get_global_bluez_manager

    try:
        manager = await get_global_bluez_manager()
        manager.get_default_adapter()
    except (BleakError, OSError) as exc:
        raise bluetooth_unavailable(exc) from exc
    except Exception as exc:
        # dbus-fast's own errors (the bus refused us, a broken reply) are not BleakErrors
        if type(exc).__module__.startswith("dbus_fast"):
            raise bluetooth_unavailable(exc) from exc
        raise


def _display_name(device: BLEDevice, adv: AdvertisementData | None) -> str:
    if adv is not None and adv.local_name:
        return adv.local_name
    return device.name or device.address


def _address_key(address: str) -> str:
    # A0:9E:1A:..., a0-9e-1a-... (as some tools print it) and macOS UUIDs all compare equal to
    # themselves once separators and case are dropped.
    return address.strip().replace(":", "").replace("-", "").casefold()


def matches(target: str, device: BLEDevice, adv: AdvertisementData | None) -> bool:
    """True when `target` is the strap's address or its whole advertised name (any case).

    Never a partial name: in a clinic with several straps a prefix could pick someone else's.
    """
    want = target.strip().casefold()
    if want and _address_key(device.address) == _address_key(target):
        return True
    names = {device.name, adv.local_name if adv is not None else None}
    return any(n is not None and n.strip().casefold() == want for n in names)


async def read_battery(device: BLEDevice, *, timeout_s: float = 5.0) -> int | None:
    """Connect briefly and read Battery Level (0x2A19); None when absent, refused or timed out."""
    try:
        async with asyncio.timeout(timeout_s), BleakClient(device, timeout=timeout_s) as client:
            char = client.services.get_characteristic(BATTERY_LEVEL_UUID)
            if char is None:
                return None
            data = await client.read_gatt_char(char)
    except (BleakError, TimeoutError, OSError) as exc:
        log.debug("battery of %s not readable: %s", device.address, exc)
        return None
    if len(data) < 1 or data[0] > 100:
        log.debug("battery of %s: implausible value %r ignored", device.address, bytes(data))
        return None
    return int(data[0])


async def scan(
    timeout_s: float = 5.0, *, read_battery_level: bool = True, battery_timeout_s: float = 5.0
) -> list[StrapAdvert]:
    """Scan `timeout_s` seconds; list straps advertising Heart Rate (0x180D), strongest first.

    Raises `DeviceError` when the Bluetooth stack is unavailable (no adapter, powered off, no
    permission, no bluetoothd).
    """
    if not timeout_s > 0:
        raise DeviceError(f"scan timeout must be > 0 seconds, got {timeout_s!r}")
    try:
        async with scan_lock():
            found = await BleakScanner.discover(
                timeout=timeout_s, service_uuids=[HEART_RATE_SERVICE_UUID], return_adv=True
            )
    except (BleakError, OSError) as exc:
        raise bluetooth_unavailable(exc) from exc
    seen = sorted(found.values(), key=lambda da: da[1].rssi, reverse=True)
    batteries: list[int | None] = [None] * len(seen)
    if read_battery_level and seen:
        async with asyncio.TaskGroup() as tg:
            tasks = [
                tg.create_task(read_battery(dev, timeout_s=battery_timeout_s)) for dev, _ in seen
            ]
        batteries = [t.result() for t in tasks]
    adverts = [
        StrapAdvert(
            name=_display_name(dev, adv), address=dev.address, rssi=adv.rssi, battery_pct=batt
        )
        for (dev, adv), batt in zip(seen, batteries, strict=True)
    ]
    log.info("scan found %d strap(s) in %.1f s", len(adverts), timeout_s)
    return adverts


async def find_strap(target: str, *, timeout_s: float = 10.0) -> BLEDevice | None:
    """Scan until a strap whose name or address is `target` advertises; None after `timeout_s`.

    Does not filter on 0x180D: a few straps omit it from their advertisements yet serve it.
    Raises `DeviceError` when the Bluetooth stack is unavailable.
    """
    try:
        async with scan_lock():
            return await BleakScanner.find_device_by_filter(
                lambda d, adv: matches(target, d, adv), timeout=timeout_s
            )
    except (BleakError, OSError) as exc:
        raise bluetooth_unavailable(exc) from exc
