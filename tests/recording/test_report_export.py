"""Summary, HTML/PNG report, client progress report and BIDS export of a recording."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest

from biofeedback.errors import RecordingError
from biofeedback.recording import open_session
from biofeedback.recording.export import export_bids
from biofeedback.recording.report import write_client_report, write_report
from biofeedback.recording.summary import summarize
from tests.recording.helpers import START_T, record_scripted


def test_summary_tells_the_story(tmp_path: Path) -> None:
    s = summarize(open_session(record_scripted(tmp_path)))
    assert [p.reason for p in s.pauses] == ["arousal", "client"]
    assert s.pauses[0].time_to_recover_s == 60.0
    assert s.pauses[0].recovered_t == START_T + 120
    assert s.pauses[1].recovered_t is None
    assert [(v.step, v.before, v.after) for v in s.step_suds] == [(0, 40, 20)]
    assert s.steps_started == (0,)
    assert s.steps_completed == (0,)
    (bout,) = s.guidance
    assert (bout.start, bout.end) == (START_T + 60, START_T + 120)
    assert bout.coherence_n > 0
    assert bout.coherence_mean is not None
    assert 0 <= bout.coherence_mean <= 1
    exposing = [
        (iv.start - START_T, iv.end - START_T) for iv in s.intervals if iv.state == "exposing"
    ]
    assert exposing == [(20, 60), (135, 170), (175, 200)]
    assert s.arousal_mean_exposing is not None


def test_report_writes_html_linking_nonempty_pngs(tmp_path: Path) -> None:
    html = write_report(record_scripted(tmp_path / "rec"), tmp_path / "out")
    text = html.read_text()
    imgs = re.findall(r'<img src="([^"]+)"', text)
    assert sorted(imgs) == ["coherence.png", "recovery.png", "suds.png", "timeline.png"]
    for name in imgs:
        data = (html.parent / name).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        assert len(data) > 5000
    assert "did not recover" in text
    assert "60.0 s" in text
    assert "incomplete" not in text


def test_report_of_a_crashed_recording_says_so(tmp_path: Path) -> None:
    path = record_scripted(tmp_path / "rec")
    side = path / "session.json"
    side.write_text(side.read_text().replace('"status": "complete"', '"status": "recording"'))
    text = write_report(path, tmp_path / "out").read_text()
    assert "This recording is incomplete" in text


def test_client_report_across_sessions(tmp_path: Path) -> None:
    for seed in (1, 2, 3):
        record_scripted(tmp_path / "rec", seed=seed)
    out = write_client_report(tmp_path / "rec", "client-1", tmp_path / "out")
    text = out.read_text()
    assert text.count("/report.html") == 3
    for href in re.findall(r'href="([^"]+)"', text):
        assert (out.parent / href).is_file()
    png = out.parent / "progress-client-1.png"
    assert png.stat().st_size > 5000
    with pytest.raises(RecordingError, match="no recorded sessions"):
        write_client_report(tmp_path / "rec", "nobody", tmp_path / "out2")


def test_bids_export_layout(tmp_path: Path) -> None:
    src = record_scripted(tmp_path / "rec")
    beh = export_bids(src, tmp_path / "bids")
    info = open_session(src)
    ses = info.session_id.replace("-", "")
    assert beh == tmp_path / "bids" / "sub-client1" / f"ses-{ses}" / "beh"
    stem = f"sub-client1_ses-{ses}_task-exposure"
    names = sorted(p.name for p in beh.iterdir())
    assert names == sorted(
        [
            f"{stem}_events.tsv",
            f"{stem}_events.json",
            f"{stem}_recording-cardiac_physio.tsv.gz",
            f"{stem}_recording-cardiac_physio.json",
        ]
    )
    root = tmp_path / "bids"
    desc = json.loads((root / "dataset_description.json").read_text())
    assert desc["BIDSVersion"].startswith("1.")
    assert (root / "participants.tsv").read_text().splitlines() == ["participant_id", "sub-client1"]
    side = json.loads((beh / f"{stem}_recording-cardiac_physio.json").read_text())
    assert side["SamplingFrequency"] == 4.0
    cols = side["Columns"]
    assert cols == ["hr_bpm", "rr_ms", "rmssd_ms", "arousal", "cardiac_beat"]
    rows = gzip.decompress((beh / f"{stem}_recording-cardiac_physio.tsv.gz").read_bytes())
    lines = rows.decode().splitlines()
    assert all(len(ln.split("\t")) == len(cols) for ln in lines)  # BIDS physio: no header row
    beats = info.beats()
    span = beats["t"][-1] - beats["t"][0]
    assert len(lines) == int(span * 4) + 1
    assert side["StartTime"] == pytest.approx(beats["t"][0] - START_T)
    # One beat per 0.25 s sample at most (HR < 240), so every beat has its own mark.
    assert sum(float(ln.split("\t")[4]) for ln in lines) == len(beats["t"])
    ev = (beh / f"{stem}_events.tsv").read_text().splitlines()
    assert ev[0].split("\t")[:3] == ["onset", "duration", "trial_type"]
    onsets = [float(r.split("\t")[0]) for r in ev[1:]]
    assert onsets == sorted(onsets)
    suds = [r.split("\t")[9] for r in ev[1:] if r.split("\t")[2] == "checkin"]
    assert suds == ["40", "20"]
    raw = root / "sourcedata" / "sub-client1" / f"ses-{ses}"
    assert (raw / "inputs.tsv").read_bytes() == (src / "inputs.tsv").read_bytes()
    # A second export of the same session replaces it; the dataset files stay valid.
    export_bids(src, root)
    assert (root / "participants.tsv").read_text().splitlines() == ["participant_id", "sub-client1"]
