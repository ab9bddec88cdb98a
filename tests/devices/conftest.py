"""Fixtures for the BLE tests: a private dbus-daemon, a fake BlueZ on it, a virtual clock.

bleak's BlueZ backend talks to the *system* bus; `DBUS_SYSTEM_BUS_ADDRESS` points it at a
throw-away `dbus-daemon` started per test, so the host's real bluetoothd is never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.devices.fake_bluez import FakeBlueZ
from tests.support import require_binary

# Allow-all policy: the bus only exists for one test and only this user can reach its socket.
_BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:dir={sockdir}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_type="method_return"/>
    <allow send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="signal"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
  </policy>
</busconfig>
"""


@pytest.fixture
def dbus_system_bus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Start a private dbus-daemon and make it the system bus for this test; yields its address."""
    daemon = require_binary("dbus-daemon", "dbus-daemon")
    # unix socket paths are limited to ~108 bytes; pytest's tmp_path can be longer than that.
    sockdir = tempfile.mkdtemp(prefix="bf-dbus-")
    config = tmp_path / "bus.conf"
    config.write_text(_BUS_CONFIG.format(sockdir=sockdir))
    log = tmp_path / "dbus-daemon.log"  # a file, not a pipe nobody reads while the bus runs
    with log.open("w") as err:
        proc = subprocess.Popen(
            [daemon, "--nofork", "--print-address", f"--config-file={config}"],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    try:
        assert proc.stdout is not None
        address = proc.stdout.readline().strip()
        if not address:
            proc.wait(timeout=5)
            pytest.fail(f"dbus-daemon printed no address: {log.read_text()}")
        monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", address)
        yield address
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        shutil.rmtree(sockdir, ignore_errors=True)


async def _close_bleak_manager() -> None:
    """Close bleak's per-loop BlueZ manager so its bus and watcher task do not outlive the test.

    bleak keeps one manager per event loop for the life of the process (fine for the service);
    each test has its own loop and bus, so tidy up explicitly (private API, tests only).
    """
    from bleak.backends.bluezdbus import manager as bluez_manager

    loop = asyncio.get_running_loop()
    mgr = bluez_manager._global_instances.pop(loop, None)
    if mgr is None or mgr._bus is None:
        return
    watcher = mgr._bus_watcher_task
    # Disconnect first and let bleak's own watcher task see it and finish; cancelling the watcher
    # instead would cancel the bus's disconnect future and leak the socket.
    mgr._bus.disconnect()
    if watcher is not None:
        await watcher
    else:
        with contextlib.suppress(Exception):
            await mgr._bus.wait_for_disconnect()


@pytest.fixture
async def bleak_on_private_bus(dbus_system_bus: str) -> AsyncIterator[str]:
    """The private system bus, with bleak's BlueZ manager closed again after the test."""
    try:
        yield dbus_system_bus
    finally:
        await _close_bleak_manager()


@pytest.fixture
async def fake_bluez(bleak_on_private_bus: str) -> AsyncIterator[FakeBlueZ]:
    """A fake org.bluez with one powered adapter and no straps yet (add them with add_strap)."""
    bluez = FakeBlueZ(bleak_on_private_bus)
    await bluez.start()
    try:
        yield bluez
    finally:
        await bluez.stop()
