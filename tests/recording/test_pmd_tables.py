"""pmd.tsv and ecg.tsv: a strap's raw data recorded losslessly (bytes, samples, gaps, status)."""

from __future__ import annotations

from pathlib import Path

from biofeedback.devices import pmd
from biofeedback.devices.pmd_readings import PmdStatus, PmdStream
from biofeedback.devices.pmd_stream import PmdFrameReader
from biofeedback.recording import open_session
from biofeedback.recording.recorder import SessionRecorder

START_T = 1_700_000_000.0


def test_raw_frames_samples_gaps_and_status_are_recorded(tmp_path: Path) -> None:
    reader = PmdFrameReader("Polar H10 X")
    ecg_frames = [
        pmd.encode_ecg(10**12 + k * round(73e9 / 130), [k * 100 + i - 36 for i in range(73)])
        for k in range(5)
    ]
    readings = [PmdStatus("Polar H10 X", START_T, PmdStream.ECG, "ECG streaming")]
    for k, raw in enumerate(ecg_frames):
        if k == 2:
            continue  # lost: the next frame carries a gap
        readings += reader.read(START_T + 1 + k * 0.56, raw)
    readings += reader.read(START_T + 4, ecg_frames[0][:50])  # cut inside a sample
    readings += reader.read(START_T + 4.1, pmd.encode_acc_raw(10**12, [(1, 2, 1000)] * 36))
    readings.append(PmdStatus("Polar H10 X", START_T + 5, PmdStream.ACC, "refused", ok=False))
    with SessionRecorder(tmp_path, client_id="c1", meta={"start_t": START_T}) as rec:
        for r in readings:
            rec.pmd(r)
    info = open_session(rec.path)
    rows = info.rows("pmd")
    assert [r["kind"] for r in rows] == [
        "status", "ecg", "ecg", "gap", "ecg", "ecg", "malformed", "acc", "status",
    ]  # fmt: skip
    ecg_rows = [r for r in rows if r["kind"] == "ecg"]
    assert [r["payload_hex"] for r in ecg_rows] == [ecg_frames[k] for k in (0, 1, 3, 4)]
    gap = rows[3]
    assert gap["samples"] == 73
    assert gap["stream"] == "ecg"
    assert rows[6]["payload_hex"] == ecg_frames[0][:50]
    assert "multiple of 3" in rows[6]["detail"]
    assert rows[-1]["detail"] == "failed: refused"
    assert rows[7]["acc_factor"] == 1.0
    # ecg.tsv: every sample of every received frame, in order, with its time.
    ecg = info.rows("ecg")
    assert [r["uv"] for r in ecg] == [
        v for k in (0, 1, 3, 4) for v in pmd.decode_ecg(ecg_frames[k]).samples_uv
    ]
    times = [r["t"] for r in ecg]
    assert times == sorted(times)
    assert ecg_rows[0]["first_t"] == times[0]
    assert ecg_rows[-1]["last_t"] == times[-1]
