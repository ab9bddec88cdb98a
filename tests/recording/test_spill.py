"""A full disk: rows wait in a bounded memory budget; past it samples are dropped before events,
and what was dropped is logged and recorded in gaps.tsv once the disk takes rows again."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from biofeedback.errors import RecordingError
from biofeedback.exposure.messages import Role, SessionEvent, SessionState, Tick
from biofeedback.recording import SessionRecorder, iter_input_rows, open_session
from biofeedback.recording.synthetic import Step
from tests.recording.helpers import START_T, FullDisk, steps

SAMPLE_INPUTS = ("Notification", "Tick")


def _feed(rec: SessionRecorder, s: Step) -> None:
    rec.input(s.item, s.seq)
    for u in s.updates:
        rec.update(u)
    rec.events(s.events)


def _is_sample(s: Step) -> bool:
    return type(s.item).__name__ in SAMPLE_INPUTS


def _record_through_a_full_period(
    rec: SessionRecorder, ss: list[Step], full: range, set_full: object
) -> tuple[list[str], int]:
    """Feed `ss`, the disk full for the steps in `full`; returns the errors the recorder raised
    and the most memory it held."""
    errors: list[str] = []
    most = 0
    for i, s in enumerate(ss):
        if i == full.start:
            rec.flush()
            set_full(True)  # type: ignore[operator]
        if i == full.stop:
            set_full(False)  # type: ignore[operator]
            rec.flush()  # space is back: what was kept goes to disk now
        _feed(rec, s)
        most = max(most, rec.held_bytes)
        try:
            # A round per step, waited for: the writer keeps up, as it does at real time (the
            # loop here runs a thousand times faster than a session).
            rec.flush()
        except RecordingError as exc:
            errors.append(str(exc))
    rec.close()
    return errors, most


def test_full_disk_drops_samples_not_events_and_records_the_gap(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    budget = 120_000
    disk = FullDisk()
    rec = SessionRecorder(
        tmp_path, client_id="c", meta={"start_t": START_T}, spill_budget_bytes=budget, disk=disk
    )
    ss = steps(900, seed=21)
    full = range(200, 1300)  # steps (inputs) during which the disk is full

    def set_full(v: bool) -> None:
        disk.full = v

    errors, most = _record_through_a_full_period(rec, ss, full, set_full)
    assert disk.failed_writes > 0
    assert errors, "the full disk is reported"
    assert "No space left on device" in errors[0]
    assert ".tsv" in errors[0]
    assert most <= budget + 2_000  # the budget bounds memory (plus at most one moment's rows)

    info = open_session(rec.path)
    assert info.status == "complete"
    assert info.incomplete  # rows were dropped: the reader says so
    gaps = info.gaps()
    kinds = {(g["table"], g["kind"]) for g in gaps}
    assert ("inputs", "sample") in kinds
    assert ("beats", "sample") in kinds
    assert ("arousal", "sample") in kinds
    assert not [g for g in gaps if g["kind"] == "event"], "events fit in the budget: none dropped"
    assert all("No space left on device" in g["reason"] for g in gaps)
    assert all(f"budget of {budget} bytes" in g["reason"] for g in gaps)

    # Events and commands: every one is there, including those of the full period.
    all_events = [e for s in ss for e in s.events]
    assert [r["seq"] for r in info.events()] == [e.seq for e in all_events]
    assert any(full.start <= i < full.stop and s.events for i, s in enumerate(ss))
    recorded = dict(iter_input_rows(rec.path))
    events_in = [s for s in ss if not _is_sample(s)]
    assert all(s.seq in recorded for s in events_in)

    # Samples: all before the budget ran out and all after the disk came back; the dropped ones
    # are one run inside the full period, and gaps.tsv counts them exactly.
    dropped = [i for i, s in enumerate(ss) if _is_sample(s) and s.seq not in recorded]
    assert full.start < dropped[0]
    assert dropped[-1] == max(i for i in range(full.stop) if _is_sample(ss[i]))
    kept_between = [
        i for i in range(dropped[0], dropped[-1]) if _is_sample(ss[i]) and ss[i].seq in recorded
    ]
    assert kept_between == []
    (inputs_gap,) = [g for g in gaps if g["table"] == "inputs"]
    assert inputs_gap["rows"] == len(dropped)
    assert inputs_gap["from_t"] == ss[dropped[0]].item.t
    assert inputs_gap["to_t"] == ss[dropped[-1]].item.t
    (beats_gap,) = [g for g in gaps if g["table"] == "beats"]
    assert beats_gap["rows"] == sum(len(ss[i].updates) for i in dropped)
    n_updates = sum(len(s.updates) for s in ss)
    assert info.row_counts["beats"] == n_updates - beats_gap["rows"]
    assert info.row_counts["beats"] == info.row_counts["metrics"] == info.row_counts["arousal"]
    assert rec.dropped_rows["beats"] == beats_gap["rows"]

    logged = caplog.text
    assert "dropping samples until the disk takes rows again; events are kept" in logged
    assert "recorded in gaps.tsv" in logged
    assert "works again" in logged


def _event(seq: int, t: float) -> SessionEvent:
    return SessionEvent(
        seq,
        t,
        "checkin",
        Role.CLIENT,
        SessionState.EXPOSING,
        SessionState.EXPOSING,
        "a check-in",
        {"suds": 50},
    )


def test_events_are_dropped_only_after_samples_and_past_the_whole_budget(tmp_path: Path) -> None:
    budget = 20_000
    disk = FullDisk()
    rec = SessionRecorder(
        tmp_path, client_id="c", meta={"start_t": START_T}, spill_budget_bytes=budget, disk=disk
    )
    disk.full = True
    t = START_T
    seq = 0
    first_sample_drop = first_event_drop = None
    for i in range(600):
        t += 1.0
        seq += 1
        rec.input(Tick(t), seq)
        if first_sample_drop is None and rec.dropped_rows["inputs"]:
            first_sample_drop = i
        rec.events([_event(i + 1, t)])
        if first_event_drop is None and rec.dropped_rows["events"]:
            first_event_drop = i
        assert rec.held_bytes <= budget + 1_000
    assert first_sample_drop is not None
    assert first_event_drop is not None
    assert first_sample_drop < first_event_drop
    disk.full = False
    rec.flush()
    rec.input(Tick(t + 1), seq + 1)  # a sample taken again closes the gap
    rec.close()
    info = open_session(rec.path)
    by_kind = {(g["table"], g["kind"]): g for g in info.gaps()}
    assert set(by_kind) == {("inputs", "sample"), ("events", "event")}
    assert by_kind["events", "event"]["rows"] == rec.dropped_rows["events"]
    assert by_kind["events", "event"]["from_t"] == START_T + 1 + first_event_drop
    assert by_kind["inputs", "sample"]["from_t"] == START_T + 1 + first_sample_drop
    assert info.row_counts["events"] + rec.dropped_rows["events"] == 600
    # Everything kept is in order: the oldest events were kept, the newest dropped.
    assert [r["seq"] for r in info.events()] == list(range(1, info.row_counts["events"] + 1))


def test_a_gap_still_open_at_close_is_recorded(tmp_path: Path) -> None:
    disk = FullDisk()
    rec = SessionRecorder(
        tmp_path, client_id="c", meta={"start_t": START_T}, spill_budget_bytes=4_000, disk=disk
    )
    disk.full = True
    for i in range(200):
        rec.input(Tick(START_T + i), i)
    assert rec.dropped_rows["inputs"] > 0
    disk.full = False
    rec.close()  # no sample after the disk came back: close ends the gap
    info = open_session(rec.path)
    (gap,) = info.gaps()
    assert gap["rows"] == rec.dropped_rows["inputs"]
    assert gap["to_t"] == START_T + 199
    assert info.row_counts["inputs"] + gap["rows"] == 200


def test_a_budget_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match="spill_budget_bytes must be > 0"):
        SessionRecorder(tmp_path, client_id="c", meta={}, spill_budget_bytes=0)


# ---- a real filesystem that fills up ------------------------------------------------------------


@pytest.fixture
def small_filesystem(tmp_path: Path) -> Iterator[Path]:
    """A 512 KiB tmpfs of its own (needs root, as in CI); skipped where it cannot be mounted."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    mount = shutil.which("mount")
    if os.geteuid() != 0 or mount is None:
        pytest.skip("a real full filesystem needs root to mount a small tmpfs")
    r = subprocess.run(
        [mount, "-t", "tmpfs", "-o", "size=512k,mode=0755", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
        check=False,
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs (no CAP_SYS_ADMIN?): {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(path: Path) -> int:
    """Write `path` until the filesystem is full; the bytes written."""
    n = 0
    with open(path, "wb", buffering=0) as f:
        chunk = b"\0" * 4096
        while True:
            try:
                n += f.write(chunk) or 0
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                return n


def test_a_real_full_filesystem(small_filesystem: Path) -> None:
    budget = 96_000
    rec = SessionRecorder(
        small_filesystem, client_id="c", meta={"start_t": START_T}, spill_budget_bytes=budget
    )
    ss = steps(1200, seed=22)
    filler = small_filesystem / "filler"
    full = range(150, 1600)
    errors, most = _record_through_a_full_period(
        rec, ss, full, lambda v: _fill(filler) if v else filler.unlink()
    )
    assert any("No space left on device" in e for e in errors)
    assert most <= budget + 2_000
    info = open_session(rec.path)
    assert not info.partial_lines  # every failed append was cut back to a complete line
    gaps = info.gaps()
    assert gaps, "the budget ran out during the full period"
    assert {g["kind"] for g in gaps} == {"sample"}
    assert all("No space left on device" in g["reason"] for g in gaps)
    assert [r["seq"] for r in info.events()] == [e.seq for s in ss for e in s.events]
    recorded = dict(iter_input_rows(rec.path))
    assert all(s.seq in recorded for s in ss if not _is_sample(s))
    (inputs_gap,) = [g for g in gaps if g["table"] == "inputs"]
    assert len(recorded) + inputs_gap["rows"] == len(ss)
    assert list(recorded) == sorted(recorded)


def test_the_report_says_rows_were_dropped(tmp_path: Path) -> None:
    from biofeedback.recording.report import write_report

    disk = FullDisk()
    rec = SessionRecorder(
        tmp_path, client_id="c", meta={"start_t": START_T}, spill_budget_bytes=20_000, disk=disk
    )
    for i, s in enumerate(steps(300, seed=23)):
        disk.full = 100 <= i < 400
        _feed(rec, s)
        with contextlib.suppress(RecordingError):  # the full disk is reported; tested above
            rec.flush()
    rec.close()
    assert sum(rec.dropped_rows.values()) > 0
    page = write_report(rec.path, tmp_path / "report").read_text()
    assert "Rows were dropped while the disk was full (gaps.tsv)" in page
    assert "No space left on device" in page
    assert "stopped without closing" not in page
