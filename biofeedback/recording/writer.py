"""The recorder's disk side: table files, the calls that touch the disk, and the writer thread.

The event loop never waits for the disk. It appends encoded rows to each table's queue and, once
a second, asks the writer thread for a round: the thread appends every queued row to its file,
`fdatasync`s it, and rewrites the sidecar when needed. A write that fails (disk full, quota, file
size limit, I/O error) is cut back to the file's last complete line and its rows stay in memory,
retried on the next round; the recorder bounds that memory (see SessionRecorder).

`DiskOps` is the seam between the writer and the operating system, so tests can make a disk slow
or full without a real one.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from biofeedback.errors import RecordingError
from biofeedback.recording.schema import TableSpec

log = logging.getLogger(__name__)

# Memory of one queued row beyond its characters: the str object's header and the queue slot.
# Counted so the spill budget is close to what the rows really take.
ROW_OVERHEAD = 57


def row_cost(line: str) -> int:
    """Bytes of memory one queued row is counted as against the spill budget."""
    return len(line) + ROW_OVERHEAD


def fsync_dir(path: Path) -> None:
    """Persist a folder's entries (a new or renamed file in it)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def datasync(fd: int) -> None:
    # fdatasync also persists the new file size (needed to read appended data back) but skips
    # the timestamps, which is all a crash needs.
    if hasattr(os, "fdatasync"):
        os.fdatasync(fd)
    else:  # pragma: no cover - macOS
        os.fsync(fd)


def write_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` so a reader sees the old or the new file, never half of one."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        write_all(fd, text.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def os_error(action: str, path: Path, exc: OSError) -> RecordingError:
    """A RecordingError naming the file and saying what happens to the data."""
    hint = ""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        hint = "; free disk space: the data is kept in memory and retried every second"
    elif exc.errno == errno.EFBIG:
        hint = "; the file size limit was reached: the data is kept in memory and retried"
    return RecordingError(f"cannot {action} {path}: {exc.strerror or exc}{hint}")


class DiskOps(Protocol):
    """The writer's calls that touch the disk (a seam: tests make them slow or fail)."""

    def write(self, fd: int, data: memoryview) -> int: ...

    def datasync(self, fd: int) -> None: ...

    def truncate(self, fd: int, size: int) -> None: ...

    def replace_file(self, path: Path, text: str) -> None: ...


class OsDisk:
    """The real disk."""

    def write(self, fd: int, data: memoryview) -> int:
        return os.write(fd, data)

    def datasync(self, fd: int) -> None:
        datasync(fd)

    def truncate(self, fd: int, size: int) -> None:
        os.ftruncate(fd, size)

    def replace_file(self, path: Path, text: str) -> None:
        write_atomic(path, text)


class TableFile:
    """One TSV file: rows queued by the recorder, written and synced by the writer.

    `queue` is the only state both threads touch (deque appends and pops are atomic); `retained`
    (rows taken from the queue but not yet on disk), `size` and `durable_rows` belong to the
    writer.
    """

    __slots__ = ("durable_rows", "fd", "path", "queue", "retained", "size", "spec")

    def __init__(self, spec: TableSpec, path: Path) -> None:
        self.spec = spec
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        self.size = os.fstat(self.fd).st_size
        self.queue: deque[str] = deque()
        self.retained: list[tuple[bytes, int, int]] = []  # (data, rows, cost)
        self.durable_rows = 0

    def take(self) -> None:
        """Writer: move the queued rows into this round's batch."""
        n = len(self.queue)
        if not n:
            return
        lines = [self.queue.popleft() for _ in range(n)]
        text = "".join(lines)
        self.retained.append((text.encode("utf-8"), n, len(text) + n * ROW_OVERHEAD))

    def write(self, disk: DiskOps) -> int:
        """Writer: append and sync the batch; the memory cost written. On OSError the file is cut
        back to its last complete line and the batch kept for the next round."""
        if not self.retained:
            return 0
        written = 0
        try:
            for data, _, _ in self.retained:
                view = memoryview(data)
                while view:
                    n = disk.write(self.fd, view)
                    view = view[n:]
                written += len(data)
            disk.datasync(self.fd)
        except OSError:
            # Cut the file back to its last complete line so a retry does not leave half a row.
            try:
                disk.truncate(self.fd, self.size)
            except OSError as trunc_exc:
                log.error("could not roll back %s after a failed write: %s", self.path, trunc_exc)
            raise
        self.size += written
        self.durable_rows += sum(rows for _, rows, _ in self.retained)
        cost = sum(c for _, _, c in self.retained)
        self.retained.clear()
        return cost

    def close(self) -> None:
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)


class WriterThread:
    """Runs `work(force)` on its own thread each time it is asked; the asker never waits unless
    it calls `wait`. Requests made while a round runs are merged into the next round."""

    def __init__(self, name: str, work: Callable[[bool], None]) -> None:
        self._work = work
        self._wake = threading.Event()
        self._done = threading.Condition()
        # Written only by the asking thread; read by the writer.
        self._requested = 0
        self._forced = 0
        self._stopping = False
        # Written only by the writer (under `_done`).
        self._completed = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def request(self, *, force: bool = False) -> int:
        """Ask for a round (at once, without waiting); returns its number for `wait`."""
        self._requested += 1
        if force:
            self._forced = self._requested
        self._wake.set()
        return self._requested

    def wait(self, number: int) -> None:
        """Block until round `number` (or a later one) has finished."""
        with self._done:
            while self._completed < number:
                if not self._thread.is_alive():
                    raise RecordingError("the recording's writer thread has stopped")
                # A timeout keeps Ctrl-C able to interrupt the wait.
                self._done.wait(0.5)

    def stop(self) -> None:
        """End the thread after the round in progress (if any) and wait for it."""
        self._stopping = True
        self._wake.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            requested = self._requested
            stopping = self._stopping
            if requested > self._completed:
                force = self._forced > self._completed
                try:
                    self._work(force)
                except Exception:  # a bug: say so, keep the thread (and the session) alive
                    log.exception("the recording's writer failed")
                with self._done:
                    self._completed = requested
                    self._done.notify_all()
            if stopping:
                return
