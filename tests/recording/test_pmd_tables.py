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


def test_bids_export_has_the_raw_ecg_as_physio_with_gaps_as_na(tmp_path: Path) -> None:
    import gzip
    import json

    from biofeedback.recording.export import export_bids

    reader = PmdFrameReader("Polar H10 X")
    frames = [
        pmd.encode_ecg(10**12 + round(k * 73e9 / 130), [k * 1000 + i for i in range(73)])
        for k in range(6)
    ]
    with SessionRecorder(tmp_path / "rec", client_id="c1", meta={"start_t": START_T}) as rec:
        for k, raw in enumerate(frames):
            if k == 3:
                continue  # lost
            for r in reader.read(START_T + 1 + k * 73 / 130 + 0.02, raw):
                rec.pmd(r)
    beh = export_bids(rec.path, tmp_path / "bids")
    (physio,) = beh.glob("*_recording-ecg_physio.tsv.gz")
    with gzip.open(physio, "rt") as fh:
        lines = fh.read().splitlines()
    assert len(lines) == 6 * 73  # uniform grid: the lost frame's samples are n/a
    assert lines[3 * 73 : 4 * 73] == ["n/a"] * 73
    assert lines[0] == "0.000"
    assert lines[4 * 73] == "4.000"  # 4000 µV
    side = json.loads(physio.with_name(physio.name.replace(".tsv.gz", ".json")).read_text())
    assert side["Columns"] == ["cardiac"]
    assert side["cardiac"]["Units"] == "mV"
    assert abs(side["SamplingFrequency"] - 130) < 0.5
    assert abs(side["StartTime"] - 1.02) < 0.6


def test_replay_rebuilds_the_raw_tables_from_the_bytes(tmp_path: Path) -> None:
    from biofeedback.recording.pmd_replay import replay_pmd

    reader = PmdFrameReader("Polar H10 X")
    frames = [
        pmd.encode_ecg(10**12 + round(k * 73e9 / 130), [k * 10 - i for i in range(73)])
        for k in range(8)
    ]
    with SessionRecorder(tmp_path, client_id="c1", meta={"start_t": START_T}) as rec:
        rec.pmd(PmdStatus("Polar H10 X", START_T, PmdStream.ECG, "ECG streaming"))
        for k, raw in enumerate(frames):
            if k == 5:
                continue
            if k == 6:
                raw = raw[:41]  # cut inside a sample: malformed
            for r in reader.read(START_T + 1 + k * 0.5 + (k % 3) * 0.07, raw):
                rec.pmd(r)
        rec.pmd(reader.read(START_T + 9, pmd.encode_acc_raw(10**12, [(1, 2, 3)] * 36))[0])
    result = replay_pmd(rec.path)
    assert result.identical, result.differences
    assert result.frames == 8
    assert result.ecg_samples == 6 * 73
    # A recording that no longer matches its bytes is told apart, row by row.
    ecg = rec.path / "ecg.tsv"
    lines = ecg.read_text().splitlines()
    t, uv = lines[5].split("\t")
    lines[5] = f"{t}\t{int(uv) + 1}"
    ecg.write_text("\n".join(lines) + "\n")
    bad = replay_pmd(rec.path)
    assert not bad.identical
    assert bad.differences[0].startswith("ecg.tsv row 5: recorded")


def test_replay_session_rebuilds_and_compares_the_raw_tables(tmp_path: Path) -> None:
    from biofeedback.recording.replay import replay_session
    from tests.recording.toy_core import ToyCore

    reader = PmdFrameReader("Polar H10 X")
    frames = [
        pmd.encode_ecg(10**12 + round(k * 73e9 / 130), [k - i for i in range(73)]) for k in range(6)
    ]
    with SessionRecorder(tmp_path / "rec", client_id="c1", meta={"start_t": START_T}) as rec:
        rec.pmd(PmdStatus("Polar H10 X", START_T, PmdStream.ECG, "ECG streaming"))
        rec.pmd(PmdStatus("Polar H10 X", START_T, PmdStream.ACC, "INVALID_MTU", ok=False))
        for k, raw in enumerate(frames):
            if k != 2:
                for r in reader.read(START_T + 1 + k * 0.56, raw):
                    rec.pmd(r)
    res = replay_session(rec.path, tmp_path / "out", core_factory=lambda info: ToyCore())
    assert res.identical, res.differences
    assert open_session(res.replay).rows("ecg") == open_session(rec.path).rows("ecg")
    # A changed sample is found by the replay's comparison.
    ecg = rec.path / "ecg.tsv"
    lines = ecg.read_text().splitlines()
    t, uv = lines[9].split("\t")
    lines[9] = f"{t}\t{int(uv) - 1}"
    ecg.write_text("\n".join(lines) + "\n")
    bad = replay_session(rec.path, tmp_path / "out2", core_factory=lambda info: ToyCore())
    assert any(d.startswith("ecg.tsv line 10: uv") for d in bad.differences), bad.differences


def test_bids_export_has_the_chest_acceleration_as_physio_with_gaps_as_na(tmp_path: Path) -> None:
    import gzip
    import json

    from biofeedback.recording.export import export_bids

    reader = PmdFrameReader("Polar H10 X")
    per_frame = 36  # raw ACC frame of the H10 at 200 Hz: 36 samples, 0.18 s
    frames = [
        pmd.encode_acc_raw(
            10**12 + round(k * per_frame * 1e9 / 200),
            [(k, -k, 1000 + i) for i in range(per_frame)],
        )
        for k in range(6)
    ]
    with SessionRecorder(tmp_path / "rec", client_id="c1", meta={"start_t": START_T}) as rec:
        for k, raw in enumerate(frames):
            if k == 2:
                continue  # lost
            for r in reader.read(START_T + 1 + k * per_frame / 200 + 0.02, raw):
                rec.pmd(r)
    beh = export_bids(rec.path, tmp_path / "bids")
    assert not list(beh.glob("*_recording-ecg_physio.tsv.gz"))  # no ECG streamed
    (physio,) = beh.glob("*_recording-acc_physio.tsv.gz")
    with gzip.open(physio, "rt") as fh:
        rows = [line.split("\t") for line in fh.read().splitlines()]
    assert len(rows) == 6 * per_frame  # uniform grid: the lost frame's samples are n/a
    assert rows[2 * per_frame : 3 * per_frame] == [["n/a"] * 3] * per_frame
    assert rows[0] == ["0.0000", "0.0000", "1.0000"]
    assert rows[5 * per_frame + 1] == ["0.0050", "-0.0050", "1.0010"]  # g from mg
    side = json.loads(physio.with_name(physio.name.replace(".tsv.gz", ".json")).read_text())
    assert side["Columns"] == ["accel_x", "accel_y", "accel_z"]
    assert side["accel_z"]["Units"] == "g"
    assert abs(side["SamplingFrequency"] - 200) < 2
