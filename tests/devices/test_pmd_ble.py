"""BleStrap's raw ECG / ACC (PMD) over bleak's real BlueZ backend and the emulated H10: features,
settings, starts (incl. the capture's refusals and the MTU retry), real ECG frames, ACC, gaps and
cut frames, stop on exit, and straps without PMD or with a silent control point."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from biofeedback.devices import pmd
from biofeedback.devices.ble import BleStrap
from biofeedback.devices.pmd_client import PmdConfig
from biofeedback.devices.pmd_readings import (
    AccSamples,
    EcgSamples,
    PmdGap,
    PmdMalformed,
    PmdSource,
    PmdStatus,
    PmdStream,
)
from tests.devices.fake_bluez import (
    Collector,
    FakeBlueZ,
    FakeStrap,
    ManualClock,
    PmdSpec,
    StrapDriver,
    StrapSpec,
    notifications,
)
from tests.devices.pmd_frames import (
    H10_START_REFUSED,
    h10_ecg_frames,
    h10_ecg_record,
)

pytestmark = [pytest.mark.dbus]

NAME = "Polar H10 A1B2C3D4"


@contextlib.asynccontextmanager
async def _open(
    clock: ManualClock, config: PmdConfig | None = None, **kw: Any
) -> AsyncIterator[tuple[BleStrap, Collector, Collector]]:
    strap = BleStrap(
        NAME,
        clock=clock,
        scan_timeout_s=0.2,
        connect_timeout_s=5.0,
        rng=random.Random(0),
        pmd=config if config is not None else PmdConfig(mtu_retry_delay_s=0.01),
        **kw,
    )
    rr, raw = Collector(), Collector()
    async with strap, asyncio.TaskGroup() as tg:
        t1 = tg.create_task(rr.consume(strap.readings()))
        t2 = tg.create_task(raw.consume(strap.pmd_readings()))
        yield strap, rr, raw
        t1.cancel()
        t2.cancel()


def _of(items: list[Any], kind: type) -> list[Any]:
    return [i for i in items if isinstance(i, kind)]


def _streaming(items: list[Any], stream: PmdStream) -> bool:
    return any(
        isinstance(i, PmdStatus) and i.stream is stream and "streaming" in i.detail for i in items
    )


async def _started(raw: Collector, *streams: PmdStream) -> None:
    await raw.wait_for(lambda items: all(_streaming(items, s) for s in streams))


def _h10(fake_bluez: FakeBlueZ, **pmd_kw: Any) -> FakeStrap:
    return fake_bluez.add_strap(StrapSpec(name=NAME, pmd=PmdSpec(**pmd_kw)))


async def test_h10_streams_real_ecg_and_acc_beside_rr(
    fake_bluez: FakeBlueZ, shared_data: Path
) -> None:
    fake = _h10(fake_bluez)
    clock = ManualClock()
    async with _open(clock) as (strap, rr, raw):
        assert isinstance(strap, PmdSource)
        driver = StrapDriver(fake, clock, rr)
        await driver.until_subscribed()
        await _started(raw, PmdStream.ECG, PmdStream.ACC)
        # The exact requests a Polar app sends: features read, settings, then start.
        assert fake.pmd_writes == [
            bytes.fromhex("01 00"),
            bytes.fromhex("02 00 00 01 82 00 01 01 0e 00"),
            bytes.fromhex("01 02"),
            bytes.fromhex("02 02 00 01 c8 00 01 01 10 00 02 01 08 00"),
        ]
        assert set(fake.pmd_streaming) == {0, 2}
        assert fake.reads[pmd.PMD_CONTROL_UUID] == 1
        frames = h10_ecg_frames(shared_data, count=30)
        for f in frames:
            clock.advance(0.05)  # (strap time; more would let the heart-rate watchdog fire)
            assert fake.pmd_notify(f)
        acc = [(k, -k, 1000 + k) for k in range(36)]
        assert fake.pmd_notify(pmd.encode_acc_raw(5_000_000_000, acc))
        await driver.beats(5.0)
        await raw.wait_for(lambda items: len(_of(items, EcgSamples)) == 30)
        await raw.wait_for(lambda items: len(_of(items, AccSamples)) == 1)
        ecg = _of(raw.items, EcgSamples)
        record = h10_ecg_record(shared_data)
        assert [uv for e in ecg for uv in e.uv] == [uv for _, uv in record[: 30 * 73]]
        assert [e.payload for e in ecg] == frames
        times = [t for e in ecg for t in e.t]
        assert times == sorted(times)
        assert len(set(times)) == len(times)
        assert not _of(raw.items, PmdGap)
        assert _of(raw.items, AccSamples)[0].mg == tuple(acc)
        # Heart rate went on as always.
        assert len(notifications(rr.items)) >= 4
        assert all(n.error is None for n in notifications(rr.items))
    # Leaving the session stopped both streams before the link closed.
    assert fake.pmd_writes[-2:] == [bytes.fromhex("03 00"), bytes.fromhex("03 02")]
    assert not fake.connected


async def test_mtu_refusals_are_retried_until_the_start_is_accepted(
    fake_bluez: FakeBlueZ,
) -> None:
    fake = _h10(fake_bluez, mtu_refusals=2)
    clock = ManualClock()
    async with _open(clock, PmdConfig(acc_rate_hz=None, mtu_retry_delay_s=0.01)) as (_s, rr, raw):
        await StrapDriver(fake, clock, rr).until_subscribed()
        await _started(raw, PmdStream.ECG)
        retries = [
            i.detail for i in _of(raw.items, PmdStatus) if "MTU too small, retrying" in i.detail
        ]
        assert len(retries) == 2
        starts = [w for w in fake.pmd_writes if w[0] == 0x02]
        assert len(starts) == 3


async def test_mtu_refused_every_time_gives_up_and_says_so(fake_bluez: FakeBlueZ) -> None:
    fake = _h10(fake_bluez, mtu_refusals=99)
    clock = ManualClock()
    cfg = PmdConfig(acc_rate_hz=None, mtu_retries=2, mtu_retry_delay_s=0.01)
    async with _open(clock, cfg) as (_s, rr, raw):
        driver = StrapDriver(fake, clock, rr)
        await driver.until_subscribed()
        await raw.wait_for(lambda items: any(isinstance(i, PmdStatus) and not i.ok for i in items))
        failed = [i for i in _of(raw.items, PmdStatus) if not i.ok]
        assert "INVALID_MTU (code 10)" in failed[0].detail
        assert len([w for w in fake.pmd_writes if w[0] == 0x02]) == 3
        await driver.beats(3.0)  # RR unaffected
        assert notifications(rr.items)


async def test_a_refused_start_is_reported_and_the_other_stream_still_starts(
    fake_bluez: FakeBlueZ,
) -> None:
    fake = _h10(fake_bluez, refuse={0: H10_START_REFUSED})
    clock = ManualClock()
    async with _open(clock) as (_s, rr, raw):
        driver = StrapDriver(fake, clock, rr)
        await driver.until_subscribed()
        await _started(raw, PmdStream.ACC)
        refused = [i for i in _of(raw.items, PmdStatus) if not i.ok]
        assert len(refused) == 1
        assert refused[0].stream is PmdStream.ECG
        assert "INVALID_PARAMETER (code 5)" in refused[0].detail
        assert set(fake.pmd_streaming) == {2}
        await driver.beats(3.0)
        assert notifications(rr.items)


async def test_unoffered_acc_rate_uses_the_nearest_offered(fake_bluez: FakeBlueZ) -> None:
    fake = _h10(fake_bluez)
    clock = ManualClock()
    cfg = PmdConfig(ecg=False, acc_rate_hz=60, acc_range_g=3, mtu_retry_delay_s=0.01)
    async with _open(clock, cfg) as (_s, rr, raw):
        await StrapDriver(fake, clock, rr).until_subscribed()
        await _started(raw, PmdStream.ACC)
        status = next(i for i in _of(raw.items, PmdStatus) if _streaming([i], PmdStream.ACC))
        assert "sample_rate 60 not offered, using 50" in status.detail
        assert "range 3 not offered, using 4" in status.detail
        assert fake.pmd_streaming[2] == bytes.fromhex("02 02 00 01 32 00 01 01 10 00 02 01 04 00")


async def test_lost_and_cut_frames_are_gaps_and_kept_bytes(
    fake_bluez: FakeBlueZ, shared_data: Path
) -> None:
    fake = _h10(fake_bluez)
    clock = ManualClock()
    async with _open(clock, PmdConfig(acc_rate_hz=None, mtu_retry_delay_s=0.01)) as (_s, rr, raw):
        await StrapDriver(fake, clock, rr).until_subscribed()
        await _started(raw, PmdStream.ECG)
        frames = h10_ecg_frames(shared_data, count=10)
        for i, f in enumerate(frames):
            clock.advance(0.05)
            if i == 3:
                continue  # lost over the air
            if i == 6:
                f = f[:101]  # cut inside a sample
            assert fake.pmd_notify(f)
        await raw.wait_for(lambda items: len(_of(items, EcgSamples)) == 8)
        await raw.wait_for(lambda items: len(_of(items, PmdGap)) == 2)
        gaps = _of(raw.items, PmdGap)
        assert [g.lost_samples for g in gaps] == [73, 73]
        malformed = _of(raw.items, PmdMalformed)
        assert len(malformed) == 1
        assert malformed[0].payload == frames[6][:101]
        assert "not a positive multiple of 3" in malformed[0].error


async def test_a_strap_without_pmd_says_so_once_and_streams_rr(fake_bluez: FakeBlueZ) -> None:
    fake = fake_bluez.add_strap(StrapSpec(name=NAME))
    clock = ManualClock()
    async with _open(clock) as (_s, rr, raw):
        driver = StrapDriver(fake, clock, rr)
        await driver.until_subscribed()
        await driver.beats(5.0)
        await raw.wait_for(lambda items: len(items) >= 1)
        assert [(i.ok, i.detail) for i in raw.items] == [(False, "no PMD service on this strap")]
        assert all(n.error is None for n in notifications(rr.items))
        assert len(notifications(rr.items)) == len(driver.sent)


async def test_a_silent_control_point_times_out_without_touching_rr(
    fake_bluez: FakeBlueZ,
) -> None:
    fake = _h10(fake_bluez, answer=False)
    clock = ManualClock()
    cfg = PmdConfig(acc_rate_hz=None, response_timeout_s=0.3)
    async with _open(clock, cfg) as (_s, rr, raw):
        driver = StrapDriver(fake, clock, rr)
        await driver.until_subscribed()
        await raw.wait_for(lambda items: any(not getattr(i, "ok", True) for i in items))
        failed = [i for i in _of(raw.items, PmdStatus) if not i.ok]
        assert "did not answer the PMD GET_SETTINGS ECG request within 0.3 s" in failed[0].detail
        await driver.beats(3.0)
        assert notifications(rr.items)


async def test_without_pmd_config_nothing_pmd_happens(fake_bluez: FakeBlueZ) -> None:
    fake = _h10(fake_bluez)
    clock = ManualClock()
    strap = BleStrap(NAME, clock=clock, scan_timeout_s=0.2, rng=random.Random(0))
    rr = Collector()
    async with strap, asyncio.TaskGroup() as tg:
        task = tg.create_task(rr.consume(strap.readings()))
        driver = StrapDriver(fake, clock, rr)
        await driver.until_subscribed()
        await driver.beats(3.0)
        task.cancel()
    assert fake.pmd_writes == []
    assert pmd.PMD_CONTROL_UUID not in fake.reads


async def test_after_a_drop_the_streams_restart_and_the_outage_is_a_gap(
    fake_bluez: FakeBlueZ, shared_data: Path
) -> None:
    fake = _h10(fake_bluez)
    clock = ManualClock()
    async with _open(clock, PmdConfig(acc_rate_hz=None, mtu_retry_delay_s=0.01)) as (_s, rr, raw):
        driver = StrapDriver(fake, clock, rr)
        await driver.until_subscribed()
        await _started(raw, PmdStream.ECG)
        frames = h10_ecg_frames(shared_data, count=12)
        for f in frames[:4]:
            assert fake.pmd_notify(f)
        await raw.wait_for(lambda items: len(_of(items, EcgSamples)) == 4)
        await driver.outage(3.0)  # frames 4..7 are taken while the strap is away
        await driver.until_subscribed()
        await raw.wait_for(
            lambda items: sum(_streaming([i], PmdStream.ECG) for i in items) == 2, within_s=10
        )
        for f in frames[8:]:
            assert fake.pmd_notify(f)
        await raw.wait_for(lambda items: len(_of(items, EcgSamples)) == 8)
        (gap,) = _of(raw.items, PmdGap)
        assert gap.lost_samples == 4 * 73
        assert gap.gap_s == pytest.approx(4 * 73 / 130.15, abs=0.01)
        # the ECG start was asked for again on the new link
        assert [w for w in fake.pmd_writes if w[0] == 0x02] == [
            bytes.fromhex("02 00 00 01 82 00 01 01 0e 00")
        ] * 2


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ({"garbage": bytes.fromhex("f0 01")}, "PMD control response of 2 byte(s)"),
        ({"garbage": bytes.fromhex("0f 05 00 00")}, "starts with 0x0f, expected 0xf0"),
        ({"features": bytes.fromhex("00")}, "PMD feature read of 1 byte(s)"),
        (
            {"ecg_settings": bytes.fromhex("f0 01 00 00 00 07 01 00")},
            "unknown setting type 0x07",
        ),
    ],
)
async def test_a_strap_answering_nonsense_is_reported_and_rr_goes_on(
    fake_bluez: FakeBlueZ, spec: dict[str, Any], why: str
) -> None:
    fake = _h10(fake_bluez, **spec)
    clock = ManualClock()
    async with _open(clock, PmdConfig(acc_rate_hz=None)) as (_s, rr, raw):
        driver = StrapDriver(fake, clock, rr)
        await driver.until_subscribed()
        await raw.wait_for(lambda items: any(not getattr(i, "ok", True) for i in items))
        failed = [i for i in _of(raw.items, PmdStatus) if not i.ok]
        assert why in failed[0].detail
        await driver.beats(3.0)
        assert notifications(rr.items)
        assert all(n.error is None for n in notifications(rr.items))
