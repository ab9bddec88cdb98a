"""kill -9 at random moments, and a full disk: what was flushed reads back, nothing is corrupted."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from itertools import islice
from pathlib import Path

import pytest

from biofeedback.recording import iter_inputs, list_sessions, open_session
from biofeedback.recording.synthetic import synthetic_session
from tests.recording.helpers import START_T, record, steps
from tests.support import REPO_ROOT


def _spawn(root: Path, seed: int, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.recording.writer_proc", str(root), str(seed), *extra],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )


@pytest.mark.slow
def test_kill_9_at_random_moments_loses_only_the_unflushed_tail(tmp_path: Path) -> None:
    rng = random.Random(20261125)
    startup = 1.0
    for attempt in range(8):
        root = tmp_path / f"run{attempt}"
        t0 = time.monotonic()
        proc = _spawn(root, 1)
        assert proc.stdout is not None
        if attempt % 2:
            # Any moment, including while the interpreter starts or the folder is being made.
            time.sleep(rng.uniform(0.5 * startup, startup + 1.0))
        else:
            first = proc.stdout.readline()  # the folder exists (atomically) from here on
            startup = time.monotonic() - t0
            assert first.startswith("path "), proc.stderr.read() if proc.stderr else first
            time.sleep(rng.uniform(0.0, 0.6))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
        if proc.returncode != -signal.SIGKILL:
            pytest.fail(f"the writer ended with {proc.returncode} before the kill")
        if not list_sessions(root, "crash"):
            # Killed before the folder was renamed into place: nothing was recorded yet, and
            # no half-made folder is visible.
            assert "flushed" not in out
            assert attempt % 2
            (fresh,) = [record(root, steps(10), client_id="crash")]
            assert list_sessions(root, "crash") == [fresh]
            continue
        flushed = [int(line.split()[1]) for line in out.splitlines() if line.startswith("flushed")]
        (session,) = list_sessions(root, "crash")
        info = open_session(session)
        assert info.incomplete
        assert info.status == "recording"
        got = list(iter_inputs(session))
        # Everything reported as flushed is there, in order, and nothing else is invented.
        assert len(got) >= (flushed[-1] if flushed else 0)
        expected = islice(synthetic_session(36_000, start_t=START_T, seed=1), len(got))
        assert got == [s.item for s in expected]
        assert len(info.partial_lines) <= 1
        # The next start makes a new folder and leaves the crashed one as it was.
        before = {p.name: p.read_bytes() for p in session.iterdir()}
        again = record(root, steps(10), client_id="crash")
        assert again != session
        assert {p.name: p.read_bytes() for p in session.iterdir()} == before


def test_disk_full_is_reported_with_the_file_and_nothing_is_lost(tmp_path: Path) -> None:
    proc = _spawn(tmp_path, 2, "60000")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    errors = [line for line in out.splitlines() if line.startswith("error ")]
    assert len(errors) == 1
    assert "cannot write" in errors[0]
    assert ".tsv" in errors[0]
    assert "retried" in errors[0]
    assert "recovered 0" in out
    (session,) = list_sessions(tmp_path, "crash")
    info = open_session(session)
    assert info.complete
    n = info.row_counts["inputs"]
    expected = [s.item for s in islice(synthetic_session(36_000, start_t=START_T, seed=2), n)]
    assert info.row_counts["inputs"] > 1000
    assert list(iter_inputs(session)) == expected
    assert info.start_t == START_T
