"""BleStrap and scan when the Bluetooth stack or the strap misbehave (real bleak, fake BlueZ)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from pathlib import Path

import pytest

from biofeedback.devices.ble import BleStrap
from biofeedback.devices.readings import DeviceEventKind as K
from biofeedback.devices.scan import scan
from biofeedback.errors import DeviceError
from tests.devices.fake_bluez import (
    FakeBlueZ,
    ManualClock,
    StrapDriver,
    StrapSpec,
    events,
    notifications,
    open_strap,
)

pytestmark = [pytest.mark.dbus]


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and r.name.startswith("biofeedback")
    ]


async def test_scan_without_bluetoothd_says_what_to_check(bleak_on_private_bus: str) -> None:
    with pytest.raises(DeviceError, match=r"Bluetooth is not available.*bluetoothd"):
        await scan(timeout_s=0.1)


async def test_scan_with_adapter_powered_off(fake_bluez: FakeBlueZ) -> None:
    fake_bluez.powered = False
    fake_bluez.add_strap()
    with pytest.raises(DeviceError, match=r"(?i)powered"):
        await scan(timeout_s=0.1)


async def test_strap_waits_for_bluetoothd_without_crashing(
    bleak_on_private_bus: str, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock()
    async with open_strap("Polar H10 A1B2C3D4", clock, scan_timeout_s=0.05) as (_s, got):
        for _ in range(10):
            clock.advance(10)
            await asyncio.sleep(0.01)
        # the therapist is told why there is no signal, once per outage, with the fix (issue 12)
        (error,) = got.items
        assert error.kind is K.ERROR
        assert "bluetoothd" in error.detail
        assert "systemctl start bluetooth" in error.hint
    warned = _warnings(caplog)
    assert len(warned) == 1
    assert "Bluetooth is not available" in warned[0]


async def test_device_without_heart_rate_service_is_retried_not_fatal(
    fake_bluez: FakeBlueZ, caplog: pytest.LogCaptureFixture
) -> None:
    fake = fake_bluez.add_strap(name="Not A Strap", has_hrs=False)
    clock = ManualClock()
    async with open_strap("Not A Strap", clock) as (_s, got):
        drv = StrapDriver(fake, clock, got)
        await drv.pass_time(20)
        await got.wait_for(lambda items: len(events(items, K.CONNECTED)) >= 2)
    assert not notifications(got.items)
    assert not events(got.items, K.SIGNAL_LOST)  # nothing ever flowed, so nothing was lost
    assert len(events(got.items, K.INFO)) == 1
    warned = _warnings(caplog)
    assert len(warned) == 1
    assert "no Heart Rate Measurement characteristic (0x2A37)" in warned[0]
    assert not fake.connected


async def test_sluggish_strap_times_out_then_recovers(
    fake_bluez: FakeBlueZ, caplog: pytest.LogCaptureFixture
) -> None:
    fake = fake_bluez.add_strap(StrapSpec(read_delay_s=0.4))
    clock = ManualClock()
    async with open_strap(fake.spec.name, clock, connect_timeout_s=0.15) as (_s, got):
        drv = StrapDriver(fake, clock, got)
        async with asyncio.timeout(5):
            while not any("GATT" in w for w in _warnings(caplog)):  # noqa: ASYNC110 - polls a log
                await asyncio.sleep(0.01)
        assert not fake.connected  # the half-set-up link was torn down
        fake.spec.read_delay_s = 0.0
        await drv.until_subscribed()
        await drv.beats(5)
    assert any("did not answer GATT requests within 0.15 s" in w for w in _warnings(caplog))
    assert len(notifications(got.items)) == len(drv.sent) > 0


async def test_reconnect_backoff_doubles_up_to_the_cap(fake_bluez: FakeBlueZ) -> None:
    fake = fake_bluez.add_strap()
    clock = ManualClock()
    fake_bluez.time_source = clock.now
    async with open_strap(
        fake.spec.name, clock, reconnect_initial_s=1.0, reconnect_max_s=16.0, scan_timeout_s=0.01
    ) as (_s, got):
        drv = StrapDriver(fake, clock, got)
        await drv.until_subscribed()
        await drv.beats(5)
        fake_bluez.start_discovery_times.clear()
        fake.connect_times.clear()
        dropped_at = clock.now()
        fake.drop()
        await drv.pass_time(90, step_s=0.1)
    # an attempt is a Connect (cached device) or, after 3 failures, a fresh scan
    attempts = sorted(fake.connect_times + fake_bluez.start_discovery_times)
    assert attempts[0] - dropped_at < 0.3  # the first retry after a drop is immediate
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    expected = [1, 2, 4, 8, 16, 16, 16]
    assert len(gaps) >= len(expected)
    for gap, base in zip(gaps, expected, strict=False):
        # +-20 % jitter, never above the cap; the driver moves time in steps of 0.1 s
        assert 0.8 * base - 0.15 <= gap <= min(16, 1.2 * base) + 0.15, (gaps, expected)
    assert len(events(got.items, K.SIGNAL_LOST)) == 1


def test_backoff_delays_are_jittered_and_capped() -> None:
    strap = BleStrap(
        "x",
        clock=ManualClock(),
        reconnect_initial_s=0.5,
        reconnect_max_s=10.0,
        rng=random.Random(3),
    )
    delays = [strap._backoff(n) for n in range(1, 12)]
    for n, d in enumerate(delays, start=1):
        base = min(10.0, 0.5 * 2 ** (n - 1))
        assert 0.8 * base <= d <= min(10.0, 1.2 * base)
    assert len(set(delays)) == len(delays)  # jittered: no two the same


async def test_bluetoothd_restart_is_survived(fake_bluez: FakeBlueZ) -> None:
    """bluetoothd restarts: the link goes silent; the strap is found again on the new daemon."""
    fake = fake_bluez.add_strap()
    clock = ManualClock()
    async with open_strap(fake.spec.name, clock, scan_timeout_s=0.2) as (_s, got):
        drv = StrapDriver(fake, clock, got)
        await drv.until_subscribed()
        await drv.beats(10)
        await fake_bluez.stop()
        second = FakeBlueZ(fake_bluez.bus_address)
        await second.start()
        try:
            fake2 = second.add_strap(fake.spec)
            drv2 = StrapDriver(fake2, clock, got)
            await got.wait_for(lambda items: True)
            await drv2.pass_time(6)
            await got.wait_for(lambda items: bool(events(items, K.SIGNAL_LOST)))
            await drv2.until_subscribed(within_s=20)
            await drv2.beats(10)
        finally:
            await second.stop()
    assert len(events(got.items, K.SIGNAL_RESTORED)) == 1
    assert len(notifications(got.items)) == len(drv.sent) + len(drv2.sent)


async def test_scan_lists_a_strap_whose_battery_cannot_be_read(fake_bluez: FakeBlueZ) -> None:
    fake_bluez.add_strap(name="Busy Strap", address="A0:9E:1A:00:00:0B", refuse_connect=True)
    fake_bluez.add_strap(name="Free Strap", address="A0:9E:1A:00:00:0C", rssi=-80)
    adverts = await scan(timeout_s=0.2, battery_timeout_s=1.0)
    assert [(a.name, a.battery_pct) for a in adverts] == [("Busy Strap", None), ("Free Strap", 87)]


async def test_overlapping_scans_both_see_the_straps(fake_bluez: FakeBlueZ) -> None:
    """bluetoothd keeps one discovery per D-Bus connection; scans in one process take turns."""
    fake_bluez.add_strap()
    a, b = await asyncio.gather(
        scan(timeout_s=0.2, read_battery_level=False), scan(timeout_s=0.2, read_battery_level=False)
    )
    assert [s.name for s in a] == [s.name for s in b] == ["Polar H10 A1B2C3D4"]
    assert fake_bluez.start_discovery_calls == 2
    assert not fake_bluez.discovery_sessions  # discovery was stopped again


async def test_only_garbage_counts_as_no_signal(fake_bluez: FakeBlueZ) -> None:
    fake = fake_bluez.add_strap()
    clock = ManualClock()
    async with open_strap(fake.spec.name, clock, stale_after_s=5.0) as (_s, got):
        drv = StrapDriver(fake, clock, got)
        await drv.until_subscribed()
        await drv.beats(5)
        for _ in range(4):  # packets that never parse, one a second
            clock.advance(1.0)
            assert await drv.send(b"\x11")
        assert not events(got.items, K.SIGNAL_LOST)
        await drv.pass_time(1.5)  # 5.5 s since the last good packet
        await got.wait_for(lambda items: bool(events(items, K.SIGNAL_LOST)))
    (lost,) = events(got.items, K.SIGNAL_LOST)
    assert "no heart rate notification for 5 s" in lost.detail
    assert len(events(got.items, K.MALFORMED)) == 4


async def test_an_unforeseen_error_is_logged_and_retried(
    fake_bluez: FakeBlueZ, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stands in for an internal error of bleak or the OS on one attempt (the only mock here)."""
    import biofeedback.devices.ble as ble

    real_find = ble.find_strap
    calls = 0

    async def flaky_find(target: str, *, timeout_s: float = 10.0) -> object:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("odd internal state")
        return await real_find(target, timeout_s=timeout_s)

    monkeypatch.setattr(ble, "find_strap", flaky_find)
    fake = fake_bluez.add_strap()
    clock = ManualClock()
    async with open_strap(fake.spec.name, clock) as (_s, got):
        drv = StrapDriver(fake, clock, got)
        await drv.until_subscribed()
        await drv.beats(3)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "odd internal state" in errors[0].getMessage()
    assert errors[0].exc_info is not None
    assert len(notifications(got.items)) == len(drv.sent) > 0


