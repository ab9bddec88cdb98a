"""The clinic tests use the BLE tests' private D-Bus and fake BlueZ (tests/devices/conftest.py)."""

from tests.devices.conftest import bleak_on_private_bus, dbus_system_bus, fake_bluez

__all__ = ["bleak_on_private_bus", "dbus_system_bus", "fake_bluez"]
