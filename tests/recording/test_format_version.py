"""Format versions: new recordings say theirs and name their pipeline; a version-1 recording
(tests/recording/data/format1, written by the recorder of commit 683a02a) is read through its
migration; a newer version is refused; replay says why numbers differ."""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from biofeedback.errors import RecordingError
from biofeedback.recording import SessionRecorder, open_session, read_sidecar
from biofeedback.recording.pipeline import pipeline_identity
from biofeedback.recording.replay import record_output, replay_session
from biofeedback.recording.schema import FORMAT_VERSION, TABLES
from tests.recording.helpers import START_T, steps
from tests.recording.toy_core import ToyCore

FORMAT1 = Path(__file__).parent / "data" / "format1" / "toy" / "20251124T160000Z"


@pytest.fixture
def format1(tmp_path: Path) -> Path:
    dst = tmp_path / "old" / "toy" / FORMAT1.name
    shutil.copytree(FORMAT1, dst)
    return dst


def _edit_sidecar(session: Path, **changes: Any) -> None:
    side = session / "session.json"
    data = json.loads(side.read_text())
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    side.write_text(json.dumps(data))


def _live(root: Path, core: ToyCore, duration_s: float = 90) -> Path:
    with SessionRecorder(root, client_id="toy", meta={"start_t": START_T}) as rec:
        for s in steps(duration_s, seed=11):
            out = core.feed(s.item)
            rec.input(s.item, s.seq)
            record_output(rec, out)
            rec.flush_if_due(time.monotonic())
        rec.snapshot(core.snapshot)
    return rec.path


def test_a_new_recording_states_its_format_version_and_pipeline(tmp_path: Path) -> None:
    path = _live(tmp_path, ToyCore(), 20)
    side = json.loads((path / "session.json").read_text())
    assert side["FormatVersion"] == FORMAT_VERSION == 3
    assert side["Pipeline"] == pipeline_identity()
    assert side["Pipeline"]["fingerprint"].startswith("sha256:")
    assert set(side["Pipeline"]["libraries"]) == {"numpy", "scipy"}
    assert (path / "gaps.tsv").read_text() == "from_t\tto_t\ttable\tkind\trows\treason\n"
    assert (path / "pmd.tsv").read_text().startswith("t\tdevice\tkind\t")
    info = open_session(path)
    assert info.format_version == 3
    assert not info.migrated
    assert info.complete
    assert info.gaps() == []


def test_a_format_1_recording_is_read_through_its_migration(
    format1: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="biofeedback.recording.reader")
    before = {p.name: p.read_bytes() for p in format1.iterdir()}
    assert json.loads(before["session.json"])["FormatVersion"] == 1
    assert "gaps.tsv" not in before
    info = open_session(format1)
    assert info.format_version == 1
    assert info.migrated
    assert info.complete  # closed normally; having no gaps.tsv is not a loss
    assert info.sidecar["FormatVersion"] == FORMAT_VERSION
    assert info.pipeline is None  # version 1 did not name its pipeline
    assert info.gaps() == []
    assert info.row_counts["gaps"] == 0
    assert info.row_counts["beats"] == 108
    assert info.rows("gaps") == []
    assert read_sidecar(format1)["FormatVersion"] == FORMAT_VERSION
    assert info.rows("pmd") == []
    assert info.rows("ecg") == []
    assert "is format version 1: read through its migration to version 3" in caplog.text
    assert {p.name: p.read_bytes() for p in format1.iterdir()} == before  # files untouched


def test_a_sidecar_without_a_version_is_format_1(format1: Path) -> None:
    _edit_sidecar(format1, FormatVersion=None)
    info = open_session(format1)
    assert info.format_version == 1
    assert info.migrated


@pytest.mark.parametrize("version", [4, 99])
def test_a_newer_format_is_refused_with_a_clear_message(format1: Path, version: int) -> None:
    _edit_sidecar(format1, FormatVersion=version)
    with pytest.raises(
        RecordingError,
        match=rf"session\.json: format version {version} is newer than this software reads "
        r"\(versions 1 to 3\); read it with a newer biofeedback",
    ):
        open_session(format1)


