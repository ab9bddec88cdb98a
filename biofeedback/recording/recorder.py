"""Writing a session to disk as it happens, without the event loop ever waiting for the disk.

Calls are cheap (a row is formatted and queued); `flush_if_due` asks the recorder's writer thread,
at most once a second, to append the queued rows and `fdatasync` them, so a crash (even `kill -9`)
loses about the last second. A write that fails (disk full, I/O error) is rolled back to the last
complete line, its rows stay in memory and are retried every second, and the next `flush_if_due`
raises a RecordingError naming the file so the therapist is told instead of the recording
silently stopping.

Memory held for a disk that does not take rows is bounded (`spill_budget_bytes`). Past the budget
samples are dropped first (strap data, ticks and pipeline outputs); events (session events,
commands, device events) are kept until the whole budget is used. What was dropped is logged and,
once rows are taken again, recorded in gaps.tsv: from when to when, how many rows of which table.

The session folder appears atomically: it is built under a hidden temporary name (sidecar and
every file's header row), fsynced, then renamed into place. An existing folder is never reused.
The writer thread starts with the recorder and ends with `close()` (which the context manager
calls, also for Ctrl-C and task cancellation) after writing everything queued.
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
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self

from biofeedback import __version__
from biofeedback.devices.pmd_readings import (
    AccSamples,
    EcgSamples,
    PmdGap,
    PmdMalformed,
    PmdReading,
    PmdStatus,
)
from biofeedback.errors import RecordingError
from biofeedback.exposure.assessment import AssessmentEvent
from biofeedback.exposure.messages import SessionEvent
from biofeedback.recording.inputs import encode_input
from biofeedback.recording.pipeline import pipeline_identity
from biofeedback.recording.schema import (
    AROUSAL,
    BEATS,
    ECG,
    EVENTS,
    FORMAT_NAME,
    FORMAT_VERSION,
    FREQUENCY,
    GAPS,
    INPUTS,
    METRICS,
    PMD,
    REVISIONS,
    SIDECAR,
    TABLES,
    encode_row,
    jsonable,
)
from biofeedback.recording.writer import (
    DiskOps,
    OsDisk,
    TableFile,
    WriterThread,
    fsync_dir,
    os_error,
    row_cost,
    write_atomic,
)
from biofeedback.signal.measures import BeatUpdate, CleanBeat, TimeDomain

log = logging.getLogger(__name__)

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")

STATUS_RECORDING = "recording"  # still being written, or the writer died (kill -9, power loss)
STATUS_COMPLETE = "complete"
STATUS_INTERRUPTED = "interrupted"  # closed after an error in the session

SAMPLE = "sample"  # strap data, ticks, pipeline outputs: dropped first when memory runs out
EVENT = "event"  # session events, commands, device events: kept as long as anything is kept

# inputs.tsv rows that are samples; every other input (commands, device events, ...) is an event.
SAMPLE_INPUTS = frozenset({"Notification", "Tick", "ArousalSample"})

# 16 MiB hold about 5 hours of one client's rows at a resting heart rate (docs/recording.md).
DEFAULT_SPILL_BUDGET_BYTES = 16 * 1024 * 1024


def check_id(kind: str, value: str) -> str:
    """`value` if it is a usable client or session id (a pseudonym safe as a folder name)."""
    if not ID_PATTERN.fullmatch(value):
        raise RecordingError(
            f"{kind} {value!r} cannot name a recording folder: use 1-64 of A-Z a-z 0-9 _ - "
            "(starting with a letter or digit)"
        )
    return value


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


@dataclass(slots=True)
class _Dropped:
    rows: int
    from_t: float
    to_t: float


@dataclass(slots=True)
class _Gap:
    """Rows dropped since the memory budget ran out, until a sample is taken again."""

    error: str | None  # the writer's last error while rows were dropped
    dropped: dict[tuple[str, str], _Dropped] = field(default_factory=dict)  # (table, kind)

    def describe(self) -> str:
        return ", ".join(
            f"{d.rows} {table} {kind} row(s) from t={d.from_t:.3f} to t={d.to_t:.3f}"
            for (table, kind), d in self.dropped.items()
        )


class SessionRecorder:
    """Records one session into `root/<client_id>/<session_id>/` (see docs/recording.md).

    `meta` goes into the sidecar's `meta` object; `meta["start_t"]` (session clock seconds), when
    given, is time zero of events.tsv and names the session (`20261125T103808Z`); otherwise the
    first recorded time is time zero and sessions are numbered `001`, `002`, ...

    The recording calls (`input`, `update`, `events`, `snapshot`, `set_meta`, `flush_if_due`)
    belong to one thread (the service's event loop) and never wait for the disk; a writer thread
    does the writing. `writer_thread=False` writes on the calling thread instead, inside
    `flush_if_due` (the recorder as it was before the writer thread; the benchmark compares the
    two). `disk` replaces the operating system calls of the writer (tests).
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
        spill_budget_bytes: int = DEFAULT_SPILL_BUDGET_BYTES,
        writer_thread: bool = True,
        disk: DiskOps | None = None,
    ) -> None:
        self.client_id = check_id("client id", client_id)
        if spill_budget_bytes <= 0:
            raise RecordingError(f"spill_budget_bytes must be > 0, got {spill_budget_bytes}")
        # Replaced, never changed in place: the writer thread reads it while the loop may update.
        self._meta: dict[str, Any] = dict(jsonable(dict(meta)))
        start = meta.get("start_t")
        self.start_t: float | None = (
            float(start) if isinstance(start, int | float) and not isinstance(start, bool) else None
        )
        self.flush_interval_s = flush_interval_s
        self.spill_budget_bytes = spill_budget_bytes
        # Samples stop at 7/8 of the budget; the last 1/8 is kept for events.
        self._sample_limit = spill_budget_bytes - spill_budget_bytes // 8
        self._disk: DiskOps = disk if disk is not None else OsDisk()
        self._pipeline = pipeline_identity()
        client_dir = Path(root) / client_id
        try:
            client_dir.mkdir(parents=True, exist_ok=True)
            sid = session_id if session_id is not None else _default_session_id(client_dir, meta)
        except OSError as exc:
            raise os_error("create the recording folder", client_dir, exc) from exc
        self.session_id = check_id("session id", sid)
        self.path = client_dir / self.session_id
        self._created_utc = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self._status = STATUS_RECORDING
        self._compressed = False
        self._end_t: float | None = None
        self._end_reason: str | None = None  # the exception that ended the session, if any
        self._snapshot: Any = None  # JSON form, made on the caller's thread
        self._last_flush: float | None = None
        self._closed = False
        self._tables: dict[str, TableFile] = {}
        # Owned by the caller's thread.
        self._rows = {spec.name: 0 for spec in TABLES}  # rows accepted
        self._dropped = {spec.name: 0 for spec in TABLES}
        self._added_cost = 0
        self._sidecar_gen = 0  # bumped when the sidecar must be rewritten on the next round
        self._snapshot_gen = 0  # bumped for a newer snapshot (rewritten every 10 s at most)
        self._gap: _Gap | None = None
        self._drop_moment = False  # this moment's input was dropped: drop its outputs too
        # Owned by the writer.
        self._written_cost = 0
        self._sidecar_written_gen = 0
        self._snapshot_written_gen = 0
        self._sidecar_written_at = time.monotonic()
        self._error: str | None = None  # the last write failure, None once a round succeeds
        self._create_folder(client_dir)
        try:
            for spec in TABLES:
                self._tables[spec.name] = TableFile(spec, self.path / spec.filename)
        except OSError as exc:
            self._close_files()
            raise os_error("open the recording", self.path, exc) from exc
        self._writer: WriterThread | None = None
        if writer_thread:
            self._writer = WriterThread(
                f"recorder {self.client_id}/{self.session_id}", self._write_round
            )

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
            fsync_dir(tmp)
            if self.path.exists():
                raise RecordingError(
                    f"recording {self.path} appeared while it was being created; not overwriting"
                )
            os.rename(tmp, self.path)
            fsync_dir(client_dir)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise os_error("create the recording", self.path, exc) from exc
        except RecordingError:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        log.info("recording session %s of %s to %s", self.session_id, self.client_id, self.path)

    def _sidecar(self) -> dict[str, Any]:
        # Runs on the writer thread: reads only attributes the caller replaces whole.
        rows = {
            spec.name: t.durable_rows if (t := self._tables.get(spec.name)) else 0
            for spec in TABLES
        }
        return {
            "Format": FORMAT_NAME,
            "FormatVersion": FORMAT_VERSION,
            "SoftwareName": "biofeedback",
            "SoftwareVersion": __version__,
            "Pipeline": self._pipeline,
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
            "snapshot": self._snapshot,
            "files": {spec.filename: spec.sidecar_entry() for spec in TABLES},
        }

    def _sidecar_text(self) -> str:
        return json.dumps(self._sidecar(), indent=2, sort_keys=False, allow_nan=False) + "\n"

    # ---- recording ----------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RecordingError(f"recording {self.path} is closed")

    def _seen(self, t: float) -> None:
        if self.start_t is None:
            self.start_t = float(t)
            self._sidecar_gen += 1
        self._end_t = float(t) if self._end_t is None else max(self._end_t, float(t))

    @property
    def held_bytes(self) -> int:
        """Memory held by rows not yet on disk (queued, or kept after a failed write)."""
        return self._added_cost - self._written_cost

    def _full(self, kind: str) -> bool:
        limit = self._sample_limit if kind == SAMPLE else self.spill_budget_bytes
        return self.held_bytes >= limit

    def _add(self, table: str, values: tuple[Any, ...]) -> None:
        line = encode_row(self._tables[table].spec, values)
        self._tables[table].queue.append(line)
        self._added_cost += row_cost(line)
        self._rows[table] += 1

    def _drop(self, rows: Mapping[str, int], kind: str, t: float) -> None:
        gap = self._gap
        if gap is None:
            gap = self._gap = _Gap(self._error)
            log.error(
                "recording %s: %d bytes of rows wait in memory, the budget is %d: dropping "
                "samples until the disk takes rows again; events are kept (%s)",
                self.path,
                self.held_bytes,
                self.spill_budget_bytes,
                self._error or "the disk has not taken them yet",
            )
        if self._error is not None:
            gap.error = self._error
        if kind == EVENT and not any(k == EVENT for _, k in gap.dropped):
            log.error(
                "recording %s: the whole memory budget of %d bytes is used: dropping events too",
                self.path,
                self.spill_budget_bytes,
            )
        t = float(t)
        for table, n in rows.items():
            if not n:
                continue
            self._dropped[table] += n
            d = gap.dropped.get((table, kind))
            if d is None:
                gap.dropped[(table, kind)] = _Dropped(n, t, t)
            else:
                d.rows += n
                d.from_t, d.to_t = min(d.from_t, t), max(d.to_t, t)

    def _end_gap(self) -> None:
        """Record the open gap in gaps.tsv (it is recorded whatever the budget: a few rows)."""
        gap, self._gap = self._gap, None
        if gap is None:
            return
        why = gap.error or "the disk did not take rows fast enough"
        reason = f"{why} (memory budget of {self.spill_budget_bytes} bytes used up)"
        order = {spec.name: i for i, spec in enumerate(TABLES)}
        for (table, kind), d in sorted(gap.dropped.items(), key=lambda kv: order[kv[0][0]]):
            self._add(GAPS.name, (d.from_t, d.to_t, table, kind, d.rows, reason))
        log.warning("recording %s: dropped %s; recorded in gaps.tsv", self.path, gap.describe())

    def input(self, item: object, seq: int) -> None:
        """Log one session input (Notification, DeviceEvent, command, Tick) in processing order."""
        self._check_open()
        try:
            values = encode_input(item, seq)
        except TypeError as exc:
            raise RecordingError(str(exc)) from exc
        t = float(values[1])
        if values[2] in SAMPLE_INPUTS:
            # A moment's input and its outputs are kept or dropped together.
            self._drop_moment = self._full(SAMPLE)
            if self._drop_moment:
                self._drop({INPUTS.name: 1}, SAMPLE, t)
                return
            self._end_gap()
        elif self._full(EVENT):
            self._drop({INPUTS.name: 1}, EVENT, t)
            return
        self._seen(t)
        self._add(INPUTS.name, values)

    def update(self, u: BeatUpdate) -> None:
        """Log one pipeline update: a beats, metrics and arousal row (and frequency when new)."""
        self._check_open()
        b = u.beat
        revised: tuple[CleanBeat, ...] = getattr(u, "revised", ())
        f = u.frequency
        if self._drop_moment or self._full(SAMPLE):
            rows = {
                BEATS.name: 1,
                REVISIONS.name: len(revised),
                METRICS.name: 1,
                FREQUENCY.name: int(f is not None),
                AROUSAL.name: 1,
            }
            self._drop(rows, SAMPLE, u.t)
            return
        self._end_gap()
        self._seen(u.t)
        self._add(
            BEATS.name,
            (
                u.t,
                None if b is None else b.rr_ms,
                None if b is None else b.raw_rr_ms,
                u.hr_bpm,
                None if b is None else b.corrected,
                None if b is None else b.artifact,
                None if b is None else b.contact,
                u.rejected,
            ),
        )
        for r in revised:
            self._add(
                REVISIONS.name, (u.t, r.t, r.rr_ms, r.raw_rr_ms, r.corrected, r.artifact, r.contact)
            )
        q = u.quality
        self._add(
            METRICS.name,
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
            ),
        )
        if f is not None:
            self._add(
                FREQUENCY.name,
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
                ),
            )
        a = u.arousal
        self._add(
            AROUSAL.name, (a.t, a.value, a.confidence, a.fast, a.slow, a.basis.value, a.reason)
        )

    def events(self, evs: Iterable[SessionEvent]) -> None:
        """Log session events (transitions, check-ins, ...) as events.tsv rows."""
        self._check_open()
        for ev in evs:
            self._event_row(ev, ev.kind)

    def assessment_events(self, evs: Iterable[AssessmentEvent]) -> None:
        """Log the resonance assessment's events as events.tsv rows, their kind prefixed
        "assessment_" and their states the assessment's (docs/resonance.md)."""
        self._check_open()
        for ev in evs:
            self._event_row(ev, f"assessment_{ev.kind}")

    def _event_row(self, ev: SessionEvent | AssessmentEvent, kind: str) -> None:
        if self._full(EVENT):
            self._drop({EVENTS.name: 1}, EVENT, ev.t)
            return
        self._seen(ev.t)
        start = ev.t if self.start_t is None else self.start_t
        self._add(
            EVENTS.name,
            (
                ev.t - start,
                0.0,
                kind,
                ev.seq,
                ev.t,
                ev.actor.value,
                ev.from_state.value,
                ev.to_state.value,
                ev.reason,
                dict(ev.values),
            ),
        )

    def pmd(self, r: PmdReading) -> None:
        """Log one raw-data reading: a pmd.tsv row (bytes kept), and ECG samples in ecg.tsv.

        Samples and frames are samples (dropped first when the disk is full); a gap, a malformed
        frame or a status is an event, kept as long as anything is.
        """
        self._check_open()
        if isinstance(r, EcgSamples | AccSamples):
            ecg = isinstance(r, EcgSamples)
            if self._full(SAMPLE):
                self._drop({PMD.name: 1, ECG.name: len(r.t) if ecg else 0}, SAMPLE, r.received_t)
                return
            self._end_gap()
            self._seen(r.received_t)
            factor = r.factor if isinstance(r, AccSamples) else None
            stream = "ecg" if ecg else "acc"
            self._add(
                PMD.name,
                (r.received_t, r.device, stream, stream, r.sensor_time_ns, r.t[0], r.t[-1],
                 len(r.t), r.payload, factor, None, None),
            )  # fmt: skip
            if isinstance(r, EcgSamples):
                for t, uv in zip(r.t, r.uv, strict=True):
                    self._add(ECG.name, (t, uv))
            return
        t = r.received_t if isinstance(r, PmdMalformed) else r.t
        if self._full(EVENT):
            self._drop({PMD.name: 1}, EVENT, t)
            return
        self._seen(t)
        row: tuple[Any, ...]
        if isinstance(r, PmdGap):
            row = (t, r.device, "gap", r.stream.value, None, None, None, r.lost_samples, None,
                   None, r.gap_s, r.reason)  # fmt: skip
        elif isinstance(r, PmdMalformed):
            row = (t, r.device, "malformed", None, None, None, None, None, r.payload, None, None,
                   r.error)  # fmt: skip
        else:
            assert isinstance(r, PmdStatus)
            stream_name = r.stream.value if r.stream is not None else None
            detail = r.detail if r.ok else f"failed: {r.detail}"
            row = (t, r.device, "status", stream_name, None, None, None, None, None, None, None,
                   detail)  # fmt: skip
        self._add(PMD.name, row)

    def snapshot(self, snap: object) -> None:
        """Keep the latest session state; the writer puts it into the sidecar within 10 s (and
        at every `flush()` and at close)."""
        self._check_open()
        self._snapshot = jsonable(snap)
        self._snapshot_gen += 1

    def set_meta(self, **fields: Any) -> None:
        """Add or replace sidecar `meta` fields (device, battery, baseline, config, protocol...).

        The writer rewrites the sidecar at once (atomically), without waiting for the next
        second; a failure is reported like a failed row write.
        """
        self._check_open()
        self._meta = {**self._meta, **jsonable(fields)}
        self._sidecar_gen += 1
        self._request(force=False)

    # ---- writing ------------------------------------------------------------------------

    def _write_round(self, force: bool) -> None:
        """One round of the writer: every queued row to disk and synced, then the sidecar if it
        changed. Errors are kept in `error` (and logged when they change), never raised."""
        first: RecordingError | None = None
        for t in self._tables.values():
            t.take()
        for t in self._tables.values():
            try:
                self._written_cost += t.write(self._disk)
            except OSError as exc:
                first = first or os_error("write", t.path, exc)
        gen, snap_gen = self._sidecar_gen, self._snapshot_gen
        now = time.monotonic()
        snapshot_due = force or now - self._sidecar_written_at >= self.SNAPSHOT_INTERVAL_S
        if first is None and (
            gen != self._sidecar_written_gen
            or (snap_gen != self._snapshot_written_gen and snapshot_due)
        ):
            try:
                self._disk.replace_file(self.path / SIDECAR, self._sidecar_text())
            except OSError as exc:
                first = os_error("write", self.path / SIDECAR, exc)
            else:
                self._sidecar_written_gen, self._snapshot_written_gen = gen, snap_gen
                self._sidecar_written_at = now
        self._set_error(None if first is None else str(first))

    def _set_error(self, error: str | None) -> None:
        before = self._error
        if error is not None and error != before:
            log.error("%s", error)
        elif error is None and before is not None:
            log.warning("recording %s works again: the rows kept in memory are written", self.path)
        self._error = error

    def _request(self, *, force: bool) -> int:
        if self._writer is not None:
            return self._writer.request(force=force)
        self._write_round(force)
        return 0

    @property
    def error(self) -> str | None:
        """The last write failure, None once the writer wrote everything again."""
        return self._error

    @property
    def pending_rows(self) -> int:
        """Rows accepted and not yet on disk (queued, being written, or kept after a failure)."""
        return sum(self._rows.values()) - sum(t.durable_rows for t in self._tables.values())

    @property
    def rows(self) -> dict[str, int]:
        """Rows recorded so far per file (written or waiting to be written)."""
        return dict(self._rows)

    @property
    def durable_rows(self) -> dict[str, int]:
        """Rows on disk and synced per file: what a crash now would leave."""
        return {name: t.durable_rows for name, t in self._tables.items()}

    @property
    def dropped_rows(self) -> dict[str, int]:
        """Rows dropped per file because the memory budget ran out (see gaps.tsv)."""
        return dict(self._dropped)

    def flush_if_due(self, now_monotonic: float) -> None:
        """Once `flush_interval_s` has passed since the last time (the runner's loop calls this
        after every input), ask the writer to write and sync the queued rows; does not wait.

        Raises RecordingError (naming the file) while the writer's last round failed; rows are
        kept (within the budget) and retried every time. Without a writer thread the rows are
        written here, on the calling thread.
        """
        if self._closed:
            return
        last = self._last_flush
        if last is None or now_monotonic - last >= self.flush_interval_s:
            self._last_flush = now_monotonic
            self._request(force=False)
            if self._error is not None:
                raise RecordingError(self._error)

    def flush(self) -> None:
        """Write and sync every queued row and a changed sidecar now, and wait until it is done;
        RecordingError names the file that failed. Blocks: not for the event loop."""
        number = self._request(force=True)
        if self._writer is not None:
            self._writer.wait(number)
        if self._error is not None:
            raise RecordingError(self._error)

    def close(self, compress: bool = False, *, status: str = STATUS_COMPLETE) -> None:
        """Flush, mark the recording complete, end the writer thread and close the files;
        optionally gzip them. Blocks until the last rows are on disk.

        When the final flush fails the recording stays open (call close again to retry).
        """
        if self._closed:
            return
        self._end_gap()
        self._status = status
        self._sidecar_gen += 1
        try:
            self.flush()
        except RecordingError:
            self._status = STATUS_RECORDING
            self._sidecar_gen += 1
            raise
        self._stop_writer()
        self._close_files()
        self._closed = True
        if compress:
            self._compress()
        log.info("recording %s closed (%s)", self.path, status)

    def _stop_writer(self) -> None:
        if self._writer is not None:
            self._writer.stop()
            self._writer = None

    def _close_files(self) -> None:
        for t in self._tables.values():
            with contextlib.suppress(OSError):
                t.close()

    def _abandon(self) -> None:
        """End the recording without its last rows (the final flush failed at exit)."""
        self._stop_writer()
        lost = self.pending_rows
        self._close_files()
        self._closed = True
        log.error(
            "recording %s closed with %d row(s) that could not be written: %s",
            self.path,
            lost,
            self._error,
        )

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
                raise os_error("compress", src, exc) from exc
        self._compressed = True
        try:
            write_atomic(self.path / SIDECAR, self._sidecar_text())
        except OSError as exc:
            raise os_error("write", self.path / SIDECAR, exc) from exc

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
        try:
            self.close(status=STATUS_INTERRUPTED if failed else STATUS_COMPLETE)
        except RecordingError:
            # Leaving the block ends the writer thread whatever happens: no stray threads.
            self._abandon()
            raise


def _td(td: TimeDomain | None) -> tuple[Any, ...]:
    if td is None:
        return (None,) * 7
    return (td.window_s, td.n, td.mean_nn_ms, td.hr_bpm, td.rmssd_ms, td.sdnn_ms, td.pnn50_pct)
