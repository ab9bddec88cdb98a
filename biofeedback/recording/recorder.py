"""Writing a session to disk as it happens.

Calls are cheap (a line is formatted and appended to a buffer); `flush_if_due` writes the buffers
and fsyncs them at most once a second, so a crash (even `kill -9`) loses at most the last second.
A write that fails (disk full, I/O error) is rolled back to the last complete line, the data stays
in memory and is retried on the next flush, and a RecordingError naming the file is raised so the
therapist is told instead of the recording silently stopping.

The session folder appears atomically: it is built under a hidden temporary name (sidecar and
every file's header row), fsynced, then renamed into place. An existing folder is never reused.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import os
import re
import secrets
import shutil
import socket
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self

from biofeedback import __version__
from biofeedback.errors import RecordingError
from biofeedback.exposure.messages import SessionEvent
from biofeedback.recording.inputs import encode_input
from biofeedback.recording.schema import (
    AROUSAL,
    BEATS,
    EVENTS,
    FORMAT_NAME,
    FORMAT_VERSION,
    FREQUENCY,
    INPUTS,
    METRICS,
    REVISIONS,
    SIDECAR,
    TABLES,
    TableSpec,
    encode_row,
    jsonable,
)
from biofeedback.signal.measures import BeatUpdate, CleanBeat, TimeDomain

log = logging.getLogger(__name__)

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")

STATUS_RECORDING = "recording"  # still being written, or the writer died (kill -9, power loss)
STATUS_COMPLETE = "complete"
STATUS_INTERRUPTED = "interrupted"  # closed after an error in the session


def check_id(kind: str, value: str) -> str:
    """`value` if it is a usable client or session id (a pseudonym safe as a folder name)."""
    if not ID_PATTERN.fullmatch(value):
        raise RecordingError(
            f"{kind} {value!r} cannot name a recording folder: use 1-64 of A-Z a-z 0-9 _ - "
            "(starting with a letter or digit)"
        )
    return value


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _datasync(fd: int) -> None:
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
        _write_all(fd, text.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _os_error(action: str, path: Path, exc: OSError) -> RecordingError:
    hint = ""
    if exc.errno in (28, 122):  # ENOSPC, EDQUOT
        hint = "; free disk space: the data is kept in memory and retried every second"
    elif exc.errno == 27:  # EFBIG
        hint = "; the file size limit was reached: the data is kept in memory and retried"
    return RecordingError(f"cannot {action} {path}: {exc.strerror or exc}{hint}")


class _TableWriter:
    """One TSV file: buffered lines, appended and fsynced on flush, rolled back on failure."""

    __slots__ = ("fd", "path", "pending", "rows", "size", "spec")

    def __init__(self, spec: TableSpec, path: Path) -> None:
        self.spec = spec
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        self.size = os.fstat(self.fd).st_size
        self.pending: list[str] = []
        self.rows = 0

    def add(self, values: tuple[Any, ...]) -> None:
        self.pending.append(encode_row(self.spec, values))
        self.rows += 1

    def flush(self) -> None:
        if not self.pending:
            return
        data = "".join(self.pending).encode("utf-8")
        try:
            _write_all(self.fd, data)
            _datasync(self.fd)
        except OSError as exc:
            # Cut the file back to its last complete line so a retry does not leave half a row.
            try:
                os.ftruncate(self.fd, self.size)
            except OSError as trunc_exc:
                log.error("could not roll back %s after a failed write: %s", self.path, trunc_exc)
            raise _os_error("write", self.path, exc) from exc
        self.size += len(data)
        self.pending.clear()

    def close(self) -> None:
        os.close(self.fd)


def _default_session_id(client_dir: Path, meta: Mapping[str, Any]) -> str:
    start = meta.get("start_t")
    if isinstance(start, int | float) and not isinstance(start, bool):
        base = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(float(start)))
        candidates = (base if n == 1 else f"{base}-{n}" for n in range(1, 10_000))
    else:
        taken = sum(1 for p in client_dir.iterdir() if not p.name.startswith("."))
        candidates = (f"{n:03d}" for n in range(taken + 1, taken + 10_000))
    for cand in candidates:
        if not (client_dir / cand).exists():
            return cand
    raise RecordingError(f"no free session id left in {client_dir}")


class SessionRecorder:
    """Records one session into `root/<client_id>/<session_id>/` (see docs/recording.md).

    `meta` goes into the sidecar's `meta` object; `meta["start_t"]` (session clock seconds), when
    given, is time zero of events.tsv and names the session (`20261125T103808Z`); otherwise the
    first recorded time is time zero and sessions are numbered `001`, `002`, ...
    """

    # A newer session snapshot reaches the sidecar at most this often (it is only the latest
    # state for the report; every decision is in events.tsv, flushed every second).
    SNAPSHOT_INTERVAL_S: ClassVar[float] = 10.0

    def __init__(
        self,
        root: Path,
        *,
        client_id: str,
        session_id: str | None = None,
        meta: Mapping[str, Any],
        flush_interval_s: float = 1.0,
    ) -> None:
        self.client_id = check_id("client id", client_id)
        self._meta: dict[str, Any] = dict(jsonable(dict(meta)))
        start = meta.get("start_t")
        self.start_t: float | None = (
            float(start) if isinstance(start, int | float) and not isinstance(start, bool) else None
        )
        self.flush_interval_s = flush_interval_s
        client_dir = Path(root) / client_id
        try:
            client_dir.mkdir(parents=True, exist_ok=True)
            sid = session_id if session_id is not None else _default_session_id(client_dir, meta)
        except OSError as exc:
            raise _os_error("create the recording folder", client_dir, exc) from exc
        self.session_id = check_id("session id", sid)
        self.path = client_dir / self.session_id
        self._created_utc = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self._status = STATUS_RECORDING
        self._compressed = False
        self._end_t: float | None = None
        self._end_reason: str | None = None  # the exception that ended the session, if any
        self._snapshot: Any = None
        self._dirty = False  # the sidecar must be rewritten on the next flush
        self._snapshot_dirty = False  # a newer snapshot than the sidecar's: rewritten every 10 s
        self._sidecar_written = time.monotonic()
        self._last_flush: float | None = None
        self._closed = False
        self.error: str | None = None  # the last write failure, None once a flush succeeds
        self._create_folder(client_dir)
        self._writers = {
            spec.name: _TableWriter(spec, self.path / spec.filename) for spec in TABLES
        }

    # ---- creation -----------------------------------------------------------------------

    def _create_folder(self, client_dir: Path) -> None:
        if self.path.exists():
            raise RecordingError(
                f"recording {self.path} already exists; refusing to overwrite it "
                "(choose another session id)"
            )
        tmp = client_dir / f".{self.session_id}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            tmp.mkdir()
            for spec in TABLES:
                write_atomic(tmp / spec.filename, spec.header)
            write_atomic(tmp / SIDECAR, self._sidecar_text())
            _fsync_dir(tmp)
            if self.path.exists():
                raise RecordingError(
                    f"recording {self.path} appeared while it was being created; not overwriting"
                )
            os.rename(tmp, self.path)
            _fsync_dir(client_dir)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise _os_error("create the recording", self.path, exc) from exc
        except RecordingError:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        log.info("recording session %s of %s to %s", self.session_id, self.client_id, self.path)

    def _sidecar(self) -> dict[str, Any]:
        rows = {name: w.rows - len(w.pending) for name, w in getattr(self, "_writers", {}).items()}
        return {
            "Format": FORMAT_NAME,
            "FormatVersion": FORMAT_VERSION,
            "SoftwareName": "biofeedback",
            "SoftwareVersion": __version__,
            "client_id": self.client_id,
            "session_id": self.session_id,
            "created_utc": self._created_utc,
            "status": self._status,
            "start_t": self.start_t,
            "end_t": self._end_t,
            "end_reason": self._end_reason,
            "compressed": self._compressed,
            "writer": {"pid": os.getpid(), "host": socket.gethostname()},
            "rows": rows,
            "meta": self._meta,
            "snapshot": jsonable(self._snapshot),
            "files": {spec.filename: spec.sidecar_entry() for spec in TABLES},
        }

    def _sidecar_text(self) -> str:
        return json.dumps(self._sidecar(), indent=2, sort_keys=False, allow_nan=False) + "\n"

    def _write_sidecar(self) -> None:
        try:
            write_atomic(self.path / SIDECAR, self._sidecar_text())
        except OSError as exc:
            raise _os_error("write", self.path / SIDECAR, exc) from exc
        self._dirty = False
        self._snapshot_dirty = False
        self._sidecar_written = time.monotonic()

    # ---- recording ----------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RecordingError(f"recording {self.path} is closed")

    def _seen(self, t: float) -> None:
        if self.start_t is None:
            self.start_t = float(t)
            self._dirty = True
        self._end_t = float(t) if self._end_t is None else max(self._end_t, float(t))

    def input(self, item: object, seq: int) -> None:
        """Log one session input (Notification, DeviceEvent, command, Tick) in processing order."""
        self._check_open()
        try:
            values = encode_input(item, seq)
        except TypeError as exc:
            raise RecordingError(str(exc)) from exc
        self._seen(values[1])
        self._writers[INPUTS.name].add(values)

    def update(self, u: BeatUpdate) -> None:
        """Log one pipeline update: a beats, metrics and arousal row (and frequency when new)."""
        self._check_open()
        self._seen(u.t)
        b = u.beat
        self._writers[BEATS.name].add(
            (
                u.t,
                None if b is None else b.rr_ms,
                None if b is None else b.raw_rr_ms,
                u.hr_bpm,
                None if b is None else b.corrected,
                None if b is None else b.artifact,
                None if b is None else b.contact,
                u.rejected,
            )
        )
        revised: tuple[CleanBeat, ...] = getattr(u, "revised", ())
        for r in revised:
            self._writers[REVISIONS.name].add(
                (u.t, r.t, r.rr_ms, r.raw_rr_ms, r.corrected, r.artifact, r.contact)
            )
        q = u.quality
        self._writers[METRICS.name].add(
            (
                u.t,
                *_td(u.short),
                *_td(u.long),
                q.score,
                q.corrected_share,
                q.rejected_share,
                q.contact,
                q.hrv_available,
                q.reason,
            )
        )
        f = u.frequency
        if f is not None:
            self._writers[FREQUENCY.name].add(
                (
                    u.t,
                    f.t,
                    f.window_s,
                    f.lf_ms2,
                    f.hf_ms2,
                    f.lf_hf,
                    f.breathing_rate_bpm,
                    f.coherence,
                    f.paced_hz,
                )
            )
        a = u.arousal
        self._writers[AROUSAL.name].add(
            (a.t, a.value, a.confidence, a.fast, a.slow, a.basis.value, a.reason)
        )

    def events(self, evs: Iterable[SessionEvent]) -> None:
        """Log session events (transitions, check-ins, ...) as events.tsv rows."""
        self._check_open()
        w = self._writers[EVENTS.name]
        for ev in evs:
            self._seen(ev.t)
            start = ev.t if self.start_t is None else self.start_t
            w.add(
                (
                    ev.t - start,
                    0.0,
                    ev.kind,
                    ev.seq,
                    ev.t,
                    ev.actor.value,
                    ev.from_state.value,
                    ev.to_state.value,
                    ev.reason,
                    dict(ev.values),
                )
            )

    def snapshot(self, snap: object) -> None:
        """Keep the latest session state; it is written into the sidecar on the next flush."""
        self._check_open()
        self._snapshot = snap
        self._snapshot_dirty = True

    def set_meta(self, **fields: Any) -> None:
        """Add or replace sidecar `meta` fields (device, battery, baseline, config, protocol...).

        The sidecar is rewritten at once, atomically.
        """
        self._check_open()
        self._meta.update(jsonable(fields))
        self._dirty = True  # if this write fails, the next flush tries again
        self._write_sidecar()

    # ---- flushing and closing -----------------------------------------------------------

    @property
    def pending_rows(self) -> int:
        """Rows buffered and not yet on disk."""
        return sum(len(w.pending) for w in self._writers.values())

    @property
    def rows(self) -> dict[str, int]:
        """Rows recorded so far per file (written or buffered)."""
        return {name: w.rows for name, w in self._writers.items()}

    def flush_if_due(self, now_monotonic: float) -> None:
        """Flush when `flush_interval_s` or more passed since the last flush (runner's loop).

        The sidecar is rewritten only when needed: at once for a new start time or status, at
        most every `SNAPSHOT_INTERVAL_S` for a newer session snapshot.
        """
        if self._closed:
            return
        last = self._last_flush
        if last is None or now_monotonic - last >= self.flush_interval_s:
            self._last_flush = now_monotonic
            due = time.monotonic() - self._sidecar_written >= self.SNAPSHOT_INTERVAL_S
            self._flush(snapshot_due=due)

    def flush(self) -> None:
        """Write and fsync every buffered row and a changed sidecar now; RecordingError names
        the file that failed."""
        self._flush(snapshot_due=True)

    def _flush(self, *, snapshot_due: bool) -> None:
        first: RecordingError | None = None
        for w in self._writers.values():
            try:
                w.flush()
            except RecordingError as exc:
                log.error("%s", exc)
                first = first or exc
        if first is None and (self._dirty or (self._snapshot_dirty and snapshot_due)):
            try:
                self._write_sidecar()
            except RecordingError as exc:
                log.error("%s", exc)
                first = exc
        if first is not None:
            self.error = str(first)
            raise first
        self.error = None

    def close(self, compress: bool = False, *, status: str = STATUS_COMPLETE) -> None:
        """Flush, mark the recording complete and close its files; optionally gzip them.

        When the final flush fails the recording stays open (call close again to retry).
        """
        if self._closed:
            return
        self._status = status
        self._dirty = True
        try:
            self.flush()
        except RecordingError:
            self._status = STATUS_RECORDING
            raise
        for w in self._writers.values():
            w.close()
        self._closed = True
        if compress:
            self._compress()
        log.info("recording %s closed (%s)", self.path, status)

    def _compress(self) -> None:
        for spec in TABLES:
            src = self.path / spec.filename
            dst = src.with_name(src.name + ".gz")
            tmp = dst.with_name(dst.name + ".tmp")
            try:
                with open(src, "rb") as fi, open(tmp, "wb") as raw:
                    with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
                        shutil.copyfileobj(fi, gz)
                    raw.flush()
                    os.fsync(raw.fileno())
                os.replace(tmp, dst)
                os.unlink(src)
            except OSError as exc:
                with contextlib.suppress(OSError):
                    tmp.unlink()
                raise _os_error("compress", src, exc) from exc
        self._compressed = True
        self._write_sidecar()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Stopping the service (Ctrl-C, task cancellation, exit) ends a session normally; an
        # error inside the session leaves it marked interrupted.
        failed = exc_type is not None and issubclass(exc_type, Exception)
        if exc_type is not None:
            self._end_reason = exc_type.__name__
        self.close(status=STATUS_INTERRUPTED if failed else STATUS_COMPLETE)


def _td(td: TimeDomain | None) -> tuple[Any, ...]:
    if td is None:
        return (None,) * 7
    return (td.window_s, td.n, td.mean_nn_ms, td.hr_bpm, td.rmssd_ms, td.sdnn_ms, td.pnn50_pct)
