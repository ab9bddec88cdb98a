"""Replay: the recorded inputs, fed to a fresh deterministic core, reproduce every output."""

from __future__ import annotations

import time
from pathlib import Path

from biofeedback.recording import SessionRecorder, open_session
from biofeedback.recording.replay import compare_sessions, record_output, replay_session
from tests.recording.helpers import START_T, steps
from tests.recording.toy_core import ToyCore


def _live(root: Path, core: ToyCore, duration_s: float = 300) -> Path:
    """Run the core over a synthetic stream while recording, as the runner does."""
    with SessionRecorder(root, client_id="toy", meta={"start_t": START_T}) as rec:
        for s in steps(duration_s, seed=11):
            out = core.feed(s.item)
            rec.input(s.item, s.seq)
            record_output(rec, out)
            rec.flush_if_due(time.monotonic())
        rec.snapshot(core.snapshot)
    return rec.path


def test_replay_reproduces_the_recording(tmp_path: Path) -> None:
    src = _live(tmp_path / "rec", ToyCore())
    res = replay_session(src, tmp_path / "rep", core_factory=lambda info: ToyCore())
    assert res.identical, res.differences
    assert res.inputs == open_session(src).row_counts["inputs"]
    a, b = open_session(src), open_session(res.replay)
    assert a.row_counts == b.row_counts
    assert a.row_counts["events"] > 0
    assert a.row_counts["beats"] > 200
    assert b.meta["replay_of"] == str(src.resolve())
    assert b.snapshot == a.snapshot
    assert res.replay.name == f"{a.session_id}-replay"


def test_a_nondeterministic_core_is_caught(tmp_path: Path) -> None:
    src = _live(tmp_path / "rec", ToyCore())
    res = replay_session(src, tmp_path / "rep", core_factory=lambda info: ToyCore(jitter=True))
    assert not res.identical
    # Line 51 is the 50th row after the header: the one beat the jittery core changed.
    assert res.differences == (
        "arousal.tsv line 51: value: '19.49218749999996' != "
        "'19.49218750099996'; fast: '19.49218749999996' != '19.49218750099996'",
    )


def test_compare_reports_missing_rows(tmp_path: Path) -> None:
    a = _live(tmp_path / "a", ToyCore(), 300)
    b = _live(tmp_path / "b", ToyCore(), 200)
    diffs = compare_sessions(a, b)
    assert any("beats.tsv:" in d and "row(s) in" in d for d in diffs)
