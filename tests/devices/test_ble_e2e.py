"""`biofeedback run --device NAME` end to end against the fake BlueZ: strap -> bleak -> MQTT ->
dashboard.

The service runs as a user runs it (a subprocess, real time, embedded broker and dashboard on free
ports); its `DBUS_SYSTEM_BUS_ADDRESS` points at the private bus where this test serves the fake
strap. A plain paho-mqtt client watches the topic tree and the therapist's WebSocket is read. The
strap sends real 0x2A37 bytes in real time, drops once and comes back; SIGTERM must then disconnect
the strap and end the process cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from biofeedback.devices.hrm import encode_heart_rate_measurement
from biofeedback.devices.readings import DeviceEvent, HeartRateMeasurement, Notification
from biofeedback.recording.reader import iter_inputs, list_sessions
from tests.devices.fake_bluez import FakeBlueZ, FakeStrap
from tests.service_proc import service_process, tail
from tests.support import REPO_ROOT, free_port

pytestmark = [pytest.mark.dbus, pytest.mark.slow]

NAME = "Polar H10 E2E0001"
CLIENT = "e2e-ble"
SECRET = "e2e-ble-therapist-secret"
RR_1024 = 640  # 625 ms: 96 bpm, so beats come quickly in real time
HEART = HeartRateMeasurement(96, True, True, None, (RR_1024,))


_tail = tail  # (other tests import it from here)


@contextlib.asynccontextmanager
async def _service(
    tmp_path: Path, mqtt_port: int, http_port: int
) -> AsyncIterator[asyncio.subprocess.Process]:
    args = (
        "--device", NAME, "--mqtt-port", str(mqtt_port), "--http-port", str(http_port),
        "--data-dir", str(tmp_path), "--client-id", CLIENT, "--log-level", "DEBUG",
    )  # fmt: skip
    async with service_process(
        tmp_path,
        *args,
        mqtt_port=mqtt_port,
        http_port=http_port,
        secret=SECRET,
        within_s=45,
        stop_within_s=20,
    ) as proc:
        yield proc


class Watcher:
    """A third-party MQTT client collecting this client's messages (paho runs its own thread)."""

    def __init__(self, port: int, observer_file: Path) -> None:
        self.q: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self.seen: list[tuple[str, dict[str, Any]]] = []
        self.c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="e2e-ble")
        # written by the broker before the dashboard starts, so before its port answered
        login = json.loads(observer_file.read_text())
        self.c.username_pw_set(login["username"], login["password"])
        self.c.on_message = lambda _c, _u, msg: self.q.put((msg.topic, json.loads(msg.payload)))
        self.c.connect("127.0.0.1", port)
        self.c.subscribe(f"biofeedback/v1/{CLIENT}/#", qos=1)
        self.c.loop_start()

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()

    def of(self, topic_kind: str, **match: Any) -> list[dict[str, Any]]:
        return [
            p
            for t, p in self.seen
            if t.endswith(f"/{topic_kind}") and all(p.get(k) == v for k, v in match.items())
        ]

    async def until(self, what: str, cond: Any, within_s: float = 30) -> None:
        """Keep the event loop (and so the fake BlueZ) running while waiting for `cond()`."""
        deadline = time.monotonic() + within_s
        while not cond():
            if time.monotonic() > deadline:
                kinds = sorted({t.rsplit("/", 1)[-1] for t, _ in self.seen})
                raise AssertionError(f"no {what} within {within_s} s; saw {kinds}")
            try:
                while True:
                    self.seen.append(self.q.get_nowait())
            except queue.Empty:
                await asyncio.sleep(0.05)


