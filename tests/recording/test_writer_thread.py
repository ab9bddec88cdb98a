"""The recorder's writes and syncs run on its writer thread: the event loop keeps running while
the disk is slow, and the thread ends with the recorder, whatever ends the session."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from biofeedback.exposure.messages import Tick
from biofeedback.recording import SessionRecorder, open_session
from biofeedback.recording.writer import OsDisk
from tests.recording.helpers import START_T
from tests.support import REPO_ROOT


def _recorder_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("recorder ")]


async def test_the_event_loop_runs_while_fdatasync_is_stuck(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sync that does not return (a disk under heavy load) does not stop the loop: loop
    callbacks run, and rows are recorded, while the writer waits inside fdatasync."""
    inside = threading.Event()
    release = threading.Event()
    returned = threading.Event()
    real = os.fdatasync

    def stuck_fdatasync(fd: int) -> None:
        inside.set()
        # Bounded (once), so a recorder that syncs on the loop fails this test instead of hanging.
        if not release.wait(5.0):
            release.set()
        real(fd)
        returned.set()

    monkeypatch.setattr(os, "fdatasync", stuck_fdatasync)
    rec = SessionRecorder(tmp_path, client_id="c", meta={"start_t": START_T})
    rec.input(Tick(START_T + 1), 1)
    rec.flush_if_due(time.monotonic())  # on the loop: asks for a write (and sync) of the row
    await asyncio.to_thread(inside.wait, 5.0)  # off the loop: until the sync has begun
    assert inside.is_set()

    progress: list[bool] = []  # for each loop callback: had the stuck sync returned?
    done = asyncio.Event()

    def callback(i: int) -> None:
        progress.append(returned.is_set())
        rec.input(Tick(START_T + 2 + i), 2 + i)
        rec.flush_if_due(time.monotonic() + 2.0 * (i + 1))  # due every time
        if i < 99:
            asyncio.get_running_loop().call_soon(callback, i + 1)
        else:
            done.set()

    asyncio.get_running_loop().call_soon(callback, 0)
    await done.wait()
    assert progress == [False] * 100  # 100 callbacks ran while the sync was stuck
    release.set()
    await asyncio.to_thread(rec.close)
    assert returned.is_set()
    assert open_session(rec.path).row_counts["inputs"] == 101


class _ThreadsSeen(OsDisk):
    """Remembers which threads wrote and synced."""

    def __init__(self) -> None:
        self.threads: set[str] = set()

    def write(self, fd: int, data: memoryview) -> int:
        self.threads.add(threading.current_thread().name)
        return super().write(fd, data)

    def datasync(self, fd: int) -> None:
        self.threads.add(threading.current_thread().name)
        super().datasync(fd)


def test_rows_are_written_and_synced_on_the_writer_thread(tmp_path: Path) -> None:
    disk = _ThreadsSeen()
    rec = SessionRecorder(tmp_path, client_id="c", meta={}, disk=disk)
    rec.input(Tick(1.0), 1)
    rec.flush_if_due(0.0)
    rec.close()
    assert disk.threads == {f"recorder c/{rec.session_id}"}
    assert threading.current_thread().name not in disk.threads


def _close(rec: SessionRecorder) -> None:
    rec.close()


def _with_block(rec: SessionRecorder) -> None:
    with rec:
        rec.input(Tick(3.0), 3)


def _session_raising(rec: SessionRecorder, exc: type[BaseException]) -> None:
    with rec:
        rec.input(Tick(3.0), 3)
        raise exc


def _with_error(rec: SessionRecorder) -> None:
    with pytest.raises(ZeroDivisionError):
        _session_raising(rec, ZeroDivisionError)


def _with_ctrl_c(rec: SessionRecorder) -> None:
    with pytest.raises(KeyboardInterrupt):
        _session_raising(rec, KeyboardInterrupt)


def _cancelled_task(rec: SessionRecorder) -> None:
    async def session() -> None:
        with rec:
            rec.input(Tick(3.0), 3)
            await asyncio.sleep(3600)

    async def main() -> None:
        task = asyncio.create_task(session())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())


ENDINGS = [_close, _with_block, _with_error, _with_ctrl_c, _cancelled_task]


@pytest.mark.parametrize("end", ENDINGS, ids=lambda f: f.__name__)
def test_the_writer_thread_ends_with_the_recorder(
    tmp_path: Path, end: Callable[[SessionRecorder], None]
) -> None:
    before = set(threading.enumerate())
    rec = SessionRecorder(tmp_path, client_id="c", meta={})
    assert [t.name for t in _recorder_threads()] == [f"recorder c/{rec.session_id}"]
    rec.input(Tick(1.0), 1)
    rec.input(Tick(2.0), 2)
    end(rec)
    assert rec.closed
    assert set(threading.enumerate()) <= before  # no stray thread
    assert not _recorder_threads()
    info = open_session(rec.path)
    assert info.row_counts["inputs"] == (2 if end is _close else 3)  # everything queued is written


def test_ctrl_c_on_a_running_service_loop_writes_everything_and_exits(tmp_path: Path) -> None:
    """SIGINT to a process whose event loop records (as the service does): the recording is
    closed normally with every row, and no thread is left behind."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.recording.sigint_proc", str(tmp_path)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert first.startswith("recording "), proc.stderr.read() if proc.stderr else first
    path = Path(first.split(" ", 1)[1].strip())
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    lines = dict(line.split(" ", 1) for line in out.splitlines() if " " in line)
    assert lines["threads"] == "[]", out
    info = open_session(path)
    assert info.complete
    assert info.sidecar["end_reason"] == "CancelledError"
    assert info.row_counts["inputs"] == int(lines["recorded"])
    assert int(lines["recorded"]) > 0