async def test_scan_without_any_system_bus(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A container or minimal install with no D-Bus at all: a clear error, not a traceback."""
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={tmp_path}/no-such-bus")
    with pytest.raises(DeviceError, match=r"Bluetooth is not available: the D-Bus") as caught:
        await scan(timeout_s=0.1)
    # the errno underneath names no file: the message does (issue 12)
    assert f"{tmp_path}/no-such-bus" in caught.value.problem
    assert "[Errno " in caught.value.problem


async def test_connect_that_hangs_times_out_and_is_retried(
    fake_bluez: FakeBlueZ, caplog: pytest.LogCaptureFixture
) -> None:
    """Out of range, bluetoothd's Connect can hang; bleak's timeout ends the attempt."""
    fake = fake_bluez.add_strap(StrapSpec(connect_delay_s=0.6))
    clock = ManualClock()
    async with open_strap(fake.spec.name, clock, connect_timeout_s=0.2) as (_s, got):
        drv = StrapDriver(fake, clock, got)
        async with asyncio.timeout(5):
            while not _warnings(caplog):  # noqa: ASYNC110 - polls a log
                await asyncio.sleep(0.01)
        fake.spec.connect_delay_s = 0.0
        await drv.until_subscribed()
        await drv.beats(3)
    (warned,) = _warnings(caplog)
    assert "did not accept a connection within 0.2 s" in warned
    assert len(events(got.items, K.CONNECTED)) == 1
    assert len(notifications(got.items)) == len(drv.sent) > 0
