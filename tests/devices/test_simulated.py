"""The simulated strap: real 0x2A37 bytes, beats matching the model, events in order, clean stop."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from biofeedback.clock import ScaledClock
from biofeedback.devices.hrm import parse_heart_rate_measurement
from biofeedback.devices.physiology import Physiology
from biofeedback.devices.readings import (
    Beat,
    DeviceEvent,
    DeviceEventKind,
    DeviceReading,
    Notification,
)
from biofeedback.devices.simulated import SimProfile, SimulatedStrap, StrapEmulator
from biofeedback.errors import ConfigError, DeviceError, ParseError


def _emulate(
    seconds: float, *, seed: int = 1, profile: SimProfile | None = None
) -> list[DeviceReading]:
    emu = StrapEmulator("Sim", start_t=1000.0, seed=seed, profile=profile)
    out = emu.start()
    while (due := emu.next_due()) <= 1000.0 + seconds:
        out.extend(emu.step(due))
    return out


def _notifications(rs: list[DeviceReading]) -> list[Notification]:
    return [r for r in rs if isinstance(r, Notification)]


def _events(rs: list[DeviceReading]) -> list[DeviceEvent]:
    return [r for r in rs if isinstance(r, DeviceEvent)]


def test_starts_with_info_connected_battery() -> None:
    rs = _emulate(5.0)
    first = _events(rs)[:3]
    assert [e.kind for e in first] == [
        DeviceEventKind.INFO,
        DeviceEventKind.CONNECTED,
        DeviceEventKind.BATTERY,
    ]
    info = first[0].info
    assert info is not None
    assert info.name == "Sim"
    assert info.address.startswith("SIM:")
    assert (info.manufacturer, info.model) == ("biofeedback", "SimStrap")
    assert info.firmware
    assert first[2].battery_pct == 87


def test_notifications_are_real_bytes_whose_rr_match_the_model() -> None:
    rs = _emulate(300.0, seed=4)
    notes = _notifications(rs)
    assert 280 <= len(notes) <= 301  # about one per second, a few slip to the next slot
    rr_from_bytes: list[int] = []
    counts: set[int] = set()
    for n in notes:
        m = parse_heart_rate_measurement(n.payload)  # the real parser accepts every payload
        assert n.measurement == m
        assert n.error is None
        assert m.contact == True  # noqa: E712 - contact is reported and detected
        assert 50 <= m.hr_bpm <= 100
        assert [b.rr_ms for b in n.beats] == list(m.rr_ms)
        rr_from_bytes.extend(m.rr_1024)
        counts.add(len(m.rr_1024))
    assert {1, 2, 3} <= counts  # Polar-like packing; 3 when a notification slipped
    assert max(counts) <= 4
    model = Physiology(start_t=1000.0, seed=4)
    expected = [int(b.rr_s * 1024) for b in model.beats_until(notes[-1].t)]
    assert rr_from_bytes == expected  # never an invented or lost beat


def test_slow_heart_gives_notifications_without_rr() -> None:
    notes = _notifications(_emulate(120.0, profile=SimProfile(resting_hr_bpm=50.0)))
    counts = {len(n.beats) for n in notes}
    assert {0, 1, 2} <= counts
    for n in notes:
        if not n.beats:
            assert n.payload[0] & 0x10 == 0  # no RR flag, HR only
            assert n.measurement is not None
            assert 40 <= n.measurement.hr_bpm <= 70


def test_times_are_monotonic_and_beats_precede_their_notification() -> None:
    rs = _emulate(300.0, seed=2)
    ts = [r.t for r in rs]
    assert ts == sorted(ts)
    beats: list[Beat] = [b for n in _notifications(rs) for b in n.beats]
    bt = [b.t for b in beats]
    assert all(b > a for a, b in itertools.pairwise(bt))
    for n in _notifications(rs):
        assert all(b.t <= n.t for b in n.beats)


def test_hr_field_follows_the_rr_average() -> None:
    notes = _notifications(_emulate(120.0, seed=5))
    beats = [b for n in notes for b in n.beats]
    for n in notes[10:]:
        assert n.measurement is not None
        recent = [b.rr_ms for b in beats if n.t - 4.0 <= b.t <= n.t]
        rr_hr = 60000.0 * len(recent) / sum(recent)
        # beat times are reconstructed from the receive time, so windows differ by a beat
        assert abs(n.measurement.hr_bpm - rr_hr) <= 6.0


def test_closed_loop_exposure_then_paced_breathing() -> None:
    emu = StrapEmulator("Sim", start_t=0.0, seed=1)
    emu.start()
    hr_by_t: dict[float, int] = {}

    def run(until: float) -> None:
        while (due := emu.next_due()) <= until:
            for r in emu.step(due):
                if isinstance(r, Notification) and r.measurement is not None:
                    hr_by_t[r.t] = r.measurement.hr_bpm

    def mean_hr(t0: float, t1: float) -> float:
        v = [hr for t, hr in hr_by_t.items() if t0 <= t < t1]
        return sum(v) / len(v)

    run(30.0)
    emu.set_stimulus(exposure=0.9, paced_breathing_bpm=None)
    run(90.0)
    emu.set_stimulus(exposure=0.0, paced_breathing_bpm=6.0)
    run(150.0)
    assert mean_hr(60.0, 90.0) > mean_hr(5.0, 30.0) + 12
    assert mean_hr(130.0, 150.0) < mean_hr(60.0, 90.0) - 10


def test_dropouts_are_silent_gaps_with_lost_and_restored_events() -> None:
    profile = SimProfile(dropout_every_s=60.0, dropout_len_s=10.0)
    rs = _emulate(200.0, profile=profile)
    ev = [
        e
        for e in _events(rs)
        if e.kind in {DeviceEventKind.SIGNAL_LOST, DeviceEventKind.SIGNAL_RESTORED}
    ]
    assert [e.kind for e in ev] == [
        DeviceEventKind.SIGNAL_LOST,
        DeviceEventKind.SIGNAL_RESTORED,
    ] * 3
    for lost, restored in zip(ev[::2], ev[1::2], strict=True):
        assert (lost.t - 1000.0) % 60.0 <= 1.1  # the drop starts on schedule
        silent = [n for n in _notifications(rs) if lost.t <= n.t < restored.t]
        assert silent == []
        assert restored.gap_s is not None
        assert 10.0 <= restored.gap_s <= 12.5
        # the first beats after the reconnect start after the drop ended, timing restarted
        after = [n for n in _notifications(rs) if n.t >= restored.t]
        first_beats = [b for n in after[:3] for b in n.beats]
        assert first_beats
        assert all(b.t > restored.t - 1.5 for b in first_beats)


def test_contact_loss_events_and_flagged_beats() -> None:
    profile = SimProfile(contact_loss_every_s=60.0, contact_loss_len_s=6.0)
    rs = _emulate(200.0, profile=profile)
    kinds = [
        e.kind
        for e in _events(rs)
        if e.kind in {DeviceEventKind.CONTACT_LOST, DeviceEventKind.CONTACT_RESTORED}
    ]
    # windows start half a period in (90 s, 150 s), so they do not coincide with link drops
    assert kinds == [DeviceEventKind.CONTACT_LOST, DeviceEventKind.CONTACT_RESTORED] * 2
    no_contact = [n for n in _notifications(rs) if n.measurement and n.measurement.contact is False]
    assert 10 <= len(no_contact) <= 14
    assert all(b.contact is False for n in no_contact for b in n.beats)
    for n in no_contact:
        assert n.payload[0] & 0x06 == 0x04  # supported, not detected


def test_hr_only_strap_sends_no_rr() -> None:
    notes = _notifications(_emulate(60.0, profile=SimProfile(hr_only=True)))
    assert len(notes) >= 55
    for n in notes:
        assert n.payload[0] & 0x10 == 0
        assert n.beats == ()
        assert n.measurement is not None
        assert 50 <= n.measurement.hr_bpm <= 100


def test_battery_drains_slowly() -> None:
    profile = SimProfile(battery_start_pct=50, battery_drain_pct_per_h=120.0)  # 2 % per minute
    levels = [
        e.battery_pct for e in _events(_emulate(180.0, profile=profile)) if e.kind == "battery"
    ]
    assert levels[0] == 50
    assert levels == sorted(levels, reverse=True)
    assert levels[-1] in (44, 45)


def test_set_stimulus_rejects_nonsense() -> None:
    strap = SimulatedStrap(clock=ScaledClock(speed=10.0))
    with pytest.raises(ConfigError, match="exposure"):
        strap.set_stimulus(exposure=2.0, paced_breathing_bpm=None)


async def test_readings_outside_the_context_is_an_error() -> None:
    strap = SimulatedStrap(clock=ScaledClock(speed=10.0))
    with pytest.raises(DeviceError, match="async with"):
        async for _ in strap.readings():
            pass


async def test_async_strap_at_high_speed_matches_the_emulator() -> None:
    clock = ScaledClock(speed=500.0, start=5000.0)
    got: list[DeviceReading] = []
    async with SimulatedStrap("Sim", clock=clock, seed=9) as strap:
        async for r in strap.readings():
            got.append(r)
            if r.t >= 5000.0 + 60.0:
                break
    assert [e.kind for e in _events(got)[:3]] == ["info", "connected", "battery"]
    assert len(_notifications(got)) >= 55
    # the async strap is the emulator on a clock: same seed, same bytes
    emu = StrapEmulator("Sim", start_t=got[0].t, seed=9)
    ref = emu.start()
    while len(ref) < len(got):
        ref.extend(emu.step(emu.next_due()))
    assert [getattr(r, "payload", None) for r in got] == [
        getattr(r, "payload", None) for r in ref[: len(got)]
    ]
    assert [r.t for r in got] == [r.t for r in ref[: len(got)]]
    ts = [r.t for r in got]
    assert ts == sorted(ts)
    assert clock.now() >= ts[-1]


async def test_cancellation_ends_cleanly() -> None:
    clock = ScaledClock(speed=50.0)
    seen: list[DeviceReading] = []

    async def consume(strap: SimulatedStrap) -> None:
        async with strap:
            async for r in strap.readings():
                seen.append(r)

    strap = SimulatedStrap(clock=clock)
    task = asyncio.create_task(consume(strap))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(seen) >= 3
    assert strap.emulator is not None
    # leaving the context stops the stream: a new iteration after exit refuses politely
    with pytest.raises(DeviceError):
        async for _ in strap.readings():
            pass


async def test_stimulus_set_before_entering_applies() -> None:
    strap = SimulatedStrap(clock=ScaledClock(speed=1000.0), seed=1)
    strap.set_stimulus(exposure=1.0, paced_breathing_bpm=None)
    async with strap:
        assert strap.emulator is not None
        strap.emulator.model.beats_until(strap.emulator.start_t + 60.0)
        assert strap.emulator.model.arousal > 0.9


async def test_taskgroup_consumer_stops_when_context_exits() -> None:
    clock = ScaledClock(speed=200.0)
    strap = SimulatedStrap(clock=clock)
    count = 0
    async with strap, asyncio.TaskGroup() as tg:

        async def reader() -> None:
            nonlocal count
            async for _ in strap.readings():
                count += 1
                if count == 10:
                    return

        tg.create_task(reader())
    assert count == 10


def test_reconnect_looks_like_the_ble_strap() -> None:
    """After a drop: CONNECTED, BATTERY (re-read), SIGNAL_RESTORED, then the notification."""
    rs = _emulate(80.0, profile=SimProfile(dropout_every_s=60.0, dropout_len_s=5.0))
    i = next(k for k, r in enumerate(rs) if getattr(r, "kind", None) == "signal_restored")
    kinds = [getattr(r, "kind", "notification") for r in rs[i - 2 : i + 2]]
    assert kinds == ["connected", "battery", "signal_restored", "notification"]
    lost = next(r for r in rs if getattr(r, "kind", None) == "signal_lost")
    assert isinstance(lost, DeviceEvent)
    assert "last data at" in lost.detail


def test_hr_only_strap_says_hrv_is_unavailable_once() -> None:
    rs = _emulate(60.0, profile=SimProfile(hr_only=True))
    notices = [e for e in _events(rs) if e.kind == "info" and "HRV unavailable" in e.detail]
    assert len(notices) == 1
    assert notices[0].info is not None
    assert notices[0].t == _notifications(rs)[9].t  # after the 10th notification without RR


def test_malformed_notifications_come_with_an_event_and_lose_only_their_beats() -> None:
    rs = _emulate(120.0, seed=6, profile=SimProfile(malformed_every_s=30.0))
    bad = [n for n in _notifications(rs) if n.error is not None]
    assert 3 <= len(bad) <= 4  # one per 30 s
    for n in bad:
        assert n.measurement is None
        assert n.beats == ()
        k = rs.index(n)
        ev = rs[k + 1]
        assert isinstance(ev, DeviceEvent)
        assert ev.kind is DeviceEventKind.MALFORMED
        assert n.payload.hex() in ev.detail
        with pytest.raises(ParseError):
            parse_heart_rate_measurement(n.payload)
    good = [n for n in _notifications(rs) if n.error is None]
    assert len(good) >= 110


def test_energy_expended_and_16_bit_hr_options() -> None:
    profile = SimProfile(energy_expended=True, hr_uint16=True)
    notes = _notifications(_emulate(60.0, profile=profile))
    assert all(n.payload[0] & 0x01 for n in notes)  # uint16 HR
    energies = [n.measurement.energy_expended_kj for n in notes if n.measurement]
    present = [e for e in energies if e is not None]
    assert 5 <= len(present) <= 7  # every 10th notification
    assert present == sorted(present)
    assert present[-1] >= 3  # ~0.08 kJ/s for a minute


@pytest.mark.slow  # the first run imports neurokit2 (artifact correction): seconds
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_closed_loop_with_the_signal_pipeline_pauses_and_recovers(seed: int) -> None:
    """The demo's story through the real parser and signal pipeline: calibrate, expose at 0.9,
    pause when arousal stays above 60 for 5 s, breathe at 6/min, recover below 40 for 15 s
    (the thresholds of config/protocols/demo.toml)."""
    from biofeedback.signal import SignalConfig, SignalPipeline

    emu = StrapEmulator("Sim", start_t=0.0, seed=seed)
    emu.start()
    pipe = SignalPipeline(SignalConfig(calibration_s=90.0))
    pipe.start_calibration(0.0)
    arousal: float | None = None
    phase, since, t_exposed, t_paused, t_recovered = "calibrating", None, 0.0, None, None
    while (t := emu.next_due()) < 600.0 and t_recovered is None:
        for r in emu.step(t):
            if isinstance(r, Notification):
                for b in r.beats:
                    arousal = pipe.push_rr(b.t, b.rr_ms, b.contact).arousal.value
        if phase == "calibrating" and t >= 90.0:
            pipe.finish_calibration(t, "client")
            phase, t_exposed = "exposing", t
            emu.set_stimulus(exposure=0.9, paced_breathing_bpm=None)
        elif phase == "exposing":
            since = (since or t) if arousal is not None and arousal > 60 else None
            if since is not None and t - since >= 5.0:
                phase, since, t_paused = "paused", None, t
                emu.set_stimulus(exposure=0.0, paced_breathing_bpm=6.0)
        elif phase == "paused":
            since = (since or t) if arousal is not None and arousal < 40 else None
            if since is not None and t - since >= 15.0:
                t_recovered = t
    assert t_paused is not None, "arousal never crossed 60 under exposure"
    assert 15.0 <= t_paused - t_exposed <= 50.0
    assert t_recovered is not None, "arousal never settled below 40 with paced breathing"
    assert t_recovered - t_paused <= 100.0


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    hr=st.floats(45.0, 110.0),
    exposure=st.floats(0.0, 1.0),
    paced=st.none() | st.floats(4.0, 20.0),
    dropout=st.none() | st.floats(10.0, 40.0),
    contact=st.none() | st.floats(10.0, 40.0),
    hr_only=st.booleans(),
)
def test_any_profile_gives_parseable_ordered_readings(
    seed: int,
    hr: float,
    exposure: float,
    paced: float | None,
    dropout: float | None,
    contact: float | None,
    hr_only: bool,
) -> None:
    profile = SimProfile(
        resting_hr_bpm=hr,
        dropout_every_s=dropout,
        dropout_len_s=4.0,
        contact_loss_every_s=contact,
        hr_only=hr_only,
    )
    emu = StrapEmulator("Sim", start_t=0.0, seed=seed, profile=profile)
    emu.set_stimulus(exposure=exposure, paced_breathing_bpm=paced)
    rs = emu.start()
    while (due := emu.next_due()) <= 90.0:
        rs.extend(emu.step(due))
    ts = [r.t for r in rs]
    assert ts == sorted(ts)
    beat_t = [b.t for n in _notifications(rs) for b in n.beats]
    assert all(b > a for a, b in itertools.pairwise(beat_t))
    for n in _notifications(rs):
        assert n.error is None
        assert parse_heart_rate_measurement(n.payload) == n.measurement
    kinds = [e.kind for e in _events(rs)]
    # lost/restored and contact lost/restored strictly alternate
    link = [k for k in kinds if k in {"signal_lost", "signal_restored"}]
    assert link == ["signal_lost", "signal_restored"] * (len(link) // 2) + (
        ["signal_lost"] if len(link) % 2 else []
    )
    skin = [k for k in kinds if k in {"contact_lost", "contact_restored"}]
    assert skin == ["contact_lost", "contact_restored"] * (len(skin) // 2) + (
        ["contact_lost"] if len(skin) % 2 else []
    )


async def test_leaving_the_context_wakes_a_waiting_reader() -> None:
    # next notification ~0.8 s of session time away: about 15 minutes of wall time at this speed,
    # so a reader that ends at all within the deadline below was woken
    strap = SimulatedStrap(clock=ScaledClock(speed=1e-3))
    got: list[DeviceReading] = []
    waiting = asyncio.Event()

    async def reader() -> None:
        async for r in strap.readings():
            got.append(r)
            if len(got) == 3:  # INFO, CONNECTED, BATTERY; next it waits for a notification
                waiting.set()

    async with strap:
        task = asyncio.create_task(reader())
        async with asyncio.timeout(30):
            await waiting.wait()
            while not strap._sleepers:  # noqa: ASYNC110 - the reader sleeps until the next due
                await asyncio.sleep(0.001)
    await asyncio.wait_for(task, timeout=30)  # woken, not left sleeping until then
    assert [getattr(r, "kind", None) for r in got] == ["info", "connected", "battery"]
    assert task.done()
    assert not task.cancelled()
