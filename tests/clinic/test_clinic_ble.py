"""`biofeedback run --config clinic.toml` end to end: several emulated straps through bleak's
real BlueZ backend (a fake org.bluez on a private D-Bus), one service, a real Mosquitto.

What a clinic needs from one service: every client streams on its own topics and records its
own session; a strap that is refused, dropped or refused for want of adapter links affects only
its own client; SIGTERM ends them all cleanly.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from dbus_fast.errors import DBusError

from biofeedback.devices.hrm import encode_heart_rate_measurement
from biofeedback.devices.readings import HeartRateMeasurement
from biofeedback.recording.reader import iter_inputs, list_sessions
from tests.clinic.service_proc import GroupWatcher, clinic_service, clinic_toml, heart
from tests.devices.fake_bluez import ERR_FAILED, FakeBlueZ, FakeStrap
from tests.service_proc import tail
from tests.support import free_port

pytestmark = [pytest.mark.dbus, pytest.mark.slow, pytest.mark.mosquitto]

RR_1024 = 640  # 625 ms: 96 bpm
PAYLOAD = encode_heart_rate_measurement(HeartRateMeasurement(96, True, True, None, (RR_1024,)))
# bluetoothd's answer when the kernel refuses another LE link (EMLINK)
LINK_LIMIT_TEXT = "le-connection-concurrent-connection-limit"


def _recorded_beats(root: Path, client: str) -> int:
    sessions = list_sessions(root, client)
    return sum(len(getattr(i, "beats", ())) for s in sessions for i in iter_inputs(s))


def limit_links(straps: list[FakeStrap], max_links: int) -> list[str]:
    """Make the emulated adapter hold at most `max_links` links at once, refusing more as
    bluetoothd does; returns the list the refused straps' names are appended to."""
    refused: list[str] = []
    for strap in straps:
        connect = strap.handle_connect

        async def limited(strap: FakeStrap = strap, connect: object = connect) -> None:
            if not strap.connected and sum(s.connected for s in straps) >= max_links:
                strap.connect_calls += 1
                refused.append(strap.spec.name)
                raise DBusError(ERR_FAILED, LINK_LIMIT_TEXT)
            await connect()  # type: ignore[operator]

        strap.handle_connect = limited  # type: ignore[method-assign]
    return refused


