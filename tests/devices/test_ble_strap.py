"""BleStrap against bleak's real BlueZ backend talking to a fake org.bluez on a private bus."""

from __future__ import annotations

import asyncio
import csv
import itertools
import logging
import os
from pathlib import Path

import pytest

from biofeedback.clock import ScaledClock
from biofeedback.devices.ble import BleStrap
from biofeedback.devices.readings import DeviceEventKind as K
from biofeedback.devices.readings import Notification
from biofeedback.devices.scan import StrapAdvert, scan
from biofeedback.errors import DeviceError
from tests.devices.fake_bluez import (
    BATTERY_LEVEL,
    DIS_CHARS,
    FakeBlueZ,
    ManualClock,
    StrapDriver,
    StrapSpec,
    events,
    notifications,
    open_strap,
)

pytestmark = [pytest.mark.dbus]


def _kinds(items: list[object]) -> list[str]:
    return [str(i.kind) for i in items if not isinstance(i, Notification)]  # type: ignore[attr-defined]


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _leftover_tasks(before: set[asyncio.Task[object]]) -> set[asyncio.Task[object]]:
    """Tasks started since `before` that still run, except bleak's per-loop bus watcher (which
    lives as long as the event loop by design)."""
    return {
        t
        for t in asyncio.all_tasks() - before
        if not t.done() and "_monitor_bus_disconnect" not in repr(t.get_coro())
    }


def _check_stream(sent: list, got: list[Notification]) -> None:
    """Every delivered notification arrived once, in order, with its RR and exact times."""
    assert [n.payload for n in got] == [s.payload for s in sent]
    for s, n in zip(sent, got, strict=True):
        assert n.t == s.t
        assert n.error is None
        assert tuple(round(b.rr_ms * 1024 / 1000) for b in n.beats) == s.rr_1024
        if n.beats:
            assert n.beats[-1].t == pytest.approx(s.t)
    times = [b.t for n in got for b in n.beats]
    assert all(b > a for a, b in itertools.pairwise(times))


async def test_scan_lists_heart_rate_straps_with_battery(fake_bluez: FakeBlueZ) -> None:
    fake_bluez.add_strap(name="Polar H10 A1", address="A0:9E:1A:00:00:01", rssi=-50)
    fake_bluez.add_strap(
        name="TICKR 7F", address="C4:00:00:00:00:02", rssi=-70, battery_pct=None, info=None
    )
    fake_bluez.add_strap(name="Kettle", address="11:22:33:44:55:66", advertise_hrs=False)
    adverts = await scan(timeout_s=0.3)
    assert adverts == [
        StrapAdvert(name="Polar H10 A1", address="A0:9E:1A:00:00:01", rssi=-50, battery_pct=87),
        StrapAdvert(name="TICKR 7F", address="C4:00:00:00:00:02", rssi=-70, battery_pct=None),
    ]
    # the battery read connected and then disconnected again
    assert not any(s.connected for s in fake_bluez.straps)


async def test_a_partial_name_is_not_enough(fake_bluez: FakeBlueZ) -> None:
    """With several straps in a room, a prefix could connect to someone else's."""
    fake = fake_bluez.add_strap(name="Polar H10 A1B2C3D4")
    clock = ManualClock()
    async with open_strap("Polar H10", clock, scan_timeout_s=0.1) as (_s, got):
        drv = StrapDriver(fake, clock, got)
        await drv.pass_time(5)
    assert fake.connect_calls == 0
    # nothing but the reason, told once: not found, with what to check (issue 12)
    assert [(e.kind, e.detail) for e in got.items] == [
        (K.ERROR, "strap 'Polar H10' not found in 0.1 s of scanning")
    ]


async def test_scan_with_no_straps_is_empty(fake_bluez: FakeBlueZ) -> None:
    assert await scan(timeout_s=0.1) == []


async def test_scan_rejects_bad_timeout() -> None:
    with pytest.raises(DeviceError, match="timeout"):
        await scan(timeout_s=0)