async def _dashboard_view(http_port: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The therapist's WebSocket: (the client snapshot, the first live metrics update)."""
    base = f"http://127.0.0.1:{http_port}"
    auth = {"Authorization": f"Bearer {SECRET}", "Origin": base}
    snapshot: dict[str, Any] = {}
    async with (
        aiohttp.ClientSession() as s,
        s.ws_connect(f"{base}/ws?client={CLIENT}", headers=auth) as ws,
    ):
        async with asyncio.timeout(20):
            while True:
                msg = await ws.receive_json()
                if msg.get("type") == "snapshot":
                    snapshot = dict(msg)
                if msg.get("type") == "update" and msg.get("kind") == "metrics":
                    return snapshot, dict(msg)


async def _heart(strap: FakeStrap, sent: list[int]) -> None:
    """Beat at 96 bpm in real time whenever the service is subscribed."""
    payload = encode_heart_rate_measurement(HEART)
    while True:
        await asyncio.sleep(RR_1024 / 1024)
        if strap.notify(payload):
            sent.append(RR_1024)


async def test_run_with_a_ble_strap_delivers_beats_and_gaps_to_mqtt(
    fake_bluez: FakeBlueZ, tmp_path: Path
) -> None:
    strap = fake_bluez.add_strap(name=NAME, address="A0:9E:1A:E2:E0:01")
    mqtt_port, http_port = free_port(), free_port()
    sent: list[int] = []
    async with _service(tmp_path, mqtt_port, http_port) as proc, asyncio.TaskGroup() as tg:
        heart = tg.create_task(_heart(strap, sent))
        w = Watcher(mqtt_port, tmp_path / "observer.json")
        try:
            await w.until("beats", lambda: len(w.of("beat")) >= 4)
            # ... and on to the therapist's dashboard, over its WebSocket
            snapshot, live = await _dashboard_view(http_port)
            assert snapshot["summary"]["device"] == NAME
            assert snapshot["summary"]["battery"] == 87
            assert live["point"]["hr"] == pytest.approx(60 * 1024 / RR_1024)
            await w.until("battery status", lambda: bool(w.of("status", battery_pct=87)))
            strap.drop()
            await w.until("signal_lost", lambda: bool(w.of("event", kind="signal_lost")))
            await asyncio.sleep(1.0)
            strap.restore()
            n_before = len(w.of("beat"))
            await w.until("signal_restored", lambda: bool(w.of("event", kind="signal_restored")))
            await w.until("beats after the gap", lambda: len(w.of("beat")) >= n_before + 3)
        finally:
            heart.cancel()
            w.close()
        assert proc.returncode is None
    log_text = _tail(tmp_path / "service.log")
    assert proc.returncode == 0, log_text

    beats = w.of("beat")
    assert all(b["rr_ms"] == pytest.approx(RR_1024 * 1000 / 1024) for b in beats), beats[:3]
    assert len(beats) <= len(sent)  # nothing invented
    kinds = [p["kind"] for p in w.of("event", source="device")]
    assert kinds[:3] == ["connected", "info", "battery"], kinds
    assert kinds.count("signal_lost") == 1
    assert kinds.count("signal_restored") == 1
    assert kinds.index("signal_lost") < kinds.index("signal_restored")
    (restored,) = w.of("event", kind="signal_restored")
    assert restored["gap_s"] >= 1.0  # the strap was away for at least a second
    (info,) = w.of("event", kind="info")
    assert info["info"]["manufacturer"] == "Polar Electro Oy"
    assert info["info"]["model"] == "H10"
    status = w.of("status")[-1]
    assert status["device_info"]["firmware"] == "5.0.0"
    # SIGTERM disconnected the strap on the way out
    assert not strap.connected, log_text
    assert strap.disconnect_reasons[-1] == "host"
    assert "Traceback" not in log_text, log_text

    # the recording kept the raw packets and the gap, as the session processed them
    (session,) = list_sessions(tmp_path / "recordings", CLIENT)
    recorded = list(iter_inputs(session))
    packets = [r for r in recorded if isinstance(r, Notification)]
    assert len(packets) >= len(beats)
    assert {p.payload for p in packets} == {encode_heart_rate_measurement(HEART)}
    rec_gaps = [
        r.gap_s for r in recorded if isinstance(r, DeviceEvent) and r.kind == "signal_restored"
    ]
    assert rec_gaps == [pytest.approx(restored["gap_s"], abs=1e-3)]


async def test_scan_command_lists_straps_from_the_fake_bluez(fake_bluez: FakeBlueZ) -> None:
    fake_bluez.add_strap(name=NAME, address="A0:9E:1A:E2:E0:01", rssi=-61)
    fake_bluez.add_strap(name="TICKR E2E", address="C4:00:00:00:E2:02", rssi=-75, battery_pct=None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "biofeedback.cli", "scan", "--timeout", "1",
        cwd=REPO_ROOT, env=dict(os.environ), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(60):
        out, err = await proc.communicate()  # the fake BlueZ answers while we wait
    assert proc.returncode == 0, err.decode()
    lines = out.decode().splitlines()
    assert lines[0].split() == ["name", "address", "rssi", "battery"]
    assert lines[1].split()[-3:] == ["A0:9E:1A:E2:E0:01", "-61", "87%"]
    assert lines[1].startswith(NAME)
    assert lines[2].split()[-3:] == ["C4:00:00:00:E2:02", "-75", "?"]
    assert not any(s.connected for s in fake_bluez.straps)
