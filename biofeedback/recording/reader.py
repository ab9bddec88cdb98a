"""Reading a recording back: the sidecar, every table, and the input log for replay.

A recording cut short by a crash reads back up to its last flush: a last line without its newline
(the write was interrupted) is skipped and reported in `RecordingInfo.partial_lines`, and the
sidecar still says `status: recording`, which `RecordingInfo.incomplete` reports. Anything else
that does not parse is a RecordingError naming the file and line.

Recordings of an older format version are read through `biofeedback.recording.migrate` (the files
are not changed; `RecordingInfo.format_version` says what was on disk); a newer one is refused.
"""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

import numpy as np
import numpy.typing as npt

from biofeedback.errors import ParseError, RecordingError
from biofeedback.recording.inputs import InputDecoder, RecordedInput
from biofeedback.recording.migrate import migrate_sidecar, table_optional
from biofeedback.recording.recorder import STATUS_COMPLETE
from biofeedback.recording.schema import (
    AROUSAL,
    BEATS,
    EVENTS,
    FORMAT_NAME,
    FORMAT_VERSION,
    FREQUENCY,
    GAPS,
    INPUTS,
    METRICS,
    SIDECAR,
    TABLE_BY_NAME,
    TABLES,
    ColType,
    TableSpec,
    decode_cell,
)

log = logging.getLogger(__name__)

Row = dict[str, Any]


def table_path(session_dir: Path, spec: TableSpec) -> Path:
    """The file holding `spec` in `session_dir`: plain TSV, else its gzipped form."""
    plain = Path(session_dir) / spec.filename
    if plain.exists():
        return plain
    gz = plain.with_name(plain.name + ".gz")
    if gz.exists():
        return gz
    raise RecordingError(f"{plain} is missing (nor is there a {gz.name}): not a complete recording")


def open_table_file(path: Path) -> IO[bytes]:
    """A table file opened for reading bytes, gunzipped when it ends in .gz."""
    if path.name.endswith(".gz"):
        return cast(IO[bytes], gzip.open(path, "rb"))
    return open(path, "rb")


@dataclass(slots=True)
class _Partial:
    notes: list[str] = field(default_factory=list)


def iter_rows(path: Path, spec: TableSpec, partial: _Partial | None = None) -> Iterator[Row]:
    """Rows of one table file as dicts of typed values; errors name the file and line."""
    try:
        with open_table_file(path) as f:
            header = f.readline()
            if not header:
                raise RecordingError(f"{path} line 1: file is empty (no header row)")
            if header.decode("utf-8", "replace") != spec.header:
                got = header.decode("utf-8", "replace").rstrip("\n")
                raise RecordingError(
                    f"{path} line 1: header {got[:200]!r} does not match the {spec.name} table of "
                    f"format version {FORMAT_VERSION} ({spec.header.rstrip()[:200]!r})"
                )
            n = len(spec.columns)
            for lineno, raw in enumerate(f, start=2):
                if not raw.endswith(b"\n"):
                    note = (
                        f"{path} line {lineno}: partial last line ({len(raw)} bytes, no newline) "
                        "ignored; the writer was interrupted"
                    )
                    log.debug("%s", note)  # open_session reports it once
                    if partial is not None:
                        partial.notes.append(note)
                    return
                try:
                    text = raw[:-1].decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise RecordingError(f"{path} line {lineno}: not UTF-8 text ({exc})") from exc
                cells = text.split("\t")
                if len(cells) != n:
                    raise RecordingError(
                        f"{path} line {lineno}: {len(cells)} column(s), expected {n} "
                        f"({', '.join(c.name for c in spec.columns)})"
                    )
                try:
                    yield {
                        c.name: decode_cell(c, v) for c, v in zip(spec.columns, cells, strict=True)
                    }
                except ParseError as exc:
                    raise RecordingError(f"{path} line {lineno}: {exc}") from exc
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise RecordingError(f"cannot read {path}: {exc}") from exc


def read_sidecar(session_dir: Path) -> dict[str, Any]:
    """The parsed session.json in the current format (an older version migrated, its
    `FormatVersion` then being the current one); RecordingError when missing, not JSON, another
    format, or a newer version."""
    return _read_sidecar(session_dir)[0]