@pytest.mark.parametrize("by", ["name", "address", "lowercase address", "dashed address"])
async def test_connect_reads_info_and_battery_then_streams(fake_bluez: FakeBlueZ, by: str) -> None:
    fake = fake_bluez.add_strap()
    target = {
        "name": fake.spec.name,
        "address": fake.spec.address,
        "lowercase address": fake.spec.address.lower(),
        "dashed address": fake.spec.address.lower().replace(":", "-"),
    }[by]
    clock = ManualClock()
    async with open_strap(target, clock) as (strap, got):
        drv = StrapDriver(fake, clock, got)
        await drv.until_subscribed()
        await drv.beats(20)
    assert _kinds(got.items)[:3] == ["connected", "info", "battery"]
    (info_ev,) = events(got.items, K.INFO)
    info = info_ev.info
    assert info is not None
    assert (info.name, info.address) == (fake.spec.name, fake.spec.address)
    assert (info.manufacturer, info.model, info.firmware) == ("Polar Electro Oy", "H10", "5.0.0")
    assert (info.hardware, info.software, info.serial) == ("39044024.10", "5.0.0", "C0680226")
    (batt,) = events(got.items, K.BATTERY)
    assert batt.battery_pct == 87
    _check_stream(drv.sent, notifications(got.items))
    assert len(drv.sent) >= 15
    assert all(n.device == target.strip() for n in notifications(got.items))
    assert not events(got.items, K.SIGNAL_LOST)
    # leaving the context disconnected the strap cleanly
    assert not fake.connected
    assert fake.disconnect_reasons == ["host"]
    assert strap.connections == 1


async def test_five_minutes_of_beats_arrive_complete_and_in_order(fake_bluez: FakeBlueZ) -> None:
    fake = fake_bluez.add_strap()
    clock = ManualClock()
    async with open_strap(fake.spec.name, clock) as (_strap, got):
        drv = StrapDriver(fake, clock, got, seed=5)
        await drv.until_subscribed()
        t0 = clock.now()
        await drv.beats(300)
        assert clock.now() - t0 >= 300
    got_n = notifications(got.items)
    _check_stream(drv.sent, got_n)
    n_beats = sum(len(n.beats) for n in got_n)
    assert n_beats == sum(len(s.rr_1024) for s in drv.sent) > 300
    assert not events(got.items, K.SIGNAL_LOST)
    assert not events(got.items, K.MALFORMED)