async def test_three_clients_one_refused_one_dropped_each_affects_only_itself(
    fake_bluez: FakeBlueZ, tmp_path: Path
) -> None:
    names = {
        "room-a": "Polar H10 C1A00001",
        "room-b": "Polar H10 C1A00002",
        "room-c": "Polar H10 C1A00003",
    }
    a = fake_bluez.add_strap(name=names["room-a"], address="A0:9E:1A:C1:A0:01")
    b = fake_bluez.add_strap(name=names["room-b"], address="A0:9E:1A:C1:A0:02")
    # busy with another central: every Connect fails
    fake_bluez.add_strap(name=names["room-c"], address="A0:9E:1A:C1:A0:03", refuse_connect=True)
    mqtt_port, http_port = free_port(), free_port()
    config = clinic_toml(tmp_path, names, mqtt_port=mqtt_port, http_port=http_port)
    sent_a: list[float] = []
    sent_b: list[float] = []
    async with (
        clinic_service(tmp_path, config, mqtt_port, http_port) as proc,
        asyncio.TaskGroup() as tg,
    ):
        beating = [tg.create_task(heart(a, RR_1024, PAYLOAD, sent_a))]
        beating.append(tg.create_task(heart(b, RR_1024, PAYLOAD, sent_b)))
        w = GroupWatcher(mqtt_port, tmp_path / "observer.json")
        try:
            await w.until(
                "beats from both streaming clients",
                lambda: len(w.of("room-a", "beat")) >= 4 and len(w.of("room-b", "beat")) >= 4,
            )
            # the refused strap is told to its own client, with the fix
            await w.until("room-c's error", lambda: bool(w.of("room-c", "event", kind="error")))
            # room-c's refusals are room-c's alone
            assert not w.of("room-a", "event", kind="error")
            assert not w.of("room-b", "event", kind="error")
            a.drop()
            await w.until(
                "room-a's loss", lambda: bool(w.of("room-a", "event", kind="signal_lost"))
            )
            # room-a's session has lost monitoring (an exposure would pause); room-b's has not
            await w.until(
                "room-a's session without monitoring",
                lambda: w.of("room-a", "session")[-1].get("monitoring_ok") is False,
            )
            b_before = len(w.of("room-b", "beat"))
            # room-a stays away (until restored below); room-b goes on meanwhile
            await w.until(
                "room-b's beats while room-a is away",
                lambda: len(w.of("room-b", "beat")) >= b_before + 2,
            )
            assert not w.of("room-a", "event", kind="signal_restored")
            assert w.of("room-b", "session")[-1]["monitoring_ok"] is True
            a.restore()
            await w.until(
                "room-a back", lambda: bool(w.of("room-a", "event", kind="signal_restored"))
            )
            a_back = len(w.of("room-a", "beat"))
            await w.until("room-a's beats again", lambda: len(w.of("room-a", "beat")) >= a_back + 2)
        finally:
            for task in beating:
                task.cancel()
            w.close()
        assert proc.returncode is None, tail(tmp_path / "service.log")
    assert proc.returncode == 0, tail(tmp_path / "service.log")

    # every client on its own topics only
    assert not w.of("room-b", "event", kind="signal_lost")
    assert not w.of("room-b", "event", kind="error")
    assert not w.of("room-c", "beat")
    error = w.of("room-c", "event", kind="error")[0]
    assert names["room-c"] in error["detail"] or "connection" in error["detail"].lower()
    # ... and its own recording
    recordings = tmp_path / "recordings"
    assert _recorded_beats(recordings, "room-a") >= len(w.of("room-a", "beat"))
    assert _recorded_beats(recordings, "room-b") >= len(w.of("room-b", "beat"))
    assert _recorded_beats(recordings, "room-c") == 0
    assert len(list_sessions(recordings, "room-c")) == 1  # its session ran, honestly empty
    # nothing invented
    assert len(w.of("room-a", "beat")) <= len(sent_a)
    assert len(w.of("room-b", "beat")) <= len(sent_b)


async def test_an_adapter_out_of_links_is_told_to_the_client_it_refused(
    fake_bluez: FakeBlueZ, tmp_path: Path
) -> None:
    """The config trusts the adapter with 3 links, the (emulated) adapter holds 2: the client
    whose strap is refused gets an actionable error; the other two stream."""
    names = {f"grp-{i}": f"Polar H10 C1B0000{i}" for i in range(1, 4)}
    straps = [
        fake_bluez.add_strap(name=name, address=f"A0:9E:1A:C1:B0:0{i}")
        for i, name in enumerate(names.values(), start=1)
    ]
    refused = limit_links(straps, 2)
    mqtt_port, http_port = free_port(), free_port()
    config = clinic_toml(tmp_path, names, mqtt_port=mqtt_port, http_port=http_port, max_links=3)
    sent: list[float] = []
    async with (
        clinic_service(tmp_path, config, mqtt_port, http_port) as proc,
        asyncio.TaskGroup() as tg,
    ):
        beating = [tg.create_task(heart(s, RR_1024, PAYLOAD, sent)) for s in straps]
        w = GroupWatcher(mqtt_port, tmp_path / "observer.json")
        try:

            def told() -> list[str]:
                return [c for c in names if w.of(c, "event", kind="adapter_link_limit")]

            await w.until("the link-limit error", lambda: bool(told()))
            await w.until(
                "beats from the two connected clients",
                lambda: sum(len(w.of(c, "beat")) >= 3 for c in names) == 2,
            )
        finally:
            for task in beating:
                task.cancel()
            w.close()
    assert proc.returncode == 0, tail(tmp_path / "service.log")
    assert refused
    (refused_client,) = told()
    assert names[refused_client] in refused
    detail = w.of(refused_client, "event", kind="adapter_link_limit")[0]["detail"]
    assert "holds no more connections" in detail
    assert "max_links_per_adapter = 3" in detail
    assert "second service" in detail
    assert not w.of(refused_client, "beat")
    assert "refused a link" in (tmp_path / "service.log").read_text()
