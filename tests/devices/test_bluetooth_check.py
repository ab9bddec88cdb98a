"""`check_bluetooth`: what `run --device` checks before anything starts, naming what is missing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from biofeedback.devices.scan import bluetooth_unavailable, check_bluetooth, system_bus_socket
from biofeedback.errors import DeviceError
from tests.devices.fake_bluez import FakeBlueZ

linux_only = pytest.mark.skipif(sys.platform != "linux", reason="BlueZ is Linux only")


def test_system_bus_socket_from_the_address() -> None:
    assert system_bus_socket({}) == "/var/run/dbus/system_bus_socket"
    env = {"DBUS_SYSTEM_BUS_ADDRESS": "unix:path=/tmp/x/bus,guid=1"}
    assert system_bus_socket(env) == "/tmp/x/bus"
    assert system_bus_socket({"DBUS_SYSTEM_BUS_ADDRESS": "tcp:host=h,port=1"}) is None


@linux_only
async def test_no_system_bus_names_the_socket_and_the_errno(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "no-such-bus"
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={missing}")
    with pytest.raises(DeviceError) as caught:
        await check_bluetooth()
    err = caught.value
    assert str(missing) in err.problem  # the bare errno named no file
    assert "[Errno 2]" in err.problem
    assert "systemctl start dbus bluetooth" in err.hint
    assert "biofeedback demo" in err.hint
    assert str(err) == f"{err.problem}. Fix: {err.hint}"


@pytest.mark.dbus
@linux_only
async def test_bus_without_bluetoothd(bleak_on_private_bus: str) -> None:
    with pytest.raises(DeviceError) as caught:
        await check_bluetooth()
    assert "bluetoothd (BlueZ) is not running" in caught.value.problem
    assert "systemctl start bluetooth" in caught.value.hint


@pytest.mark.dbus
@linux_only
async def test_adapter_powered_off(fake_bluez: FakeBlueZ) -> None:
    fake_bluez.powered = False
    with pytest.raises(DeviceError) as caught:
        await check_bluetooth()
    assert "switched off" in caught.value.problem
    assert "bluetoothctl power on" in caught.value.hint


@pytest.mark.dbus
@linux_only
async def test_a_powered_adapter_passes(fake_bluez: FakeBlueZ) -> None:
    await check_bluetooth()


def test_permission_is_its_own_message() -> None:
    err = bluetooth_unavailable(PermissionError(13, "Permission denied"))
    if sys.platform == "linux":
        assert "no permission" in err.problem
        assert "[Errno 13]" in err.problem
    assert err.hint
