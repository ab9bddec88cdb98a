"""The live runner's duties that no device or broker test reaches: recording failures are
told to the therapist (and their end too), and commands get replies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from biofeedback.clock import ScaledClock
from biofeedback.devices.hrm import encode_heart_rate_measurement
from biofeedback.devices.readings import (
    DeviceEvent,
    DeviceEventKind,
    DeviceReading,
    HeartRateMeasurement,
)
from biofeedback.devices.timing import BeatTimer
from biofeedback.errors import RecordingError
from biofeedback.exposure import load_protocol
from biofeedback.exposure.messages import (
    AdjustThresholds,
    Consent,
    OfferStep,
    Pause,
    Role,
    SessionState,
    Tick,
)
from biofeedback.service import payloads
from biofeedback.service.core import CommandResult, SessionCore
from biofeedback.service.runner import SessionRunner
from biofeedback.service.topics import Topic
from biofeedback.signal import SignalConfig
from tests.support import REPO_ROOT


class Collect:
    def __init__(self) -> None:
        self.sent: list[tuple[Topic, dict[str, Any]]] = []

    def publish_kind(self, client_id: str, kind: Topic, payload: dict[str, Any]) -> None:
        self.sent.append((kind, payload))

    def kinds(self, kind: Topic) -> list[dict[str, Any]]:
        return [p for k, p in self.sent if k is kind]


class FlakyDisk:
    """A recorder whose disk is full until `full` is cleared."""

    def __init__(self) -> None:
        self.full = True
        self.error: str | None = None
        self.inputs = 0

    def input(self, item: object, seq: int) -> None:
        self.inputs += 1
        if self.full:
            self.error = "beats.tsv: No space left on device"
            raise RecordingError(self.error)
        self.error = None

    def update(self, u: object) -> None: ...
    def events(self, evs: object) -> None: ...
    def snapshot(self, snap: object) -> None: ...
    def flush_if_due(self, now: float) -> None: ...
    def set_meta(self, **fields: object) -> None: ...


def _runner(publisher: Collect, recorder: Any = None, device: Any = None) -> SessionRunner:
    core = SessionCore(
        client_id="c1",
        protocol=load_protocol(REPO_ROOT / "config" / "protocols" / "demo.toml"),
        signal_config=SignalConfig(),
        start_t=1000.0,
    )
    return SessionRunner(
        core=core,
        device=device,
        clock=ScaledClock(1.0, start=1000.0),
        publisher=publisher,
        recorder=recorder,
    )


def test_recording_failure_and_recovery_reach_the_therapist() -> None:
    pub, disk = Collect(), FlakyDisk()
    runner = _runner(pub, disk)
    runner.process(Tick(1001.0))
    runner.process(Tick(1002.0))  # the same failure is told once
    failures = [p for p in pub.kinds(Topic.EVENT) if p.get("kind") == "recording_failed"]
    assert len(failures) == 1
    assert "No space left" in failures[0]["detail"]
    disk.full = False
    runner.process(Tick(1003.0))
    assert [p["kind"] for p in pub.kinds(Topic.EVENT) if p.get("source") == "service"] == [
        "recording_failed",
        "recording_resumed",
    ]


def test_beats_are_published_and_commands_answered() -> None:
    pub = Collect()
    runner = _runner(pub)
    timer = BeatTimer("strap")
    payload = encode_heart_rate_measurement(HeartRateMeasurement(70, True, True, None, (880,)))
    runner.process(timer.notification(1001.0, payload))
    beats = pub.kinds(Topic.BEAT)
    assert len(beats) == 1
    assert abs(beats[0]["rr_ms"] - 880 * 1000 / 1024) < 1e-3

    # a therapist's pause while calibrating: applied (nothing runs, so the state stays), and told
    before = len(pub.sent)
    out = runner.process(Pause(1002.0, Role.THERAPIST, command_id="p1"))
    assert out.command == CommandResult("p1", ok=True, error=None)
    (ack,) = [p for k, p in pub.sent[before:] if k is Topic.EVENT]
    assert (ack["kind"], ack["actor"], ack["to_state"]) == (
        "pause_acknowledged",
        "therapist",
        "calibrating",
    )
    assert ack["values"] == {"pause_reason": "therapist"}
    assert pub.kinds(Topic.SESSION)[-1]["state"] == "calibrating"

    # a threshold change is applied and the published session state carries it
    out = runner.process(AdjustThresholds(1003.0, Role.THERAPIST, upper=70.0, command_id="a1"))
    assert out.command == CommandResult("a1", ok=True, error=None)
    session = pub.kinds(Topic.SESSION)[-1]
    assert (session["t"], session["thresholds"]["upper"]) == (1003.0, 70.0)
    assert pub.kinds(Topic.EVENT)[-1]["kind"] == "thresholds"

    # a refused command: not ok, says why, publishes nothing and changes nothing
    before = len(pub.sent)
    out = runner.process(OfferStep(1004.0, Role.THERAPIST, command_id="o1"))
    assert out.command is not None
    assert (out.command.command_id, out.command.ok) == ("o1", False)
    assert "calibration is still running" in (out.command.error or "")
    assert pub.sent[before:] == []
    assert runner.core.snapshot.state is SessionState.CALIBRATING
    assert runner.core.snapshot.offer is None


class QuietStrap:
    """A device that gives nothing until told to end (the runner's command path alone)."""

    name = "quiet"

    def __init__(self) -> None:
        self.end = asyncio.Event()

    async def __aenter__(self) -> QuietStrap:
        return self

    async def __aexit__(self, *exc: object) -> None: ...

    async def readings(self) -> AsyncIterator[DeviceReading]:
        await self.end.wait()
        yield DeviceEvent(0.0, self.name, DeviceEventKind.ENDED)


async def test_submitted_commands_get_replies_with_their_outcome() -> None:
    pub, strap = Collect(), QuietStrap()
    runner = _runner(pub, device=strap)
    replies: list[dict[str, Any]] = []
    both_answered = asyncio.Event()

    def reply(payload: dict[str, Any]) -> None:
        replies.append(payload)
        if len(replies) == 2:
            both_answered.set()

    async with asyncio.timeout(10), asyncio.TaskGroup() as tg:
        tg.create_task(runner.run())
        runner.submit(AdjustThresholds(1001.0, Role.THERAPIST, upper=70.0, command_id="a1"), reply)
        runner.submit(Consent(1001.5, Role.CLIENT, command_id="c1"), reply)
        await both_answered.wait()
        strap.end.set()
    for r in replies:
        payloads.validate("reply", r)
    assert [(r["id"], r["ok"], r["error"]) for r in replies] == [
        ("a1", True, None),
        ("c1", False, "there is nothing to consent to right now (state calibrating)"),
    ]
    assert pub.kinds(Topic.SESSION)[-1]["thresholds"]["upper"] == 70.0


def test_status_says_no_signal_until_data_flows_again() -> None:
    from biofeedback.service.payloads import StatusTracker

    st = StatusTracker("c1")
    assert st.update(DeviceEvent(1.0, "strap", DeviceEventKind.CONNECTED))["signal"] is True
    assert st.update(DeviceEvent(2.0, "strap", DeviceEventKind.SIGNAL_LOST))["signal"] is False
    assert st.update(DeviceEvent(3.0, "strap", DeviceEventKind.CONNECTED))["signal"] is False
    assert st.update(DeviceEvent(4.0, "strap", DeviceEventKind.SIGNAL_RESTORED))["signal"] is True


def test_a_malformed_notification_is_told_once_with_its_bytes() -> None:
    pub = Collect()
    runner = _runner(pub)
    bad = BeatTimer("strap").notification(1001.0, b"\x10")
    runner.process(bad)
    runner.process(DeviceEvent(1001.0, "strap", DeviceEventKind.MALFORMED, detail=bad.error or ""))
    told = [p for p in pub.kinds(Topic.EVENT) if p.get("kind") == "malformed"]
    assert len(told) == 1
    assert told[0]["payload_hex"] == "10"


def test_a_device_error_is_an_event_with_its_fix_and_stays_in_the_status() -> None:
    """No Bluetooth: the therapist sees why there is no signal, not only "monitoring lost"."""
    pub = Collect()
    runner = _runner(pub)
    runner.process(
        DeviceEvent(
            1001.0,
            "Polar H10",
            DeviceEventKind.ERROR,
            detail="Bluetooth is not available: bluetoothd (BlueZ) is not running",
            hint="start it with `sudo systemctl start bluetooth`",
        )
    )
    (told,) = [p for p in pub.kinds(Topic.EVENT) if p.get("kind") == "error"]
    payloads.validate("event", told)
    assert told["source"] == "device"
    assert told["hint"] == "start it with `sudo systemctl start bluetooth`"
    status = pub.kinds(Topic.STATUS)[-1]
    payloads.validate("status", status)
    assert "bluetoothd" in status["device_error"]
    assert status["device_hint"].startswith("start it")
    # the session is not changed by it: monitoring was never there
    assert runner.core.snapshot.state is SessionState.CALIBRATING
    runner.process(DeviceEvent(1002.0, "Polar H10", DeviceEventKind.CONNECTED))
    status = pub.kinds(Topic.STATUS)[-1]
    payloads.validate("status", status)
    assert (status["device_error"], status["device_hint"]) == (None, None)
