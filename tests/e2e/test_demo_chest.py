"""`biofeedback demo` end to end with the simulated strap's raw ECG and chest acceleration
(issue 13): RR, ECG and ACC through the live stages to MQTT (`ecg`, `breathing`, `movement`),
the therapist's dashboard (and not the client's screen), the recording (the ECG's verdicts and
the movement reports as inputs), replay, and the BIDS export.

The demo streams raw data only up to speed 4 (service/app.py), so this runs at 4x: about 30 s.
"""

from __future__ import annotations

import asyncio
import gzip
import itertools
import json
import os
import queue
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from biofeedback.recording import open_session
from biofeedback.recording.export import export_bids
from biofeedback.recording.pmd_replay import replay_pmd
from biofeedback.recording.reader import iter_inputs, list_sessions
from biofeedback.recording.replay import replay_session
from biofeedback.service import payloads
from biofeedback.service.commands_cli import core_from_recording
from tests.support import REPO_ROOT, free_port, require_binary

pytestmark = pytest.mark.slow

SECRET = "e2e-chest-therapist-secret"
CLIENT = "client-001"
SESSION_S = 110  # session seconds: breathing reports a rate after 30 s of chest signal


async def _wait_port(port: int, proc: asyncio.subprocess.Process, within: float = 30) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        assert proc.returncode is None, "the demo ended before it listened"
        try:
            _, w = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        w.close()
        return
    raise AssertionError(f"nothing listens on port {port} after {within} s")


class Collector:
    """A plain MQTT client (the broker's read-only observer login) collecting the client's
    messages by kind (paho runs its own thread)."""

    def __init__(self, port: int, observer: Path) -> None:
        login = json.loads(observer.read_text())
        self.q: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self.c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="chest")
        self.c.username_pw_set(login["username"], login["password"])
        self.c.on_message = lambda _c, _u, m: self.q.put((m.topic, json.loads(m.payload)))
        self.c.connect("127.0.0.1", port)
        self.c.subscribe(f"biofeedback/v1/{CLIENT}/#", qos=1)
        self.c.loop_start()

        self.seen: dict[str, list[dict[str, Any]]] = {}

    def _drain(self) -> None:
        while not self.q.empty():
            t, p = self.q.get_nowait()
            self.seen.setdefault(t.rsplit("/", 1)[-1], []).append(p)

    async def until(self, kind: str, within: float) -> None:
        """Wait for a first `kind` message (the service starts after the dashboard)."""
        deadline = time.monotonic() + within
        while True:
            self._drain()
            if self.seen.get(kind):
                return
            assert time.monotonic() < deadline, f"no {kind} within {within} s: {sorted(self.seen)}"
            await asyncio.sleep(0.1)

    def close(self) -> dict[str, list[dict[str, Any]]]:
        self.c.loop_stop()
        self.c.disconnect()
        self._drain()
        return self.seen


async def _ws_kinds(url: str, headers: dict[str, str], seconds: float) -> list[str]:
    kinds: list[str] = []
    async with aiohttp.ClientSession() as s, s.ws_connect(url, headers=headers) as ws:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                msg = await ws.receive_json(timeout=max(0.05, end - time.monotonic()))
            except TimeoutError:
                break
            if msg.get("type") == "update":
                kinds.append(str(msg.get("kind")))
    return kinds


async def test_demo_streams_ecg_movement_and_breathing_everywhere(tmp_path: Path) -> None:
    require_binary("mosquitto", "mosquitto")
    http, mqtt_port = free_port(), free_port()
    observer = tmp_path / "observer.json"
    env = dict(
        os.environ,
        BIOFEEDBACK_THERAPIST_SECRET=SECRET,
        BIOFEEDBACK_BROKER_OBSERVER_FILE=str(observer),
        PYTHONUNBUFFERED="1",
    )
    cmd = [
        sys.executable, "-m", "biofeedback.cli", "demo", "--speed", "4",
        "--http-port", str(http), "--mqtt-port", str(mqtt_port),
        "--data-dir", str(tmp_path), "--duration", str(SESSION_S),
    ]  # fmt: skip
    log = tmp_path / "demo.log"
    with log.open("w") as out:
        proc = await asyncio.create_subprocess_exec(
            *cmd, cwd=REPO_ROOT, env=env, stdout=out, stderr=asyncio.subprocess.STDOUT
        )
    try:
        await _wait_port(mqtt_port, proc)
        await _wait_port(http, proc)
        col = Collector(mqtt_port, observer)
        base = f"http://127.0.0.1:{http}"
        auth = {"Authorization": f"Bearer {SECRET}", "Origin": base}
        await col.until("ecg", 60)
        therapist = await _ws_kinds(f"{base}/ws?client={CLIENT}", auth, 4.0)
        async with (
            aiohttp.ClientSession() as s,
            s.get(f"{base}/api/link/{CLIENT}", headers=auth) as r,
        ):
            link = (await r.json())["path"]
        client = await _ws_kinds(f"{base}{link}/ws", {"Origin": base}, 4.0)
        async with asyncio.timeout(SESSION_S / 4 + 40):
            await proc.wait()
        got = col.close()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = log.read_text()
    assert proc.returncode == 0, text[-3000:]
    assert "Traceback" not in text, text[-3000:]

    # MQTT: the three raw-data topics beside the beats, each valid, at most 1 per data second.
    assert got.get("beat")
    for kind in ("ecg", "movement", "breathing"):
        assert got.get(kind), (kind, sorted(got))
        for p in got[kind]:
            payloads.validate(kind, p)
    for kind in ("movement", "breathing"):
        ts = [p["t"] for p in got[kind]]
        assert all(b - a >= 0.9 for a, b in itertools.pairwise(ts)), kind
    assert any(p["rate_bpm"] is not None for p in got["breathing"])

    # The dashboard: the therapist's page gets them, the client's screen none of them.
    assert {"ecg", "breathing", "movement"} <= set(therapist), therapist
    assert not {"ecg", "breathing", "movement"} & set(client), client

    # The recording: verdicts and movement as inputs, raw bytes and ECG samples.
    (session,) = list_sessions(tmp_path / "demo" / "recordings", CLIENT) or list_sessions(
        tmp_path / "recordings", CLIENT
    )
    names = [type(i).__name__ for i in iter_inputs(session)]
    assert names.count("EcgVerdictReport") >= 50, names.count("Notification")
    assert names.count("MovementReport") >= 50
    info = open_session(session)
    assert info.row_counts["ecg"] > 60 * 130
    assert {r["kind"] for r in info.rows("pmd")} >= {"ecg", "acc"}

    # Replay reproduces every decision; the raw tables come back from their bytes.
    res = replay_session(session, tmp_path / "replay", core_factory=core_from_recording)
    assert res.differences == ()
    assert replay_pmd(session).identical

    # BIDS: the ECG as physio.
    out = export_bids(session, tmp_path / "bids")
    (physio,) = out.rglob("*_recording-ecg_physio.tsv.gz")
    with gzip.open(physio, "rt") as fh:
        assert sum(1 for _ in fh) >= 0.9 * info.row_counts["ecg"]
