"""The simulated strap's raw ECG and ACC: real PMD bytes through the real reader, R peaks on the
simulated beats, premature beats shaped differently, breathing in the chest signal, movement
bursts, gaps in drops, and heart rate unchanged by turning raw data on."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from biofeedback.clock import ScaledClock
from biofeedback.devices.physiology import SimBeat, SimProfile
from biofeedback.devices.pmd_readings import (
    AccSamples,
    EcgSamples,
    PmdGap,
    PmdSource,
    PmdStatus,
    PmdStream,
)
from biofeedback.devices.simulated import SimulatedStrap, StrapEmulator


def _run(emu: StrapEmulator, seconds: float) -> tuple[list[object], list[SimBeat]]:
    """Step the emulator; returns (HR readings, all simulated beats from its model)."""
    readings: list[object] = list(emu.start())
    beats: list[SimBeat] = []
    original = emu.model.beats_until

    def spy(t: float) -> list[SimBeat]:
        out = original(t)
        beats.extend(out)
        return out

    emu.model.beats_until = spy  # type: ignore[method-assign]
    while emu.next_due() < emu.start_t + seconds:
        readings += emu.step(emu.next_due())
    return readings, beats


def _ecg(emu: StrapEmulator) -> tuple[np.ndarray, np.ndarray]:
    frames = [r for r in emu.pmd_pending if isinstance(r, EcgSamples)]
    return (
        np.array([t for f in frames for t in f.t]),
        np.array([v for f in frames for v in f.uv], dtype=float),
    )


def test_heart_rate_is_the_same_with_raw_data_on() -> None:
    plain, _ = _run(StrapEmulator("s", start_t=0.0, seed=4), 120)
    with_raw, _ = _run(StrapEmulator("s", start_t=0.0, seed=4, raw_data=True), 120)
    assert plain == with_raw


def test_ecg_r_peaks_sit_on_the_simulated_beats_and_pvcs_look_different() -> None:
    emu = StrapEmulator(
        "s", start_t=0.0, seed=2, raw_data=True, profile=SimProfile(ectopic_per_min=6.0)
    )
    _, beats = _run(emu, 300)
    t, uv = _ecg(emu)
    assert len(t) > 300 * 129
    period = 1 / 130
    pvc_heights, normal_heights, pvc_widths, normal_widths = [], [], [], []
    prev_rr = None
    for b in beats[2:-2]:
        if not t[0] + 0.5 < b.t < t[-1] - 0.5:
            continue
        near = (t > b.t - 0.05) & (t < b.t + 0.05)
        peak_t = t[near][np.argmax(uv[near])]
        # Times carry the frames' constant delivery delay (20 ms), as a strap's would.
        assert abs(peak_t - 0.02 - b.t) <= period
        window = (t > b.t - 0.15) & (t < b.t + 0.15)
        height = uv[near].max()
        width = int((uv[window] > height / 2).sum())
        premature = b.ectopic and prev_rr is not None and b.rr_s < 0.85 * prev_rr
        (pvc_heights if premature else normal_heights).append(height)
        (pvc_widths if premature else normal_widths).append(width)
        prev_rr = b.rr_s
    assert len(pvc_heights) >= 10
    # A ventricular beat: taller and about three times as wide at half height.
    assert np.median(pvc_heights) > 1.3 * np.median(normal_heights)
    assert np.median(pvc_widths) >= 2.5 * np.median(normal_widths)


def test_acc_carries_the_breathing_and_the_movement_bursts() -> None:
    emu = StrapEmulator("s", start_t=0.0, seed=3, raw_data=True, movement_every_s=60.0)
    emu.set_stimulus(exposure=0.0, paced_breathing_bpm=6.0)
    _run(emu, 240)
    frames = [r for r in emu.pmd_pending if isinstance(r, AccSamples)]
    t = np.array([x for f in frames for x in f.t])
    z = np.array([s[2] for f in frames for s in f.mg], dtype=float)
    still = np.array([not emu.pmd.in_movement(x) for x in t])  # type: ignore[union-attr]
    assert 190 < 1 / np.median(np.diff(t)) < 210
    # While still, z swings with the breathing (~20 mg peak to peak) at the paced 6/min, once
    # the client has followed the pacer (from 30 s on).
    quiet = still & (t > 30)
    zq = z[quiet] - z[quiet].mean()
    freqs = np.fft.rfftfreq(len(zq), d=1 / 200)
    spectrum = np.abs(np.fft.rfft(zq))
    band = (freqs > 0.05) & (freqs < 1.0)
    assert freqs[band][np.argmax(spectrum[band])] == pytest.approx(0.1, abs=0.02)
    assert 10 < np.percentile(zq, 95) - np.percentile(zq, 5) < 30
    # Movement bursts are far livelier than breathing.
    assert z[~still].std() > 5 * z[quiet].std()


def test_frames_in_a_link_drop_are_a_gap() -> None:
    profile = SimProfile(dropout_every_s=60.0, dropout_len_s=8.0)
    emu = StrapEmulator("s", start_t=0.0, seed=5, raw_data=True, profile=profile)
    _run(emu, 150)
    gaps = [r for r in emu.pmd_pending if isinstance(r, PmdGap)]
    assert {g.stream for g in gaps} == {PmdStream.ECG, PmdStream.ACC}
    ecg_gaps = [g for g in gaps if g.stream is PmdStream.ECG]
    assert len(ecg_gaps) == 2
    for g in ecg_gaps:
        assert 7.0 < g.gap_s < 9.0
        assert g.lost_samples == pytest.approx(g.gap_s * 130, abs=1)


async def test_simulated_strap_offers_raw_readings_beside_its_beats() -> None:
    clock = ScaledClock(speed=200.0, start=0.0)
    strap = SimulatedStrap(clock=clock, raw_data=True)
    assert isinstance(strap, PmdSource)
    raw: list[object] = []
    async with strap:

        async def read_raw() -> None:
            async for r in strap.pmd_readings():
                raw.append(r)

        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(read_raw())
            async for r in strap.readings():
                if r.t > 20:
                    break
            await asyncio.sleep(0)
            task.cancel()
    statuses = [r for r in raw if isinstance(r, PmdStatus)]
    assert [s.stream for s in statuses] == [PmdStream.ECG, PmdStream.ACC]
    ecg = [r for r in raw if isinstance(r, EcgSamples)]
    assert sum(len(e.uv) for e in ecg) > 15 * 130
    assert all(len(e.payload) == 229 for e in ecg)


async def test_without_raw_data_the_simulated_strap_says_so() -> None:
    clock = ScaledClock(speed=200.0, start=0.0)
    strap = SimulatedStrap(clock=clock)
    async with strap:
        gen = strap.pmd_readings()
        first = await anext(gen)
        await gen.aclose()
    assert isinstance(first, PmdStatus)
    assert not first.ok
