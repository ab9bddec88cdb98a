"""Recorder and reader: what is written reads back identically, folders are never reused."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from biofeedback.devices.readings import Notification
from biofeedback.errors import RecordingError
from biofeedback.exposure.messages import Role, SessionEvent, SessionState, Tick
from biofeedback.recording import (
    SessionRecorder,
    iter_input_rows,
    iter_inputs,
    list_sessions,
    open_session,
)
from biofeedback.recording.schema import TABLES
from tests.recording.helpers import START_T, record, steps


def test_inputs_round_trip_with_real_parse_path(tmp_path: Path) -> None:
    ss = steps(300, seed=3)
    path = record(tmp_path, ss)
    back = list(iter_input_rows(path))
    assert [seq for seq, _ in back] == [s.seq for s in ss]
    assert [item for _, item in back] == [s.item for s in ss]
    notes = [i for _, i in back if isinstance(i, Notification)]
    assert any(n.error for n in notes), "the synthetic stream holds a malformed payload"
    assert sum(len(n.beats) for n in notes) > 250


def test_outputs_read_back(tmp_path: Path) -> None:
    ss = steps(300, seed=4)
    path = record(tmp_path, ss)
    info = open_session(path)
    assert info.complete
    assert not info.incomplete
    ups = [u for s in ss for u in s.updates]
    assert info.row_counts["beats"] == len(ups) == info.row_counts["metrics"]
    assert info.row_counts["arousal"] == len(ups)
    assert info.row_counts["frequency"] == sum(u.frequency is not None for u in ups)
    beats = info.beats()
    assert beats["t"].tolist() == [u.t for u in ups]
    assert beats["rr_ms"].tolist() == [u.beat.rr_ms for u in ups if u.beat]
    assert beats["corrected"].tolist() == [float(u.beat.corrected) for u in ups if u.beat]
    ar = info.arousal()
    assert ar["value"].tolist() == [u.arousal.value for u in ups]
    m = info.metrics()
    short = [u.short.rmssd_ms if u.short else math.nan for u in ups]
    assert [
        a == b or (math.isnan(a) and math.isnan(b))
        for a, b in zip(m["short_rmssd_ms"].tolist(), short, strict=True)
    ] == [True] * len(ups)
    evs = [e for s in ss for e in s.events]
    rows = info.events()
    assert [r["seq"] for r in rows] == [e.seq for e in evs]
    assert [r["values"] for r in rows] == [dict(e.values) for e in evs]
    assert rows[0]["onset"] == evs[0].t - START_T
    assert rows[0]["from_state"] == evs[0].from_state.value


def test_compressed_recording_reads_the_same(tmp_path: Path) -> None:
    ss = steps(120, seed=5)
    plain = record(tmp_path / "a", ss)
    gz = record(tmp_path / "b", ss, compress=True)
    assert sorted(p.name for p in gz.iterdir()) == sorted(
        ["session.json"] + [t.filename + ".gz" for t in TABLES]
    )
    assert list(iter_inputs(gz)) == list(iter_inputs(plain))
    a, b = open_session(plain), open_session(gz)
    assert a.row_counts == b.row_counts
    assert b.sidecar["compressed"] is True
    for t in TABLES:
        assert a.rows(t.name) == b.rows(t.name)


def test_sidecar_meta_snapshot_and_status(tmp_path: Path) -> None:
    rec = SessionRecorder(tmp_path, client_id="c7", meta={"start_t": START_T, "protocol": "p1"})
    rec.set_meta(device={"name": "H10", "firmware": "5.0"}, battery_pct=80)
    rec.flush()  # set_meta asks the writer at once; flush waits for it
    side = json.loads((rec.path / "session.json").read_text())
    assert side["meta"]["device"]["firmware"] == "5.0"
    assert side["status"] == "recording"
    rec.snapshot(
        SessionEvent(
            1,
            START_T,
            "x",
            Role.SYSTEM,
            SessionState.READY,
            SessionState.EXPOSING,
            "r",
            {"k": float("nan")},
        )
    )
    rec.input(Tick(START_T + 1), 1)
    rec.flush()
    side = json.loads((rec.path / "session.json").read_text())
    assert side["snapshot"]["to_state"] == "exposing"
    assert side["snapshot"]["values"] == {"k": None}  # NaN is not JSON
    assert side["rows"]["inputs"] == 1
    rec.close()
    info = open_session(rec.path)
    assert info.status == "complete"
    assert info.meta["protocol"] == "p1"
    assert info.meta["battery_pct"] == 80
    assert info.sidecar["files"]["beats.tsv"]["rr_ms"]["Units"] == "ms"
    with pytest.raises(RecordingError, match="closed"):
        rec.input(Tick(START_T + 2), 2)


def test_exception_in_session_marks_interrupted(tmp_path: Path) -> None:
    rec = SessionRecorder(tmp_path, client_id="c", meta={})
    rec.input(Tick(5.0), 1)

    def session_that_fails() -> None:
        with rec:
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        session_that_fails()
    info = open_session(rec.path)
    assert info.sidecar["end_reason"] == "ZeroDivisionError"
    assert info.status == "interrupted"
    assert info.incomplete
    assert info.start_t == 5.0  # no start_t in meta: the first input's time
    assert info.row_counts["inputs"] == 1


def test_session_ids_and_no_overwrite(tmp_path: Path) -> None:
    a = SessionRecorder(tmp_path, client_id="c", meta={"start_t": START_T})
    b = SessionRecorder(tmp_path, client_id="c", meta={"start_t": START_T})
    assert a.session_id == "20251124T160000Z"
    assert b.session_id == "20251124T160000Z-2"
    c = SessionRecorder(tmp_path, client_id="d", meta={})
    d = SessionRecorder(tmp_path, client_id="d", meta={})
    assert (c.session_id, d.session_id) == ("001", "002")
    with pytest.raises(RecordingError, match="refusing to overwrite"):
        SessionRecorder(tmp_path, client_id="c", session_id=a.session_id, meta={})
    for r in (a, b, c, d):
        r.close()
    assert list_sessions(tmp_path, "c") == [a.path, b.path]
    assert not [p for p in (tmp_path / "c").iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("bad", ["", "../x", "a/b", "naïve", "-lead", "x" * 65, "a b"])
def test_bad_ids_are_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(RecordingError, match="cannot name a recording folder"):
        SessionRecorder(tmp_path, client_id=bad, meta={})
    with pytest.raises(RecordingError, match="cannot name a recording folder"):
        SessionRecorder(tmp_path, client_id="ok", session_id=bad, meta={})


def test_flush_is_at_most_once_a_second(tmp_path: Path) -> None:
    # Without the writer thread the write happens inside flush_if_due, so sizes can be checked
    # right after it; the threaded writer is asked by the same cadence (test_writer_thread).
    rec = SessionRecorder(tmp_path, client_id="c", meta={}, writer_thread=False)
    inputs = rec.path / "inputs.tsv"
    size0 = inputs.stat().st_size
    rec.flush_if_due(100.0)  # first call flushes (nothing pending yet)
    rec.input(Tick(1.0), 1)
    rec.flush_if_due(100.5)
    assert inputs.stat().st_size == size0
    assert rec.pending_rows == 1
    rec.flush_if_due(101.0)
    assert inputs.stat().st_size > size0
    assert rec.pending_rows == 0
    assert rec.durable_rows["inputs"] == 1
    rec.close()


def test_unknown_input_type_is_an_error(tmp_path: Path) -> None:
    with (
        SessionRecorder(tmp_path, client_id="c", meta={}) as rec,
        pytest.raises(RecordingError, match="cannot record input of type str"),
    ):
        rec.input("hello", 1)


def test_beat_times_survive_a_timer_reset_and_foreign_timing(tmp_path: Path) -> None:
    from dataclasses import replace

    from biofeedback.devices.hrm import encode_heart_rate_measurement
    from biofeedback.devices.readings import HeartRateMeasurement
    from biofeedback.devices.timing import BeatTimer

    timer = BeatTimer("dev")
    pay = encode_heart_rate_measurement(HeartRateMeasurement(60, True, True, None, (1024, 1024)))
    a = timer.notification(10.0, pay)
    b = timer.notification(10.5, pay)  # pushed forward: its beats overlap the previous ones
    timer.reset()  # a reconnect restarts the chain
    c = timer.notification(10.6, pay)
    # A source that timed beats its own way (not BeatTimer): the recorded times must win.
    d0 = timer.notification(20.0, pay)
    d = replace(d0, beats=tuple(replace(x, t=x.t + 0.25) for x in d0.beats))
    e = timer.notification(21.0, pay)
    items = [a, b, c, d, e]
    with SessionRecorder(tmp_path, client_id="c", meta={}) as rec:
        for i, it in enumerate(items):
            rec.input(it, i)
    assert c.beats[0].t < b.beats[-1].t  # the reset really changed the timing
    assert list(iter_inputs(rec.path)) == items


def test_stopping_the_service_ends_the_session_normally(tmp_path: Path) -> None:
    rec = SessionRecorder(tmp_path, client_id="c", meta={})

    def stopped_by_ctrl_c() -> None:
        with rec:
            rec.input(Tick(5.0), 1)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        stopped_by_ctrl_c()
    info = open_session(rec.path)
    assert info.complete
    assert info.sidecar["end_reason"] == "KeyboardInterrupt"


def test_cannot_create_is_a_recording_error_naming_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "recordings"
    blocker.write_text("not a folder")
    with pytest.raises(RecordingError, match=r"cannot create the recording folder .*recordings"):
        SessionRecorder(blocker, client_id="c", meta={})


def test_a_crash_while_compressing_leaves_a_readable_recording(tmp_path: Path) -> None:
    import gzip
    import shutil

    path = record(tmp_path, steps(30, seed=6))
    beats = path / "beats.tsv"
    # As if killed between writing beats.tsv.gz and removing beats.tsv, with a temp file left.
    with open(beats, "rb") as fi, gzip.open(path / "beats.tsv.gz", "wb") as fo:
        shutil.copyfileobj(fi, fo)
    (path / "inputs.tsv.gz.tmp").write_bytes(b"\x1f\x8b partial")
    info = open_session(path)
    assert info.files["beats"] == beats
    assert info.complete
    assert list(iter_inputs(path)) == [s.item for s in steps(30, seed=6)]
