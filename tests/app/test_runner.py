"""The live runner's duties that no device or broker test reaches: recording failures are
told to the therapist (and their end too), and commands get replies."""

from __future__ import annotations

from typing import Any

from biofeedback.clock import ScaledClock
from biofeedback.devices.hrm import encode_heart_rate_measurement
from biofeedback.devices.readings import HeartRateMeasurement
from biofeedback.devices.timing import BeatTimer
from biofeedback.errors import RecordingError
from biofeedback.exposure import load_protocol
from biofeedback.exposure.messages import Pause, Role, Tick
from biofeedback.service.core import SessionCore
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


def _runner(publisher: Collect, recorder: Any = None) -> SessionRunner:
    core = SessionCore(
        client_id="c1",
        protocol=load_protocol(REPO_ROOT / "config" / "protocols" / "demo.toml"),
        signal_config=SignalConfig(),
        start_t=1000.0,
    )
    return SessionRunner(
        core=core, device=None, clock=ScaledClock(1.0), publisher=publisher, recorder=recorder
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

    out = runner.process(Pause(1002.0, Role.THERAPIST, command_id="p1"))
    assert out.command is not None
    assert out.command.command_id == "p1"
    assert pub.kinds(Topic.SESSION), "the session state was not published"


def test_status_says_no_signal_until_data_flows_again() -> None:
    from biofeedback.devices.readings import DeviceEvent, DeviceEventKind
    from biofeedback.service.payloads import StatusTracker

    st = StatusTracker("c1")
    assert st.update(DeviceEvent(1.0, "strap", DeviceEventKind.CONNECTED))["signal"] is True
    assert st.update(DeviceEvent(2.0, "strap", DeviceEventKind.SIGNAL_LOST))["signal"] is False
    assert st.update(DeviceEvent(3.0, "strap", DeviceEventKind.CONNECTED))["signal"] is False
    assert st.update(DeviceEvent(4.0, "strap", DeviceEventKind.SIGNAL_RESTORED))["signal"] is True


def test_a_malformed_notification_is_told_once_with_its_bytes() -> None:
    from biofeedback.devices.readings import DeviceEvent, DeviceEventKind

    pub = Collect()
    runner = _runner(pub)
    bad = BeatTimer("strap").notification(1001.0, b"\x10")
    runner.process(bad)
    runner.process(DeviceEvent(1001.0, "strap", DeviceEventKind.MALFORMED, detail=bad.error or ""))
    told = [p for p in pub.kinds(Topic.EVENT) if p.get("kind") == "malformed"]
    assert len(told) == 1
    assert told[0]["payload_hex"] == "10"