async def test_drop_mid_stream_reports_gap_and_resumes(
    fake_bluez: FakeBlueZ, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="biofeedback.devices.ble")
    fake = fake_bluez.add_strap()
    clock = ManualClock()
    async with open_strap(fake.spec.name, clock, reconnect_max_s=8.0) as (_strap, got):
        drv = StrapDriver(fake, clock, got)
        await drv.until_subscribed()
        await drv.beats(60)
        last_before = drv.sent[-1].t
        fake.drop()
        await got.wait_for(lambda items: bool(events(items, K.SIGNAL_LOST)))
        await drv.pass_time(40)  # the strap is away 40 s; every attempt meanwhile fails
        fake.restore()
        await drv.until_subscribed()
        await drv.beats(30)
    (lost,) = events(got.items, K.SIGNAL_LOST)
    (restored,) = events(got.items, K.SIGNAL_RESTORED)
    first_after = next(s for s in drv.sent if s.t > last_before)
    assert restored.gap_s == pytest.approx(first_after.t - last_before)
    # away 40 s; the reconnect comes within one capped backoff (8 s +20 % jitter) of its return
    assert 40 <= restored.gap_s <= 40 + 8 * 1.2 + 2
    assert lost.t == pytest.approx(last_before)
    assert "disconnected" in lost.detail
    kinds = _kinds(got.items)
    assert kinds.index("signal_lost") < kinds.index("signal_restored")
    # the restored event comes right before the first notification after the gap
    idx = got.items.index(restored)
    assert isinstance(got.items[idx + 1], Notification)
    assert got.items[idx + 1].t == first_after.t
    _check_stream(drv.sent, notifications(got.items))
    assert len(events(got.items, K.CONNECTED)) == 2
    assert fake.connect_calls >= 3  # failed attempts while away
    # the first failure warns, repeats are debug, the recovery is info (our logger's records:
    # bleak warns once per process that bluetoothctl is missing, in whichever test comes first)
    ours = [r for r in caplog.records if r.name == "biofeedback.devices.ble"]
    warnings = [r for r in ours if r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert any(r.levelno == logging.DEBUG and "attempt" in r.getMessage() for r in ours)
    infos = [r.getMessage() for r in ours if r.levelno == logging.INFO]
    assert any("restored" in m for m in infos)


async def test_repeated_drops_every_150_s(fake_bluez: FakeBlueZ) -> None:
    """The Polar H10 on BlueZ is reported to drop about every 150 s and be back at once."""
    fake = fake_bluez.add_strap()
    clock = ManualClock()
    async with open_strap(fake.spec.name, clock) as (_strap, got):
        drv = StrapDriver(fake, clock, got, seed=3)
        await drv.until_subscribed()
        fds_connected = _open_fds()
        for _ in range(4):
            await drv.beats(150)
            fake.drop()
            fake.restore()
            await drv.until_subscribed()
        await drv.beats(30)
        # bleak opens a D-Bus connection per link; each drop must release its own
        assert _open_fds() == fds_connected
    lost = events(got.items, K.SIGNAL_LOST)
    restored = events(got.items, K.SIGNAL_RESTORED)
    assert len(lost) == len(restored) == 4
    for ev in restored:
        assert ev.gap_s is not None
        assert 0 < ev.gap_s < 5  # immediate retry; the gap is mostly the next RR group
    _check_stream(drv.sent, notifications(got.items))
    assert len(events(got.items, K.CONNECTED)) == 5
    assert len(events(got.items, K.INFO)) == 1  # same strap, same information: said once
    assert len(events(got.items, K.BATTERY)) == 5  # read on each connection
    # Device Information is read once; reconnects skip it (a shorter gap)
    assert fake.reads[DIS_CHARS["manufacturer"]] == 1
    assert fake.reads[BATTERY_LEVEL] == 5


async def test_silent_link_is_declared_lost_and_rebuilt(fake_bluez: FakeBlueZ) -> None:
    fake = fake_bluez.add_strap()
    clock = ManualClock()
    async with open_strap(fake.spec.name, clock, stale_after_s=5.0) as (_strap, got):
        drv = StrapDriver(fake, clock, got)
        await drv.until_subscribed()
        await drv.beats(20)
        last = drv.sent[-1].t
        await drv.pass_time(4.5)
        assert not events(got.items, K.SIGNAL_LOST)  # 4.5 s of silence is tolerated
        await drv.pass_time(1.0)
        await got.wait_for(lambda items: bool(events(items, K.SIGNAL_LOST)))
        await drv.until_subscribed()
        await drv.beats(10)
    (lost,) = events(got.items, K.SIGNAL_LOST)
    assert "no heart rate notification for 5 s" in lost.detail
    assert lost.t == pytest.approx(last + 5.0, abs=0.5)
    (restored,) = events(got.items, K.SIGNAL_RESTORED)
    assert restored.gap_s is not None
    assert 5.0 <= restored.gap_s < 8
    assert "host" in fake.disconnect_reasons  # we tore the silent link down ourselves
    _check_stream(drv.sent, notifications(got.items))


async def test_sensor_contact_lost_and_regained(fake_bluez: FakeBlueZ) -> None:
    fake = fake_bluez.add_strap()
    clock = ManualClock()
    async with open_strap(fake.spec.name, clock) as (_strap, got):
        drv = StrapDriver(fake, clock, got)
        await drv.until_subscribed()
        await drv.beats(10, contact=True)
        await drv.beats(10, contact=False)
        await drv.beats(10, contact=True)
    kinds = [k for k in _kinds(got.items) if k.startswith("contact")]
    assert kinds == ["contact_lost", "contact_restored"]
    got_n = notifications(got.items)
    lost_at = got.items.index(events(got.items, K.CONTACT_LOST)[0])
    first_bad = got.items[lost_at + 1]
    assert isinstance(first_bad, Notification)
    assert first_bad.measurement is not None
    assert first_bad.measurement.contact is False
    flagged = [b for n in got_n for b in n.beats if b.contact is False]
    assert flagged
    assert all(
        b.contact is False
        for n in got_n
        if n.measurement is not None and n.measurement.contact is False
        for b in n.beats
    )
    _check_stream(drv.sent, got_n)


async def test_strap_without_contact_feature_emits_no_contact_events(
    fake_bluez: FakeBlueZ,
) -> None:
    fake = fake_bluez.add_strap()
    clock = ManualClock()
    async with open_strap(fake.spec.name, clock) as (_strap, got):
        drv = StrapDriver(fake, clock, got)
        await drv.until_subscribed()
        await drv.beats(10, contact=None)
    assert not [k for k in _kinds(got.items) if k.startswith("contact")]
    assert drv.sent, "nothing was sent: the check below would hold vacuously"
    _check_stream(drv.sent, notifications(got.items))  # and every notification arrived
    assert all(b.contact is None for n in notifications(got.items) for b in n.beats)


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (b"", "empty"),
        (b"\x01\x46", "16-bit"),
        (b"\x10\x46\x00\x03\x01", "odd length"),
        (b"\x08\x46\x01", "energy"),
        (b"\x00\x46\x99", "trailing"),
    ],
)
async def test_malformed_notification_is_reported_and_stream_goes_on(
    fake_bluez: FakeBlueZ, payload: bytes, problem: str, caplog: pytest.LogCaptureFixture
) -> None:
    fake = fake_bluez.add_strap()
    clock = ManualClock()
    async with open_strap(fake.spec.name, clock) as (_strap, got):
        drv = StrapDriver(fake, clock, got)
        await drv.until_subscribed()
        await drv.beats(5)
        clock.advance(0.5)
        await drv.send(payload)
        await got.wait_for(lambda items: bool(events(items, K.MALFORMED)))
        await drv.send(payload)
        await drv.beats(5)
    bad = [n for n in notifications(got.items) if n.error is not None]
    assert len(bad) == 2
    assert all(n.payload == payload and n.measurement is None and not n.beats for n in bad)
    assert problem in (bad[0].error or "")
    malformed = events(got.items, K.MALFORMED)
    assert len(malformed) == 2
    assert problem in malformed[0].detail
    assert (payload.hex() or "empty") in malformed[0].detail
    # the error notification comes first, its event right after it
    assert got.items[got.items.index(malformed[0]) - 1] is bad[0]
    warned = [
        r for r in caplog.records if r.levelno == logging.WARNING and "malformed" in r.message
    ]
    assert len(warned) == 1  # the repeat is logged at debug
    good = [n for n in notifications(got.items) if n.error is None]
    assert len(good) == len(drv.sent) - 2
    assert not events(got.items, K.SIGNAL_LOST)