@pytest.mark.parametrize("version", [0, -1, "2", 2.0, True, [2]])
def test_a_bad_format_version_is_refused(format1: Path, version: object) -> None:
    _edit_sidecar(format1, FormatVersion=version)
    with pytest.raises(RecordingError, match=r"session\.json: format version .* is not a version"):
        open_session(format1)


def test_the_format_1_fixture_was_written_by_the_old_recorder() -> None:
    side = json.loads((FORMAT1 / "session.json").read_text())
    assert side["FormatVersion"] == 1
    assert "Pipeline" not in side
    assert side["meta"]["made_by"] == "683a02a"
    tables = {p.name for p in FORMAT1.iterdir()} - {"session.json"}
    assert tables == {t.filename for t in TABLES} - {"gaps.tsv", "pmd.tsv", "ecg.tsv"}


def test_replay_of_a_format_1_recording_says_it_was_migrated(format1: Path, tmp_path: Path) -> None:
    res = replay_session(format1, tmp_path / "rep", core_factory=lambda info: ToyCore())
    assert res.identical, res.differences  # the toy core did not change since 683a02a
    assert res.source_format == 1
    assert res.migrated
    assert res.pipeline_changed is None
    assert res.verdict.startswith("identical")
    assert res.notes == (
        "the recording is format version 1, read through its migration to version 3",
    )
    assert open_session(res.replay).format_version == FORMAT_VERSION


def test_replay_of_a_format_1_recording_that_differs_blames_the_format(
    format1: Path, tmp_path: Path
) -> None:
    res = replay_session(format1, tmp_path / "rep", core_factory=lambda info: ToyCore(jitter=True))
    assert not res.identical
    assert "identical" not in res.verdict
    assert res.verdict.startswith("different (1 difference(s)), expected: the recording is format")
    assert "made before recordings named their pipeline" in res.verdict


def test_replay_after_a_pipeline_change_says_the_pipeline_changed(tmp_path: Path) -> None:
    src = _live(tmp_path / "rec", ToyCore())
    old = {
        "fingerprint": "sha256:0123456789abcdef",
        "software": "0.0.9",
        "libraries": {**pipeline_identity()["libraries"], "numpy": "1.0.0"},
    }
    _edit_sidecar(src, Pipeline=old)
    # The changed pipeline: the toy core moved one arousal value by 1e-9.
    res = replay_session(src, tmp_path / "rep", core_factory=lambda info: ToyCore(jitter=True))
    assert not res.identical
    assert res.pipeline_changed is True
    assert "identical" not in res.verdict
    assert res.verdict.startswith("different (1 difference(s)), expected: the pipeline changed")
    assert "code sha256:0123456789abcdef (biofeedback 0.0.9) -> sha256:" in res.verdict
    assert f"numpy 1.0.0 -> {pipeline_identity()['libraries']['numpy']}" in res.verdict
    assert res.differences[0].startswith("arousal.tsv line 51: value:")
    # The same recording with the same core: identical, and the change is still mentioned.
    res = replay_session(src, tmp_path / "rep2", core_factory=lambda info: ToyCore())
    assert res.identical
    assert "the pipeline changed since the recording" in res.notes[0]


def test_replay_with_the_same_pipeline_that_differs_is_a_failure(tmp_path: Path) -> None:
    src = _live(tmp_path / "rec", ToyCore())
    res = replay_session(src, tmp_path / "rep", core_factory=lambda info: ToyCore(jitter=True))
    assert res.pipeline_changed is False
    assert res.verdict.startswith("DIFFERENT from the recording (1 difference(s)) with the same")
    assert "does not reproduce it" in res.verdict


def test_a_library_the_pipeline_no_longer_uses_is_not_called_a_change(tmp_path: Path) -> None:
    # Recordings made before the native artifact detector name neurokit2 among the pipeline's
    # libraries; its version can no longer explain a difference, so replay must not cite it.
    src = _live(tmp_path / "rec", ToyCore())
    now = pipeline_identity()
    assert "neurokit2" not in now["libraries"]
    _edit_sidecar(src, Pipeline={**now, "libraries": {**now["libraries"], "neurokit2": "0.0.1"}})
    res = replay_session(src, tmp_path / "rep", core_factory=lambda info: ToyCore())
    assert res.identical
    assert res.pipeline_changed is False
    assert "neurokit2" not in res.verdict
    assert not any("pipeline changed" in n for n in res.notes)
