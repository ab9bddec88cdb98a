"""`biofeedback run --device <H10>` end to end with the live ECG and chest stages (issue 13).

The emulated H10 (bleak's real BlueZ backend, private D-Bus) replays the real H10 record in real
time: its ECG frames and, at the moments the strap sent them, its own heart-rate notifications
with their RR, so the ECG and the RR agree as on the real strap. Beside them, chest acceleration
with 12 breaths a minute and a burst of movement. Checked at every stop of the data:

- MQTT: `beat`, `ecg`, `movement` (moving during and after the burst) and `breathing` (rate near
  12 /min), each payload valid against its schema;
- the dashboard: the therapist's WebSocket gets `ecg`, `breathing` and `movement` updates, the
  client's WebSocket none of them;
- the recording: the ECG's verdicts (`EcgVerdictReport`, normal and ectopic: the record has
  ventricular bigeminy) and the movement reports are session inputs; raw bytes and ECG samples;
- replay: `replay_session` reproduces every decision with the verdicts, `replay_pmd` the raw
  tables; the BIDS export has the ECG as physio.
"""

from __future__ import annotations

import asyncio
import gzip
import itertools
import math
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from biofeedback.devices import pmd
from biofeedback.devices.hrm import encode_heart_rate_measurement
from biofeedback.devices.readings import HeartRateMeasurement
from biofeedback.recording import open_session
from biofeedback.recording.export import export_bids
from biofeedback.recording.pmd_replay import replay_pmd
from biofeedback.recording.reader import iter_inputs, list_sessions
from biofeedback.recording.replay import replay_session
from biofeedback.service import payloads
from biofeedback.service.commands_cli import core_from_recording
from tests.devices.fake_bluez import FakeBlueZ, FakeStrap, PmdSpec, StrapSpec
from tests.devices.pmd_frames import h10_ecg_record
from tests.devices.test_ble_e2e import CLIENT, NAME, SECRET, Watcher, _service, _tail
from tests.support import free_port

pytestmark = [pytest.mark.dbus, pytest.mark.slow]

RUN_S = 55.0  # real seconds of data: breathing needs 30 s of signal before its first rate
BREATH_BPM = 12.0
MOVE_FROM_S, MOVE_TO_S = 8.0, 14.0
ECG_N = 73
ACC_N = 36
ACC_HZ = 200.0


def _record_notifications(shared_data: Path) -> Iterator[tuple[int, list[float]]]:
    """(sample index, RR ms of that notification) of the real record, in order."""
    import csv

    with (shared_data / "polar-h10-ecg-pvc" / "polar_h10.csv").open(newline="") as f:
        notes: list[tuple[int, list[float]]] = []
        for i, row in enumerate(csv.DictReader(f)):
            rr = row["rr_ms"]
            if rr in ("", "NA"):
                continue
            if row["hr_bpm"] not in ("", "NA") or not notes:
                notes.append((i, []))
            notes[-1][1].append(float(rr))
    yield from notes


def _acc(t_s: float) -> tuple[int, int, int]:
    """Chest acceleration (mg) at t s: gravity, a breathing tilt, movement in the burst."""
    b = 12.0 * math.sin(2 * math.pi * BREATH_BPM / 60 * t_s)
    sway = 250.0 * math.sin(2 * math.pi * 1.5 * t_s) if MOVE_FROM_S <= t_s < MOVE_TO_S else 0.0
    return (round(20 + 0.3 * b + sway), round(-30 + sway / 2), round(1000 + b))


async def _h10(strap: FakeStrap, shared_data: Path, sent_ecg: list[bytes]) -> None:
    """The record in real time: each ECG frame when its last sample is due, the strap's own
    heart-rate notifications at their rows, ACC frames at 200 Hz; all once streaming."""
    record = h10_ecg_record(shared_data)
    notes = list(_record_notifications(shared_data))
    # the fake strap offers no event for it: the service starts both streams within seconds
    while not (0 in strap.pmd_streaming and 2 in strap.pmd_streaming):  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    t0 = time.monotonic()
    ns0 = record[0][0]
    k = 0  # next ECG frame
    n = 0  # next notification
    acc_k = 0

    def due(sensor_ns: int) -> float:
        return (sensor_ns - ns0) / 1e9

    while True:
        now = time.monotonic() - t0
        while (k + 1) * ECG_N <= len(record) and (
            record[(k + 1) * ECG_N - 1][0] - ns0
        ) / 1e9 <= now:
            chunk = record[k * ECG_N : (k + 1) * ECG_N]
            frame = pmd.encode_ecg(chunk[-1][0], [uv for _, uv in chunk])
            if strap.pmd_notify(frame):
                sent_ecg.append(frame)
            k += 1
        while n < len(notes) and due(record[notes[n][0]][0]) <= now:
            rrs = notes[n][1]
            hr = max(30, min(220, round(60000 / rrs[-1])))
            m = HeartRateMeasurement(hr, True, True, None, tuple(round(r * 1.024) for r in rrs))
            strap.notify(encode_heart_rate_measurement(m))
            n += 1
        while (acc_k + ACC_N) / ACC_HZ <= now:
            ts = [(acc_k + i) / ACC_HZ for i in range(ACC_N)]
            strap.pmd_notify(pmd.encode_acc_raw(ns0 + round(ts[-1] * 1e9), [_acc(x) for x in ts]))
            acc_k += ACC_N
        await asyncio.sleep(0.02)


