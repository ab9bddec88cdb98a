"""Replay: the recorded inputs, fed to a fresh deterministic core, reproduce every output."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

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


# ---- exit status of `biofeedback replay` -----------------------------------------------------


def _cli_replay(
    session: Path, out: Path, core: ToyCore, monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str]:
    """`biofeedback replay <session>` with the toy core in place of the recorded pipeline."""
    import argparse
    import contextlib
    import io

    from biofeedback.config import load_config
    from biofeedback.service import commands_cli

    monkeypatch.setattr(commands_cli, "core_from_recording", lambda info: core)
    args = argparse.Namespace(session=session, speed=None, out=out)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        status = commands_cli.run_replay(args, load_config(None, env={}))
    return status, buf.getvalue()


FORMAT1 = Path(__file__).parent / "data" / "format1" / "toy" / "20251124T160000Z"


def test_replay_exit_status_is_0_when_a_format_change_explains_the_difference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = tmp_path / "old" / "toy" / FORMAT1.name
    shutil.copytree(FORMAT1, old)
    status, text = _cli_replay(old, tmp_path / "rep", ToyCore(jitter=True), monkeypatch)
    assert "expected: the recording is format version 1" in text
    assert "arousal.tsv line" in text  # the differences are still listed
    assert status == 0


def test_replay_exit_status_is_0_when_a_pipeline_change_explains_the_difference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _live(tmp_path / "rec", ToyCore(), 90)
    side = src / "session.json"
    data = json.loads(side.read_text())
    data["Pipeline"] = {**data["Pipeline"], "fingerprint": "sha256:0123456789abcdef"}
    side.write_text(json.dumps(data))
    status, text = _cli_replay(src, tmp_path / "rep", ToyCore(jitter=True), monkeypatch)
    assert "expected: the pipeline changed since the recording" in text
    assert status == 0


def test_replay_exit_status_is_1_for_a_difference_under_the_same_pipeline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _live(tmp_path / "rec", ToyCore(), 90)
    status, text = _cli_replay(src, tmp_path / "rep", ToyCore(jitter=True), monkeypatch)
    assert "DIFFERENT from the recording (1 difference(s)) with the same pipeline" in text
    assert status == 1
    status, text = _cli_replay(src, tmp_path / "rep2", ToyCore(), monkeypatch)
    assert text.splitlines()[-1].startswith("identical")
    assert status == 0