async def test_random_garbage_never_crashes_the_strap(fake_bluez: FakeBlueZ) -> None:
    import random

    rng = random.Random(7)
    fake = fake_bluez.add_strap()
    clock = ManualClock()
    async with open_strap(fake.spec.name, clock) as (_strap, got):
        drv = StrapDriver(fake, clock, got)
        await drv.until_subscribed()
        for _ in range(150):
            clock.advance(0.01)
            await drv.send(bytes(rng.randrange(256) for _ in range(rng.randrange(0, 12))))
        await drv.beats(5)
    got_n = notifications(got.items)
    assert len(got_n) == len(drv.sent)
    n_err = sum(1 for n in got_n if n.error is not None)
    assert n_err == len(events(got.items, K.MALFORMED)) > 0
    assert not events(got.items, K.SIGNAL_LOST)


async def test_strap_with_heart_rate_but_no_rr(fake_bluez: FakeBlueZ) -> None:
    fake = fake_bluez.add_strap(name="Old HRM", address="00:22:D0:00:00:09", info=None)
    clock = ManualClock()
    async with open_strap("Old HRM", clock) as (_strap, got):
        drv = StrapDriver(fake, clock, got)
        await drv.until_subscribed()
        await drv.beats(30, with_rr=False, energy_kj=12)
    got_n = notifications(got.items)
    assert len(got_n) == len(drv.sent) > 10
    assert all(n.error is None and n.beats == () for n in got_n)
    assert all(n.measurement is not None and 40 < n.measurement.hr_bpm < 110 for n in got_n)
    assert all(n.measurement is not None and n.measurement.energy_expended_kj == 12 for n in got_n)
    said = [e for e in events(got.items, K.INFO) if "HRV unavailable" in e.detail]
    assert len(said) == 1
    (info_ev,) = [e for e in events(got.items, K.INFO) if e not in said]
    assert info_ev.info is not None
    assert info_ev.info.manufacturer is None