def _read_sidecar(session_dir: Path) -> tuple[dict[str, Any], int]:
    path = Path(session_dir) / SIDECAR
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise RecordingError(f"{path} is missing: {session_dir} is not a recording") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise RecordingError(f"cannot read {path}: {exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RecordingError(
            f"{path} line {exc.lineno} column {exc.colno}: invalid JSON ({exc.msg})"
        ) from exc
    if not isinstance(data, dict) or data.get("Format") != FORMAT_NAME:
        raise RecordingError(f'{path}: not a {FORMAT_NAME} sidecar (no "Format" field)')
    m = migrate_sidecar(data, path)
    return m.sidecar, m.written_version


@dataclass(frozen=True, slots=True)
class RecordingInfo:
    """What `open_session` found: sidecar, files, row counts and how complete the recording is."""

    path: Path
    sidecar: dict[str, Any]
    files: dict[str, Path]  # table name -> file
    row_counts: dict[str, int]
    partial_lines: tuple[str, ...]  # notes about interrupted last lines that were skipped
    format_version: int = FORMAT_VERSION  # the version written on disk (older ones are migrated)

    @property
    def migrated(self) -> bool:
        """Written in an older format version and read through its migration."""
        return self.format_version != FORMAT_VERSION

    @property
    def pipeline(self) -> dict[str, Any] | None:
        """The sidecar's `Pipeline` (fingerprint of the code that computed the numbers); None
        for a recording older than format 2."""
        p = self.sidecar.get("Pipeline")
        return p if isinstance(p, dict) else None

    @property
    def dropped_rows(self) -> int:
        """Rows the recorder dropped while the disk was full (see gaps.tsv)."""
        return sum(int(r["rows"] or 0) for r in self.gaps())

    @property
    def client_id(self) -> str:
        return str(self.sidecar.get("client_id", ""))

    @property
    def session_id(self) -> str:
        return str(self.sidecar.get("session_id", ""))

    @property
    def status(self) -> str:
        return str(self.sidecar.get("status", ""))

    @property
    def complete(self) -> bool:
        """Closed normally and nothing dropped: nothing can be missing."""
        return (
            self.status == STATUS_COMPLETE
            and not self.partial_lines
            and not self.row_counts.get(GAPS.name)
        )

    @property
    def incomplete(self) -> bool:
        """The writer never closed it (crash, kill, power loss), it ended after an error, or rows
        were dropped while the disk was full (`gaps()` says which).

        Everything up to the writer's last flush is present; this reader recovered it.
        """
        return not self.complete

    @property
    def start_t(self) -> float | None:
        v = self.sidecar.get("start_t")
        return float(v) if isinstance(v, int | float) else None

    @property
    def meta(self) -> dict[str, Any]:
        m = self.sidecar.get("meta")
        return m if isinstance(m, dict) else {}

    @property
    def snapshot(self) -> Any:
        return self.sidecar.get("snapshot")

    def rows(self, table: str) -> list[Row]:
        """Every row of one table (inputs, beats, metrics, frequency, arousal, events)."""
        spec = TABLE_BY_NAME.get(table)
        if spec is None:
            raise RecordingError(f"no table {table!r}; tables: {', '.join(TABLE_BY_NAME)}")
        path = self.files.get(table)
        if path is None:  # a table the recording's format version did not have yet
            return []
        return list(iter_rows(path, spec))

    def arrays(self, table: str) -> dict[str, npt.NDArray[Any]]:
        """One table as numpy columns: numbers as float64 (n/a is NaN), booleans as float 1/0/NaN,
        text and JSON as object arrays (n/a is None)."""
        spec = TABLE_BY_NAME.get(table)
        if spec is None:
            raise RecordingError(f"no table {table!r}; tables: {', '.join(TABLE_BY_NAME)}")
        rows = self.rows(table)
        out: dict[str, npt.NDArray[Any]] = {}
        for c in spec.columns:
            vals = [r[c.name] for r in rows]
            if c.type in (ColType.FLOAT, ColType.INT, ColType.BOOL):
                out[c.name] = np.array(
                    [np.nan if v is None else float(v) for v in vals], dtype=np.float64
                )
            else:
                arr = np.empty(len(vals), dtype=object)
                arr[:] = vals
                out[c.name] = arr
        return out

    def beats(self) -> dict[str, npt.NDArray[Any]]:
        return self.arrays(BEATS.name)

    def metrics(self) -> dict[str, npt.NDArray[Any]]:
        return self.arrays(METRICS.name)

    def frequency(self) -> dict[str, npt.NDArray[Any]]:
        return self.arrays(FREQUENCY.name)

    def arousal(self) -> dict[str, npt.NDArray[Any]]:
        return self.arrays(AROUSAL.name)

    def events(self) -> list[Row]:
        return self.rows(EVENTS.name)

    def gaps(self) -> list[Row]:
        """Rows dropped while the disk was full, per table and kind (empty: nothing dropped)."""
        return self.rows(GAPS.name)


