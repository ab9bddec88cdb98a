"""The live ECG, movement and breathing stages (service/chest_signals.py) on a simulated H10.

A real SessionCore takes the verdicts and movement reports as inputs (as the runner does), so
these check what reaches the RR pipeline, what is published (schema, rate), that the inputs are
recorded and read back, and that a strap without raw data changes nothing.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
from typing import Any

import pytest

from biofeedback.clock import ScaledClock
from biofeedback.devices.pmd_readings import AccSamples, EcgSamples
from biofeedback.devices.readings import Notification
from biofeedback.devices.simulated import SimulatedStrap
from biofeedback.exposure import ExposureProtocol
from biofeedback.exposure.messages import (
    BreathingPattern,
    EcgVerdictReport,
    GroundingTechnique,
    Guidance,
    MovementReport,
)
from biofeedback.recording.inputs import InputDecoder, encode_input
from biofeedback.recording.schema import INPUTS
from biofeedback.service import payloads
from biofeedback.service.chest_signals import (
    ChestSignals,
    ChestSignalsDevice,
    acc_rate_hz,
    with_chest_signals,
)
from biofeedback.service.core import SessionCore
from biofeedback.service.topics import Topic
from biofeedback.signal import SignalConfig
from biofeedback.signal.ecg_reconcile import EcgVerdict
from tests.exposure.helpers import protocol as make_protocol


def _protocol() -> ExposureProtocol:
    return dataclasses.replace(make_protocol(), calibration_s=120.0)


class _Pub:
    def __init__(self) -> None:
        self.sent: list[tuple[Topic, dict[str, Any]]] = []

    def publish_kind(self, client_id: str, kind: Topic, payload: dict[str, Any]) -> None:
        self.sent.append((kind, payload))

    def of(self, kind: Topic) -> list[dict[str, Any]]:
        return [p for k, p in self.sent if k is kind]


async def _run(
    seconds: float,
    *,
    movement_every_s: float | None = None,
    guidance: Guidance | None = None,
    seed: int = 3,
) -> tuple[SessionCore, _Pub, list[Any], dict[str, int], float]:
    clock = ScaledClock(speed=200.0, start=1_700_000_000.0)
    core = SessionCore(
        client_id="c1",
        protocol=_protocol(),
        signal_config=SignalConfig(),
        start_t=clock.now(),
    )
    pub = _Pub()
    items: list[Any] = []
    accepted = {"verdicts": 0, "late": 0}

    def submit(item: EcgVerdictReport | MovementReport) -> None:
        if isinstance(item, EcgVerdictReport):
            # the pipeline knows the beat and has not judged it yet: the verdict counts
            ok = core.pipeline.set_ecg_verdict(item.beat_t, EcgVerdict(item.verdict))
            accepted["verdicts" if ok else "late"] += 1
        items.append(item)
        core.feed(item)

    strap = SimulatedStrap(clock=clock, seed=seed, raw_data=True, movement_every_s=movement_every_s)
    device = with_chest_signals(strap, "c1", pub, None, submit=submit, guidance=lambda: guidance)
    async with device:
        device.set_stimulus(exposure=0.0, paced_breathing_bpm=6.0 if guidance else None)
        start = device.emulator.start_t
        async for r in device.readings():
            core.feed(r)
            if r.t - start > seconds:
                break
    return core, pub, items, accepted, start


async def test_ecg_verdicts_reach_the_rr_pipeline_in_time() -> None:
    core, _pub, items, accepted, _ = await _run(120)
    verdicts = [i for i in items if isinstance(i, EcgVerdictReport)]
    beats = sum(1 for _ in core.pipeline.window_values_ms("long"))
    # nearly every beat gets the ECG's word (the first few align the two streams)
    assert len(verdicts) >= 100, len(verdicts)
    assert accepted["late"] == 0  # every verdict came before the RR detector judged its beat
    assert {v.verdict for v in verdicts} <= {"normal", "ectopic"}
    assert beats > 0


async def test_movement_is_reported_and_carried_by_arousal() -> None:
    _core, pub, items, _, _start = await _run(90, movement_every_s=40.0)
    reports = [i for i in items if isinstance(i, MovementReport)]
    assert 80 <= len(reports) <= 92  # one per second of acceleration data
    assert any(r.moving for r in reports)
    assert not all(r.moving for r in reports)
    moves = pub.of(Topic.MOVEMENT)
    assert len(moves) == len(reports)
    for p in moves:
        payloads.validate("movement", p)
    assert any(p["level"] == "moving" for p in moves)


async def test_breathing_is_published_at_a_bounded_rate_with_adherence_when_guided() -> None:
    guidance = Guidance(
        start_t=1_700_000_000.0,
        technique=GroundingTechnique.PACED_BREATHING,
        breathing=BreathingPattern(4.0, 0.0, 6.0, 0.0),
        prompt="breathe",
    )
    _, pub, _, _, start = await _run(100, guidance=guidance)
    sent = pub.of(Topic.BREATHING)
    for p in sent:
        payloads.validate("breathing", p)
    ts = [p["t"] for p in sent]
    assert len(sent) <= 100 + 1  # at most one per second of data
    assert all(b - a >= 0.99 for a, b in itertools.pairwise(ts))
    late = [p for p in sent if p["t"] - start > 60]
    assert late
    assert all(p["pacer_bpm"] == pytest.approx(6.0) for p in late)
    rates = [p["rate_bpm"] for p in late if p["rate_bpm"] is not None]
    assert rates
    assert abs(sorted(rates)[len(rates) // 2] - 6.0) <= 0.5
    adh = [p["adherence"] for p in late if p["adherence"] is not None]
    assert adh
    assert max(adh) > 0.6
    assert any(len(p["trace_mg"]) > 100 for p in late)


async def test_without_guidance_no_adherence() -> None:
    _, pub, _, _, _ = await _run(70)
    sent = pub.of(Topic.BREATHING)
    assert sent
    assert all(p["adherence"] is None and p["pacer_bpm"] is None for p in sent)


async def test_a_strap_without_raw_data_changes_nothing() -> None:
    clock = ScaledClock(speed=200.0, start=1_700_000_000.0)
    calls: list[Any] = []
    pub = _Pub()
    strap = SimulatedStrap(clock=clock, seed=1)  # no raw data: RR only, as a plain strap
    device = with_chest_signals(strap, "c1", pub, None, submit=calls.append)
    beats = 0
    async with device:
        async for r in device.readings():
            beats += isinstance(r, Notification) and len(r.beats)
            if beats > 60:
                break
    assert beats > 60
    assert calls == []
    assert pub.sent == []


def test_a_failing_stage_is_switched_off_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    items: list[Any] = []
    chest = ChestSignals("c1", submit=items.append, publisher=None)
    bad = AccSamples("H10", (1.0, 1.005, 1.01), ((1, 2, 3), (1, 2, 3)), 0, 1.0, b"")
    with caplog.at_level(logging.ERROR):
        chest(bad)  # 3 times, 2 samples: the stage refuses it
    assert not chest.acc_on
    assert "ACC stage failed" in caplog.text
    chest(EcgSamples("H10", (1.0, 1.0077), (10, 20), 0, 1.0, b""))  # ECG goes on
    assert chest.ecg_on


def test_acc_rate_from_a_frame() -> None:
    assert acc_rate_hz(tuple(i / 200 for i in range(36))) == 200.0
    assert acc_rate_hz(tuple(i / 52 for i in range(10))) == 50.0
    assert acc_rate_hz((1.0,)) is None
    assert acc_rate_hz((1.0, 1.0)) is None


def test_reports_are_recorded_and_read_back() -> None:
    dec = InputDecoder()
    cols = [c.name for c in INPUTS.columns]
    for item in (EcgVerdictReport(5.0, 4.2, "normal"), MovementReport(6.0, True, 72.5)):
        row = dict(zip(cols, encode_input(item, 1), strict=True))
        assert dec.decode(row) == item


def test_core_ignores_a_damaged_verdict(caplog: pytest.LogCaptureFixture) -> None:
    core = SessionCore(
        client_id="c1", protocol=_protocol(), signal_config=SignalConfig(), start_t=0.0
    )
    with caplog.at_level(logging.WARNING):
        out = core.feed(EcgVerdictReport(1.0, 0.5, "maybe"))
    assert out.updates == ()
    assert out.events == ()
    assert "maybe" in caplog.text


def test_chest_device_passes_other_attributes_through() -> None:
    class Inner:
        name = "x"
        marker = 42

    dev = ChestSignalsDevice(Inner(), ChestSignals("c1", submit=lambda _: None, publisher=None))  # type: ignore[arg-type]
    assert dev.marker == 42
    assert dev.name == "x"