async def test_battery_notifications_become_events(fake_bluez: FakeBlueZ) -> None:
    fake = fake_bluez.add_strap()
    clock = ManualClock()
    async with open_strap(fake.spec.name, clock) as (_strap, got):
        drv = StrapDriver(fake, clock, got)
        await drv.until_subscribed()
        assert fake.set_battery(64)
        await got.wait_for(lambda items: len(events(items, K.BATTERY)) == 2)
        assert fake.set_battery(250)  # out of range: ignored, no event
        await drv.beats(3)
    assert [e.battery_pct for e in events(got.items, K.BATTERY)] == [87, 64]
    assert [e.detail for e in events(got.items, K.BATTERY)] == ["read", "notified"]


async def test_battery_without_notify_is_read_once(fake_bluez: FakeBlueZ) -> None:
    fake = fake_bluez.add_strap(battery_notify=False)
    clock = ManualClock()
    async with open_strap(fake.spec.name, clock) as (_strap, got):
        drv = StrapDriver(fake, clock, got)
        await drv.until_subscribed()
        assert not fake.set_battery(50)
        await drv.beats(3)
    assert [e.battery_pct for e in events(got.items, K.BATTERY)] == [87]


async def test_two_straps_at_once(fake_bluez: FakeBlueZ) -> None:
    a = fake_bluez.add_strap(name="Polar H10 AAAA", address="A0:9E:1A:00:00:0A")
    b = fake_bluez.add_strap(name="HRM-Pro 1234", address="F0:00:00:00:12:34", rssi=-75)
    clock = ManualClock()
    async with (
        open_strap("Polar H10 AAAA", clock) as (_sa, got_a),
        open_strap("F0:00:00:00:12:34", clock) as (_sb, got_b),
    ):
        da, db = StrapDriver(a, clock, got_a, seed=1), StrapDriver(b, clock, got_b, seed=2)
        await asyncio.gather(da.until_subscribed(), db.until_subscribed())
        for _ in range(20):
            await da.beats(1)
            await db.beats(1)
        a.drop()
        await got_a.wait_for(lambda items: bool(events(items, K.SIGNAL_LOST)))
        for _ in range(5):
            await db.beats(1)
        a.restore()
        # B keeps beating (and so moves the shared clock) while A comes back
        async with asyncio.timeout(10):
            while not a.subscribed:
                await db.beats(1)
                await asyncio.sleep(0.005)
        await da.beats(5)
    assert {n.device for n in notifications(got_a.items)} == {"Polar H10 AAAA"}
    assert {n.device for n in notifications(got_b.items)} == {"F0:00:00:00:12:34"}
    _check_stream(da.sent, notifications(got_a.items))
    _check_stream(db.sent, notifications(got_b.items))
    assert len(events(got_a.items, K.SIGNAL_RESTORED)) == 1
    assert not events(got_b.items, K.SIGNAL_LOST)


async def test_absent_strap_keeps_trying_quietly_and_exits_cleanly(
    fake_bluez: FakeBlueZ, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="biofeedback.devices.ble")
    clock = ManualClock()
    before = asyncio.all_tasks()
    async with open_strap("Nobody Here", clock, scan_timeout_s=0.05) as (_strap, got):
        # each scan runs in wall time: move strap time only while the strap waits on the clock
        # (its backoff), until two repeats were logged, however slowly the scans run
        async with asyncio.timeout(60):
            while sum("attempt" in r.message for r in caplog.records) < 2:
                await clock.wait_for_sleeper()
                clock.advance(5)
                await asyncio.sleep(0.002)
        # nothing was ever connected, so nothing was lost; the reason is told once, however
        # many attempts fail the same way
        assert [e.kind for e in got.items] == [K.ERROR]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "not found" in warnings[0].message
    assert sum("attempt" in r.message for r in caplog.records) >= 2
    await asyncio.sleep(0)
    assert not _leftover_tasks(before)