def open_session(session_dir: Path) -> RecordingInfo:
    """Check a recording folder and describe it; every table is read once to validate it."""
    session_dir = Path(session_dir)
    if not session_dir.is_dir():
        raise RecordingError(f"{session_dir} is not a folder (expected a session recording)")
    sidecar, version = _read_sidecar(session_dir)
    files: dict[str, Path] = {}
    counts: dict[str, int] = {}
    partial = _Partial()
    for spec in TABLES:
        if table_optional(spec.name, version) and not _table_exists(session_dir, spec):
            counts[spec.name] = 0
            continue
        path = table_path(session_dir, spec)
        files[spec.name] = path
        counts[spec.name] = sum(1 for _ in iter_rows(path, spec, partial))
    info = RecordingInfo(session_dir, sidecar, files, counts, tuple(partial.notes), version)
    if info.migrated:
        log.info(
            "recording %s is format version %d: read through its migration to version %d",
            session_dir,
            version,
            FORMAT_VERSION,
        )
    if info.incomplete:
        dropped = info.dropped_rows if counts[GAPS.name] else 0
        log.warning(
            "recording %s is incomplete (status %r%s%s): read back up to its last flush",
            session_dir,
            info.status,
            f", {len(info.partial_lines)} partial line(s)" if info.partial_lines else "",
            f", {dropped} row(s) dropped while the disk was full (gaps.tsv)" if dropped else "",
        )
    return info


def _table_exists(session_dir: Path, spec: TableSpec) -> bool:
    plain = session_dir / spec.filename
    return plain.exists() or plain.with_name(plain.name + ".gz").exists()


def iter_input_rows(session_dir: Path) -> Iterator[tuple[int, RecordedInput]]:
    """(seq, input) pairs of a recording, in processing order; notifications re-parsed."""
    path = table_path(Path(session_dir), INPUTS)
    decoder = InputDecoder()
    for lineno, row in enumerate(iter_rows(path, INPUTS), start=2):
        try:
            item = decoder.decode(row)
        except ParseError as exc:
            raise RecordingError(f"{path} line {lineno}: {exc}") from exc
        yield int(row["seq"]) if row["seq"] is not None else lineno - 1, item
    if decoder.timing_mismatches:
        log.warning(
            "%s: %d notification(s) re-parsed to other beat times than recorded; the recorded "
            "times were used",
            path,
            decoder.timing_mismatches,
        )


def iter_inputs(session_dir: Path) -> Iterator[RecordedInput]:
    """Every recorded input in processing order, notifications rebuilt from their raw bytes
    through `BeatTimer.notification` (the live parse path)."""
    for _, item in iter_input_rows(session_dir):
        yield item


def list_sessions(root: Path, client_id: str) -> list[Path]:
    """The recording folders of one client under `root`, oldest name first."""
    client_dir = Path(root) / client_id
    if not client_dir.is_dir():
        return []
    return sorted(
        p
        for p in client_dir.iterdir()
        if p.is_dir() and not p.name.startswith(".") and (p / SIDECAR).exists()
    )