async def _therapist_ws_kinds(http_port: int, seconds: float) -> list[str]:
    """The update kinds one dashboard WebSocket got in `seconds`."""
    base = f"http://127.0.0.1:{http_port}"
    auth = {"Authorization": f"Bearer {SECRET}", "Origin": base}
    kinds: list[str] = []
    async with (
        aiohttp.ClientSession() as s,
        s.ws_connect(f"{base}/ws?client={CLIENT}", headers=auth) as ws,
    ):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                msg = await ws.receive_json(timeout=max(0.05, end - time.monotonic()))
            except TimeoutError:
                break
            if msg.get("type") == "update":
                kinds.append(str(msg.get("kind")))
    return kinds


async def _client_ws_kinds(http_port: int, seconds: float) -> list[str]:
    """The update kinds the client's own screen got (its link from the therapist's API)."""
    base = f"http://127.0.0.1:{http_port}"
    auth = {"Authorization": f"Bearer {SECRET}", "Origin": base}
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{base}/api/link/{CLIENT}", headers=auth) as r:
            link = (await r.json())["path"]
        kinds: list[str] = []
        async with s.ws_connect(f"{base}{link}/ws", headers={"Origin": base}) as ws:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                try:
                    msg = await ws.receive_json(timeout=max(0.05, end - time.monotonic()))
                except TimeoutError:
                    break
                if msg.get("type") == "hello":
                    assert msg.get("role") == "client"
                if msg.get("type") == "update":
                    kinds.append(str(msg.get("kind")))
    return kinds


async def test_run_streams_verdicts_movement_and_breathing_end_to_end(
    fake_bluez: FakeBlueZ, tmp_path: Path, shared_data: Path
) -> None:
    strap = fake_bluez.add_strap(
        StrapSpec(name=NAME, address="A0:9E:1A:E2:E0:02", pmd=PmdSpec(mtu_refusals=1))
    )
    mqtt_port, http_port = free_port(), free_port()
    sent_ecg: list[bytes] = []
    async with _service(tmp_path, mqtt_port, http_port) as proc, asyncio.TaskGroup() as tg:
        h10 = tg.create_task(_h10(strap, shared_data, sent_ecg))
        w = Watcher(mqtt_port, tmp_path / "observer.json")
        try:
            await w.until("ecg", lambda: len(w.of("ecg")) >= 2, within_s=60)
            therapist = await _therapist_ws_kinds(http_port, 4.0)
            client = await _client_ws_kinds(http_port, 4.0)
            await w.until(
                "a breathing rate",
                lambda: any(p["rate_bpm"] is not None for p in w.of("breathing")),
                within_s=RUN_S,
            )
        finally:
            h10.cancel()
            w.close()
        assert proc.returncode is None
    log_text = _tail(tmp_path / "service.log")
    assert proc.returncode == 0, log_text
    assert "Traceback" not in log_text, log_text
    assert "stage failed" not in log_text, log_text

    # MQTT: beats as always, and the raw data's three topics, each valid.
    assert w.of("beat")
    for kind in ("ecg", "movement", "breathing"):
        got = w.of(kind)
        assert got, kind
        for p in got:
            payloads.validate(kind, p)
    moves = w.of("movement")
    assert any(p["moving"] for p in moves)
    assert any(p["level"] == "still" for p in moves)
    rates = [p["rate_bpm"] for p in w.of("breathing") if p["rate_bpm"] is not None]
    assert abs(rates[-1] - BREATH_BPM) <= 1.0, rates
    # at most one breathing and one movement message per second of data
    for kind in ("movement", "breathing"):
        ts = [p["t"] for p in w.of(kind)]
        assert all(b - a >= 0.9 for a, b in itertools.pairwise(ts)), (kind, ts)

    # The dashboard: the therapist's page gets them, the client's screen never does.
    assert {"ecg", "movement"} <= set(therapist), therapist
    assert not {"ecg", "breathing", "movement"} & set(client), client

    # The recording: the ECG's verdicts and the movement reports are session inputs.
    (session,) = list_sessions(tmp_path / "recordings", CLIENT)
    inputs = list(iter_inputs(session))
    names = [type(i).__name__ for i in inputs]
    verdicts = [i for i in inputs if type(i).__name__ == "EcgVerdictReport"]
    assert len(verdicts) >= 20, names.count("Notification")
    assert {v.verdict for v in verdicts} == {"normal", "ectopic"}  # the record's bigeminy
    assert names.count("MovementReport") >= 20
    info = open_session(session)
    assert info.row_counts["ecg"] == sum(len(pmd.decode_ecg(f).samples_uv) for f in sent_ecg)
    assert any(r["kind"] == "acc" for r in info.rows("pmd"))

    # Replay: the same decisions with the same verdicts; raw tables rebuilt from their bytes.
    res = replay_session(session, tmp_path / "replay", core_factory=core_from_recording)
    assert res.differences == ()
    assert replay_pmd(session).identical

    # BIDS: the ECG exported as physio beside the beats.
    out = export_bids(session, tmp_path / "bids")
    (physio,) = out.rglob("*_recording-ecg_physio.tsv.gz")
    with gzip.open(physio, "rt") as fh:
        assert sum(1 for _ in fh) >= 0.9 * info.row_counts["ecg"]
