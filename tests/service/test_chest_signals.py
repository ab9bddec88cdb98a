"""The live ECG, movement and breathing stages (service/chest_signals.py) on a simulated H10.

A real SessionCore takes the verdicts and movement reports as inputs (as the runner does), so
these check what reaches the RR pipeline, what is published (schema, rate), that the inputs are
recorded and read back, and that a strap without raw data changes nothing.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import math
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
    # every report reaches the session; the topic keeps at most one a second (a stage restarted
    # after a gap on a loaded machine reports again sooner)
    assert 0.8 * len(reports) <= len(moves) <= len(reports)
    assert all(b["t"] - a["t"] >= 0.999 for a, b in itertools.pairwise(moves))
    for p in moves:
        payloads.validate("movement", p)
    assert any(p["level"] == "moving" for p in moves)


async def test_breathing_is_published_at_a_bounded_rate_with_the_pacer_when_guided() -> None:
    guidance = _guidance(1_700_000_000.0)
    _, pub, _, _, start = await _run(100, guidance=guidance)
    sent = pub.of(Topic.BREATHING)
    for p in sent:
        payloads.validate("breathing", p)
    ts = [p["t"] for p in sent]
    assert len(sent) <= 100 + 1  # at most one per second of data
    assert all(b - a >= 0.999 for a, b in itertools.pairwise(ts))
    late = [p for p in sent if p["t"] - start > 60]
    assert late
    assert all(p["pacer_bpm"] == pytest.approx(6.0) for p in late)
    rates = [p["rate_bpm"] for p in late if p["rate_bpm"] is not None]
    assert rates
    assert abs(sorted(rates)[len(rates) // 2] - 6.0) <= 0.5
    # the simulated person breathes at the pacer's rate but in a phase of its own
    assert any(p["adherence"] is not None for p in late)
    assert any(len(p["trace_mg"]) > 100 for p in late)


def _guidance(start_t: float) -> Guidance:
    return Guidance(
        start_t=start_t,
        technique=GroundingTechnique.PACED_BREATHING,
        breathing=BreathingPattern(5.0, 0.0, 5.0, 0.0),
        prompt="breathe",
    )


@pytest.mark.parametrize(("lag_cycles", "lo", "hi"), [(0.0, 0.8, 1.0), (0.25, 0.0, 0.35)])
def test_pacer_phase_reaches_the_adherence_measure(lag_cycles: float, lo: float, hi: float) -> None:
    """A chest that follows the pacer scores high, one a quarter cycle behind it low (the
    phase comes from the session's guidance, not from the chest)."""
    start = 1000.0
    pub = _Pub()
    chest = ChestSignals(
        "c1", submit=lambda _: None, publisher=pub, guidance=lambda: _guidance(start)
    )
    fs, n = 50.0, 25  # 0.5 s frames
    for k in range(int(90 * fs / n)):
        t = tuple(start + (k * n + i) / fs for i in range(n))
        mg = tuple(
            (0, 0, round(1000 + 20 * (1 - math.cos(2 * math.pi * ((x - start) / 10 - lag_cycles)))))
            for x in t
        )
        chest(AccSamples("H10", t, mg, 0, t[-1], b""))
    adh = [p["adherence"] for p in pub.of(Topic.BREATHING) if p["adherence"] is not None]
    assert len(adh) > 20
    assert lo <= adh[-1] <= hi, adh[-5:]


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


def test_the_rate_bound_holds_across_a_stage_restart() -> None:
    """After a gap the stages count their second afresh: the topics still get at most one
    message a second (held breaths and events go with the next one)."""
    chest = ChestSignals("c1", submit=lambda _: None, publisher=None)
    assert chest._due(Topic.BREATHING, 10.0)
    assert not chest._due(Topic.BREATHING, 10.6)  # a restarted stage's first update
    assert chest._due(Topic.MOVEMENT, 10.6)  # each topic on its own
    assert chest._due(Topic.BREATHING, 10.9995)  # a second apart but for rounding
    assert chest._due(Topic.BREATHING, 5.0)  # time went back: a new strap's clock


def test_movement_reports_reach_the_arousal_through_the_core() -> None:
    """Movement reports fed to a baselined core as the runner feeds them: arousal carries the
    reason "movement" while they say moving, and not once they stop (5 s later)."""
    from biofeedback.exposure import ExposureProtocol, Step
    from biofeedback.signal import Baseline
    from biofeedback.signal.synthetic import rr_series
    from tests.hrv.test_one_estimator import notifications

    base = Baseline("c-1", 0.0, 120.0, 140, 0.0, 69.0, 5.0, 3.7, 0.2, None)
    core = SessionCore(
        client_id="c-1",
        protocol=ExposureProtocol(name="p", steps=(Step("one", "first", 60.0),)),
        signal_config=SignalConfig(),
        start_t=999.0,
        baseline=base,
    )
    t, rr = rr_series(120.0, hr_bpm=80.0, seed=2)
    next_report = 1000.0
    reasons: list[tuple[float, str | None]] = []
    for n in notifications(t, rr):
        while next_report <= n.t:
            moving = 1040.0 <= next_report < 1070.0
            core.feed(MovementReport(next_report, moving, 80.0 if moving else 3.0))
            next_report += 1.0
        for u in core.feed(n).updates:
            if u.arousal.value is not None:
                reasons.append((u.t, u.arousal.reason))
    during = [r for tt, r in reasons if 1045.0 <= tt < 1070.0]
    after = [r for tt, r in reasons if tt >= 1076.0]
    before = [r for tt, r in reasons if tt < 1040.0]
    assert during
    assert all(r is not None and r.startswith("movement") for r in during)
    assert after
    assert not any(r is not None and r.startswith("movement") for r in after + before)