async def test_leaving_the_context_ends_readings_and_tasks(fake_bluez: FakeBlueZ) -> None:
    fake = fake_bluez.add_strap()
    clock = ManualClock()
    strap = BleStrap(fake.spec.name, clock=clock, scan_timeout_s=1.0)
    before = asyncio.all_tasks()
    async with strap:
        seen = []
        async for r in strap.readings():
            seen.append(r)
            break
        assert seen[0].kind == K.CONNECTED  # type: ignore[union-attr]
        async with asyncio.timeout(5):
            await fake.wait_subscribed()
    assert not fake.connected
    # readings queued before the exit are still delivered, then the iteration ends (no hang)
    rest = [r async for r in strap.readings()]
    assert [r.kind for r in rest] == [K.INFO, K.BATTERY]  # type: ignore[union-attr]
    await asyncio.sleep(0)
    assert not _leftover_tasks(before)
    # the strap can be opened again
    async with strap:
        pass


async def test_leaving_while_connecting_aborts_the_connection(fake_bluez: FakeBlueZ) -> None:
    fake = fake_bluez.add_strap(StrapSpec(connect_delay_s=0.3))
    clock = ManualClock()
    before = asyncio.all_tasks()
    async with BleStrap(fake.spec.name, clock=clock, scan_timeout_s=1.0):
        async with asyncio.timeout(5):
            while not fake.connect_pending:  # noqa: ASYNC110 - polls the fake's state
                await asyncio.sleep(0.005)
    async with asyncio.timeout(30):  # until the fake's Connect handler is done, however slow
        while fake.connect_pending:  # noqa: ASYNC110 - polls the fake's state
            await asyncio.sleep(0.005)
    assert not fake.connected  # the pending Connect was aborted, not left dangling
    assert not _leftover_tasks(before)


def test_bad_arguments_are_named() -> None:
    clock = ManualClock()
    with pytest.raises(DeviceError, match="empty"):
        BleStrap("  ", clock=clock)
    with pytest.raises(DeviceError, match="stale_after_s"):
        BleStrap("x", clock=clock, stale_after_s=0)
    with pytest.raises(DeviceError, match="reconnect_max_s"):
        BleStrap("x", clock=clock, reconnect_initial_s=5, reconnect_max_s=1)
    with pytest.raises(DeviceError, match="real time"):
        BleStrap("x", clock=ScaledClock(speed=20))


async def test_readings_before_enter_is_an_error() -> None:
    strap = BleStrap("x", clock=ManualClock())
    with pytest.raises(DeviceError, match="async with"):
        async for _ in strap.readings():
            pass


@pytest.mark.data
async def test_published_strap_payloads_survive_the_bluez_path(
    fake_bluez: FakeBlueZ, shared_data: Path
) -> None:
    """Real 0x2A37 bytes quoted from public posts (Polar H7/H10, Wahoo) through D-Bus and bleak."""
    with (shared_data / "ble-hrm-payloads" / "hrm_0x2a37_payloads.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) >= 20
    fake = fake_bluez.add_strap()
    clock = ManualClock()
    async with open_strap(fake.spec.name, clock) as (_s, got):
        drv = StrapDriver(fake, clock, got)
        await drv.until_subscribed()
        for row in rows:
            # 0.5 s apart: the 7 unparsable rows in a row stay under the 5 s staleness limit
            clock.advance(0.5)
            assert await drv.send(bytes.fromhex(row["payload_hex"]))
    got_n = notifications(got.items)
    assert len(got_n) == len(rows)
    for row, n in zip(rows, got_n, strict=True):
        assert n.payload == bytes.fromhex(row["payload_hex"])
        if row["spec_trailing_bytes"] != "0":
            # the Arduino rows carry a stale trailing byte: reported, never guessed at
            assert n.error is not None, row
            continue
        m = n.measurement
        assert m is not None, (row, n.error)
        assert m.hr_bpm == int(row["spec_hr_bpm"])
        assert m.contact_supported == (row["spec_contact_supported"] == "True")
        rr = tuple(int(v) for v in row["spec_rr_1024ths"].split(";") if v)
        assert m.rr_1024 == rr
        assert len(n.beats) == len(rr)
    n_bad = sum(1 for r in rows if r["spec_trailing_bytes"] != "0")
    assert len(events(got.items, K.MALFORMED)) == n_bad
    # 0x14 (Wahoo: contact supported, not detected) then 0x06/0x16 (H7: detected)
    kinds = [k for k in _kinds(got.items) if k.startswith("contact")]
    assert kinds == ["contact_lost", "contact_restored"]
