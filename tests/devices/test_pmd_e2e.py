"""`biofeedback run --device <H10>` end to end with raw data: the emulated H10 (bleak's real BlueZ
backend, private D-Bus) refuses the first ECG start for its MTU, then streams real ECG frames (from
the H10 recording in shared/data) and ACC beside its heart rate; the service publishes RR and
`ecg` on MQTT and records every frame's bytes and every ECG sample; SIGTERM stops the streams.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from biofeedback.devices import pmd
from biofeedback.recording import open_session
from biofeedback.recording.pmd_replay import replay_pmd
from biofeedback.recording.reader import list_sessions
from biofeedback.recording.replay import replay_session
from biofeedback.service import payloads
from biofeedback.service.commands_cli import core_from_recording
from tests.devices.fake_bluez import FakeBlueZ, FakeStrap, PmdSpec, StrapSpec
from tests.devices.pmd_frames import h10_ecg_frames
from tests.devices.test_ble_e2e import CLIENT, NAME, Watcher, _heart, _service, _tail
from tests.support import free_port

pytestmark = [pytest.mark.dbus, pytest.mark.slow]


async def _raw(strap: FakeStrap, frames: list[bytes], sent: list[bytes]) -> None:
    """ECG frames every 73/130 s and an ACC frame every 36/200 s while both streams run."""
    k = 0
    acc_t = 0
    while True:
        await asyncio.sleep(73 / 130)
        if 0 in strap.pmd_streaming and k < len(frames) and strap.pmd_notify(frames[k]):
            sent.append(frames[k])
            k += 1
        if 2 in strap.pmd_streaming:
            for _ in range(3):
                acc_t += round(36e9 / 200)
                strap.pmd_notify(pmd.encode_acc_raw(acc_t, [(10, -20, 1000)] * 36))


async def test_run_streams_rr_and_raw_ecg_to_mqtt_and_the_recording(
    fake_bluez: FakeBlueZ, tmp_path: Path, shared_data: Path
) -> None:
    strap = fake_bluez.add_strap(
        StrapSpec(name=NAME, address="A0:9E:1A:E2:E0:01", pmd=PmdSpec(mtu_refusals=1))
    )
    frames = h10_ecg_frames(shared_data, count=40)
    mqtt_port, http_port = free_port(), free_port()
    sent_rr: list[int] = []
    sent_ecg: list[bytes] = []
    async with _service(tmp_path, mqtt_port, http_port) as proc, asyncio.TaskGroup() as tg:
        heart = tg.create_task(_heart(strap, sent_rr))
        raw = tg.create_task(_raw(strap, frames, sent_ecg))
        w = Watcher(mqtt_port, tmp_path / "observer.json")
        try:
            await w.until("beats", lambda: len(w.of("beat")) >= 4)
            await w.until("ecg", lambda: len(w.of("ecg")) >= 4, within_s=40)
        finally:
            heart.cancel()
            raw.cancel()
            w.close()
        assert proc.returncode is None
    log_text = _tail(tmp_path / "service.log")
    assert proc.returncode == 0, log_text
    assert "Traceback" not in log_text, log_text

    # MQTT: RR as always, and ECG batches of the strap's own microvolts, in order.
    assert w.of("beat")
    ecg = w.of("ecg")
    for p in ecg:
        payloads.validate("ecg", p)
        assert p["device"] == NAME
    published = [v for p in ecg for v in p["uv"]]
    recorded_uv = [v for f in sent_ecg for v in pmd.decode_ecg(f).samples_uv]
    assert published == recorded_uv[: len(published)]
    # The strap: the first start refused for its MTU, retried; both streams stopped on SIGTERM.
    starts = [x for x in strap.pmd_writes if x[0] == 0x02]
    assert starts[:2] == [bytes.fromhex("02 00 00 01 82 00 01 01 0e 00")] * 2
    assert strap.pmd_writes[-2:] == [bytes.fromhex("03 00"), bytes.fromhex("03 02")]
    assert not strap.connected

    # The recording kept every frame's bytes and every ECG sample.
    (session,) = list_sessions(tmp_path / "recordings", CLIENT)
    info = open_session(session)
    rows = info.rows("pmd")
    assert [r["payload_hex"] for r in rows if r["kind"] == "ecg"] == sent_ecg
    assert any(r["kind"] == "acc" for r in rows)
    statuses = [r["detail"] for r in rows if r["kind"] == "status"]
    assert any("MTU too small, retrying" in s for s in statuses), statuses
    assert any(s.startswith("ECG streaming") for s in statuses), statuses
    assert [r["uv"] for r in info.rows("ecg")] == recorded_uv
    # ... and the raw tables are rebuilt exactly from the recorded bytes by the live decoder.
    replayed = replay_pmd(session)
    assert replayed.identical, replayed.differences
    assert replayed.ecg_samples == len(recorded_uv)
    # `biofeedback replay`: the session's decisions and its raw tables come out the same.
    res = replay_session(session, tmp_path / "replay", core_factory=core_from_recording)
    assert res.differences == ()
    assert open_session(res.replay).row_counts["ecg"] == len(recorded_uv)
