"""Malformed and truncated recording files: a clear RecordingError naming the file and line."""

from __future__ import annotations

import gzip
import json
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from biofeedback.errors import RecordingError
from biofeedback.recording import iter_inputs, open_session
from biofeedback.recording.schema import TABLES
from tests.recording.helpers import record, steps


@pytest.fixture
def session(tmp_path: Path) -> Path:
    return record(tmp_path, steps(60, seed=9))


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().split(b"\n")


def _rewrite_line(path: Path, lineno: int, new: bytes) -> None:
    lines = _lines(path)
    lines[lineno - 1] = new
    path.write_bytes(b"\n".join(lines))


def test_partial_last_line_is_tolerated_and_reported(session: Path) -> None:
    path = session / "beats.tsv"
    data = path.read_bytes()
    n_rows = data.count(b"\n") - 1
    path.write_bytes(data[:-7])  # cut inside the last row, as a crash mid-write would
    info = open_session(session)
    assert info.row_counts["beats"] == n_rows - 1
    assert info.incomplete
    (note,) = info.partial_lines
    assert "beats.tsv line" in note
    assert "partial last line" in note
    assert f"line {n_rows + 1}" in note


def test_wrong_column_count_names_file_and_line(session: Path) -> None:
    _rewrite_line(session / "arousal.tsv", 3, b"1.0\t2.0")
    with pytest.raises(RecordingError, match=r"arousal\.tsv line 3: 2 column\(s\), expected 7"):
        open_session(session)


def test_bad_number_names_file_line_and_column(session: Path) -> None:
    lines = _lines(session / "beats.tsv")
    cells = lines[4].split(b"\t")
    cells[1] = b"12,5"
    _rewrite_line(session / "beats.tsv", 5, b"\t".join(cells))
    with pytest.raises(RecordingError, match=r"beats\.tsv line 5: column 'rr_ms' \(float\)"):
        open_session(session)


def test_corrupt_input_row_fails_replay_with_line(session: Path) -> None:
    lines = _lines(session / "inputs.tsv")
    i = next(n for n, ln in enumerate(lines) if b"\tTick\t" in ln)
    _rewrite_line(session / "inputs.tsv", i + 1, lines[i].replace(b"\tTick\t", b"\tTock\t"))
    with pytest.raises(
        RecordingError, match=rf"inputs\.tsv line {i + 1}: unknown input type 'Tock'"
    ):
        list(iter_inputs(session))


def test_bad_hex_payload(session: Path) -> None:
    lines = _lines(session / "inputs.tsv")
    i = next(n for n, ln in enumerate(lines) if b"\tNotification\t" in ln)
    cells = lines[i].split(b"\t")
    cells[4] = b"zz"
    _rewrite_line(session / "inputs.tsv", i + 1, b"\t".join(cells))
    with pytest.raises(RecordingError, match=rf"inputs\.tsv line {i + 1}: column 'payload_hex'"):
        list(iter_inputs(session))


def test_command_with_bad_field(session: Path) -> None:
    lines = _lines(session / "inputs.tsv")
    i = next(n for n, ln in enumerate(lines) if b"\tTick\t" in ln)
    cells = lines[i].split(b"\t")
    cells[2], cells[7], cells[9] = b"SudsAnswer", b"client", b'{"value":"high"}'
    _rewrite_line(session / "inputs.tsv", i + 1, b"\t".join(cells))
    with pytest.raises(RecordingError, match=rf"line {i + 1}: field 'value': expected an integer"):
        list(iter_inputs(session))


def test_header_mismatch(session: Path) -> None:
    _rewrite_line(session / "events.tsv", 1, b"onset\tduration\ttrial_type")
    with pytest.raises(RecordingError, match=r"events\.tsv line 1: header"):
        open_session(session)


def test_empty_file(session: Path) -> None:
    (session / "metrics.tsv").write_bytes(b"")
    with pytest.raises(RecordingError, match=r"metrics\.tsv line 1: file is empty"):
        open_session(session)


def test_missing_file(session: Path) -> None:
    (session / "frequency.tsv").unlink()
    with pytest.raises(RecordingError, match=r"frequency\.tsv is missing"):
        open_session(session)


def test_not_utf8(session: Path) -> None:
    _rewrite_line(session / "events.tsv", 2, b"\xff\xfe")
    with pytest.raises(RecordingError, match=r"events\.tsv line 2: not UTF-8"):
        open_session(session)


def test_bad_sidecar(session: Path) -> None:
    side = session / "session.json"
    good = side.read_text()
    side.write_text(good[:200])
    with pytest.raises(RecordingError, match=r"session\.json line \d+ column \d+: invalid JSON"):
        open_session(session)
    side.write_text(json.dumps({"Format": "biofeedback-session", "FormatVersion": 99}))
    with pytest.raises(RecordingError, match="format version 99"):
        open_session(session)
    side.unlink()
    with pytest.raises(RecordingError, match=r"session\.json is missing"):
        open_session(session)


def test_truncated_gzip(tmp_path: Path) -> None:
    session = record(tmp_path, steps(60, seed=9), compress=True)
    gz = session / "beats.tsv.gz"
    gz.write_bytes(gz.read_bytes()[:-20])
    with pytest.raises(RecordingError, match=r"cannot read .*beats\.tsv\.gz"):
        open_session(session)
    assert gzip.decompress((session / "inputs.tsv.gz").read_bytes()).startswith(b"seq\t")


def test_not_a_folder(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match="is not a folder"):
        open_session(tmp_path / "nope")


@pytest.fixture(scope="module")
def small_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return record(tmp_path_factory.mktemp("fuzz"), steps(20, seed=12))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from([t.filename for t in TABLES] + ["session.json"]),
    where=st.floats(0, 1),
    cut=st.booleans(),
    junk=st.binary(max_size=12) | st.sampled_from([b"\t", b"\n", b"n/a", b"\\", b"{", b"\xff"]),
)
def test_any_corruption_is_a_recording_error_or_reads(
    small_recording: Path, name: str, where: float, cut: bool, junk: bytes
) -> None:
    """Whatever happens to a file, the reader either reads it or raises RecordingError."""
    with tempfile.TemporaryDirectory() as d:
        session = Path(d) / "s"
        shutil.copytree(small_recording, session)
        path = session / name
        data = path.read_bytes()
        pos = int(where * len(data))
        path.write_bytes(data[:pos] if cut else data[:pos] + junk + data[pos + len(junk) :])
        try:
            open_session(session)
            list(iter_inputs(session))
        except RecordingError as exc:
            assert name in str(exc)  # noqa: PT017 - the message must name the broken file
