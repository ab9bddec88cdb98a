"""Raw data beside the beats: the `ecg` batches (rate bound, gaps, schema) and PmdFeedDevice
taking a simulated H10's ECG into a real recording while the beats flow as before."""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path
from typing import Any

import pytest

from biofeedback.clock import ScaledClock
from biofeedback.devices import pmd
from biofeedback.devices.pmd_readings import EcgSamples, PmdGap, PmdStatus, PmdStream
from biofeedback.devices.pmd_stream import PmdFrameReader
from biofeedback.devices.readings import Notification
from biofeedback.devices.simulated import SimulatedStrap
from biofeedback.recording import open_session
from biofeedback.recording.recorder import SessionRecorder
from biofeedback.service import payloads
from biofeedback.service.pmd_feed import EcgBatcher, PmdFeedDevice, PmdSink
from biofeedback.service.topics import Topic


def _frames(n: int, *, skip: tuple[int, ...] = ()) -> list[EcgSamples | PmdGap]:
    reader = PmdFrameReader("H10")
    out: list[Any] = []
    for k in range(n):
        if k in skip:
            continue
        raw = pmd.encode_ecg(10**12 + round(k * 73e9 / 130), [k] * 73)
        out += reader.read(1000.0 + k * 73 / 130 + 0.02, raw)
    return out


def test_batches_are_at_most_one_per_second_and_valid() -> None:
    b = EcgBatcher("c1")
    sent = [p for r in _frames(40) for p in b.add(r)]  # ~22 s of ECG
    assert 20 <= len(sent) <= 23
    for p in sent:
        payloads.validate("ecg", p)
        assert p["gap_before_s"] is None
        assert p["dropped_samples"] == 0
    starts = [p["t"] for p in sent]
    assert all(b - a >= 1.0 for a, b in itertools.pairwise(starts))
    assert sum(len(p["uv"]) for p in sent) <= 40 * 73
    assert sent[1]["dt_s"] == pytest.approx(1 / 130, rel=1e-3)


def test_a_gap_closes_the_batch_and_is_named_in_the_next() -> None:
    b = EcgBatcher("c1")
    sent = [p for r in _frames(12, skip=(5, 6)) for p in b.add(r)]
    gaps = [p for p in sent if p["gap_before_s"] is not None]
    assert len(gaps) == 1
    assert gaps[0]["gap_before_s"] == pytest.approx(2 * 73 / 130, abs=0.01)
    assert gaps[0]["uv"][0] == 7  # the first sample after the gap starts the batch


def test_a_backlog_is_cut_to_its_newest_two_seconds() -> None:
    b = EcgBatcher("c1")
    frames = _frames(10)
    b.add(frames[0])  # first message
    # A stall: eight frames (4.5 s) arrive before the next publish.
    big = EcgSamples(
        "H10",
        tuple(t for f in frames[1:9] for t in f.t),  # type: ignore[union-attr]
        tuple(v for f in frames[1:9] for v in f.uv),  # type: ignore[union-attr]
        0,
        0.0,
        b"",
    )
    (p,) = b.add(big)
    payloads.validate("ecg", p)
    assert len(p["uv"]) <= 2 * 130 + 1
    assert p["dropped_samples"] == 9 * 73 - len(p["uv"])  # frames[0] was still waiting too


class _Pub:
    def __init__(self) -> None:
        self.sent: list[tuple[Topic, dict[str, Any]]] = []

    def publish_kind(self, client_id: str, kind: Topic, payload: dict[str, Any]) -> None:
        self.sent.append((kind, payload))


async def test_feed_device_records_and_publishes_a_simulated_h10(tmp_path: Path) -> None:
    clock = ScaledClock(speed=100.0, start=1_700_000_000.0)
    pub = _Pub()
    beats = 0
    with SessionRecorder(tmp_path, client_id="c1", meta={"start_t": clock.now()}) as rec:
        strap = SimulatedStrap(clock=clock, raw_data=True)
        device = PmdFeedDevice(strap, PmdSink("c1", pub, rec))
        async with device:
            device.set_stimulus(exposure=0.0, paced_breathing_bpm=6.0)  # reaches the strap
            start = device.emulator.start_t
            async for r in device.readings():
                beats += isinstance(r, Notification) and len(r.beats)
                rec.flush_if_due(time.monotonic())
                if r.t - start > 30:
                    break
    assert beats > 10  # the beats flowed as for any strap
    ecg = [p for k, p in pub.sent if k is Topic.ECG]
    assert len(ecg) >= 20
    for p in ecg:
        payloads.validate("ecg", p)
    info = open_session(rec.path)
    rows = info.rows("pmd")
    assert rows[0]["kind"] == "status"
    assert {r["kind"] for r in rows} >= {"status", "ecg", "acc"}
    n_ecg = len(info.rows("ecg"))
    assert n_ecg == sum(r["samples"] for r in rows if r["kind"] == "ecg")
    assert n_ecg > 25 * 130
    published = sum(len(p["uv"]) for p in ecg)
    assert published <= n_ecg


async def test_a_device_without_raw_data_is_passed_through() -> None:
    class Plain:
        name = "plain"

        async def __aenter__(self) -> Plain:
            return self

        async def __aexit__(self, *exc: object) -> None:
            return None

        async def readings(self) -> Any:
            yield "reading"

    got = []
    device = PmdFeedDevice(Plain(), lambda r: got.append(r))  # type: ignore[arg-type]
    async with device:
        assert [r async for r in device.readings()] == ["reading"]
    assert got == []


def test_a_failing_recording_does_not_stop_the_feed(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        def pmd(self, r: object) -> None:
            raise OSError("disk gone")

    pub = _Pub()
    sink = PmdSink("c1", pub, Broken())
    for r in _frames(4):
        sink(r)
    sink(PmdStatus("H10", 0.0, PmdStream.ECG, "ECG streaming"))
    assert sink.failures == 5
    assert pub.sent  # MQTT still got its batches
    assert "raw data not passed to recording: disk gone" in caplog.text


def test_rate_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="interval_s"):
        EcgBatcher("c1", interval_s=2.0, max_s=1.0)


async def test_pump_ends_with_the_device() -> None:
    clock = ScaledClock(speed=200.0, start=0.0)
    seen: list[object] = []
    device = PmdFeedDevice(SimulatedStrap(clock=clock, raw_data=True), seen.append)
    async with device:
        async for r in device.readings():
            if r.t > 10:
                break
    await asyncio.sleep(0)
    assert any(isinstance(r, EcgSamples) for r in seen)
