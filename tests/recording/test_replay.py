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


def test_config_and_baseline_rebuilt_from_the_sidecar(tmp_path: Path) -> None:
    import pytest

    from biofeedback.errors import RecordingError
    from biofeedback.recording.replay import meta_dataclass
    from biofeedback.recording.schema import jsonable
    from biofeedback.signal.measures import Baseline, SignalConfig

    cfg = SignalConfig(short_window_s=27.3, calibration_min_beats=25, paced_breathing_hz=0.1)
    base = Baseline("c", START_T, 120.0, 140, 0.0125, 71.3, 3.1, 3.7, 0.2, None)
    with SessionRecorder(tmp_path, client_id="c", meta={"signal_config": cfg}) as rec:
        rec.set_meta(baseline=base, broken={**jsonable(base), "hr_mean_bpm": "fast"})
    info = open_session(rec.path)
    assert meta_dataclass(info, "signal_config", SignalConfig) == cfg
    assert meta_dataclass(info, "baseline", Baseline) == base
    assert meta_dataclass(info, "absent", Baseline) is None
    with pytest.raises(RecordingError, match=r"meta\.broken: .*hr_mean_bpm"):
        meta_dataclass(info, "broken", Baseline)
