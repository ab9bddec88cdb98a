"""Replay: feed a recording's inputs, in their recorded order, to a fresh session core.

The replay is itself recorded (a new session folder beside the others, `replay_of` in its sidecar)
and compared with the original, table by table and cell by cell: beats, revisions, metrics,
frequency, arousal and events must be identical for a deterministic core. The comparison works on
the written text, whose floats round-trip exactly, so "identical" means bit-identical numbers.

When they differ, the result says why it expects them to, or that it does not: the recording was
made by another pipeline (its sidecar's `Pipeline` fingerprint or library versions differ from
this software's), it predates pipeline fingerprints (format version 1, read through migration),
or it lost rows while its disk was full (gaps.tsv). Only a difference with the same pipeline and
no gaps is a failure to reproduce.
"""

from __future__ import annotations

import logging
import time
import typing
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from biofeedback.errors import ParseError, RecordingError
from biofeedback.exposure.messages import SessionEvent
from biofeedback.recording.inputs import RecordedInput, build_dataclass
from biofeedback.recording.pipeline import pipeline_identity
from biofeedback.recording.pmd_replay import pmd_readings_of
from biofeedback.recording.reader import (
    RecordingInfo,
    iter_input_rows,
    open_session,
    open_table_file,
    table_path,
)
from biofeedback.recording.recorder import SessionRecorder
from biofeedback.recording.schema import (
    AROUSAL,
    BEATS,
    ECG,
    EVENTS,
    FORMAT_VERSION,
    FREQUENCY,
    METRICS,
    PMD,
    REVISIONS,
    SIDECAR,
    TableSpec,
)
from biofeedback.signal.measures import BeatUpdate

log = logging.getLogger(__name__)

T = TypeVar("T")

COMPARED: tuple[TableSpec, ...] = (BEATS, REVISIONS, METRICS, FREQUENCY, AROUSAL, EVENTS)
# A strap's raw data (format 3 on): rebuilt from its recorded bytes and compared too.
COMPARED_RAW: tuple[TableSpec, ...] = (PMD, ECG)


class CoreOutputLike(Protocol):
    """What one input produced (`biofeedback.service.core.CoreOutput` has this shape)."""

    @property
    def updates(self) -> Sequence[BeatUpdate]: ...

    @property
    def events(self) -> Sequence[SessionEvent]: ...


class ReplayCore(Protocol):
    """A synchronous, deterministic session core (`SessionCore` has this shape)."""

    def feed(self, item: Any) -> CoreOutputLike: ...


CoreFactory = Callable[[RecordingInfo], ReplayCore]


@dataclass(frozen=True, slots=True)
class ReplayResult:
    source: Path
    replay: Path
    inputs: int
    differences: tuple[str, ...]  # empty: the replay reproduced the recording exactly
    source_format: int = FORMAT_VERSION  # the recording's format version on disk
    source_pipeline: dict[str, Any] | None = None  # None: recorded before fingerprints (v1)
    replay_pipeline: dict[str, Any] | None = None
    dropped_rows: int = 0  # rows the recording lost while its disk was full

    @property
    def identical(self) -> bool:
        return not self.differences

    @property
    def migrated(self) -> bool:
        """The recording is an older format version, read through its migration."""
        return self.source_format != FORMAT_VERSION

    @property
    def pipeline_changes(self) -> list[str] | None:
        """What differs between the recording's pipeline and the replay's (code fingerprint,
        library versions); None when the recording names no pipeline (format version 1)."""
        if self.source_pipeline is None or self.replay_pipeline is None:
            return None
        return _pipeline_changes(self.source_pipeline, self.replay_pipeline)

    @property
    def pipeline_changed(self) -> bool | None:
        """The recording was made by other pipeline code or libraries; None: cannot tell."""
        changes = self.pipeline_changes
        return None if changes is None else bool(changes)

    @property
    def verdict(self) -> str:
        """One line: identical, different for a known reason, or not reproduced."""
        if self.identical:
            return (
                "identical: beats, metrics, arousal and every session decision match the recording"
            )
        n = len(self.differences)
        changes = self.pipeline_changes
        if changes:
            return (
                f"different ({n} difference(s)), expected: the pipeline changed since the "
                f"recording ({'; '.join(changes)}), so its numbers differ"
            )
        if changes is None:
            return (
                f"different ({n} difference(s)), expected: the recording is format version "
                f"{self.source_format}, made before recordings named their pipeline; the "
                "pipeline or the format changed since, so its numbers differ"
            )
        if self.dropped_rows:
            return (
                f"different ({n} difference(s)), expected: the recording lost "
                f"{self.dropped_rows} row(s) while its disk was full (see its gaps.tsv)"
            )
        fp = self.replay_pipeline.get("fingerprint") if self.replay_pipeline else None
        return (
            f"DIFFERENT from the recording ({n} difference(s)) with the same pipeline ({fp}): "
            "the replay does not reproduce it"
        )

    @property
    def exit_status(self) -> int:
        """`biofeedback replay`'s exit status: 0 when the replay is identical, or when it differs
        and the recording was made by another pipeline (its fingerprint or a library version
        differs) or names none (format version 1): the difference is then the change, not a
        failure to reproduce. 1 for a difference under the same pipeline, also when the
        recording lost rows (what was lost cannot be shown to reproduce)."""
        if self.identical or self.pipeline_changed is not False:
            return 0
        return 1

    @property
    def notes(self) -> tuple[str, ...]:
        """What the reader of the verdict should also know (migration, an unchanged result
        despite a pipeline change, gaps)."""
        out: list[str] = []
        if self.migrated:
            out.append(
                f"the recording is format version {self.source_format}, read through its "
                f"migration to version {FORMAT_VERSION}"
            )
        changes = self.pipeline_changes
        if self.identical and changes:
            out.append(
                f"the pipeline changed since the recording ({'; '.join(changes)}) but not its "
                "numbers"
            )
        if self.dropped_rows and (self.identical or self.pipeline_changed is not False):
            out.append(f"the recording lost {self.dropped_rows} row(s) while its disk was full")
        return tuple(out)


def _pipeline_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    out: list[str] = []
    if old.get("fingerprint") != new.get("fingerprint"):
        out.append(
            f"code {old.get('fingerprint')} (biofeedback {old.get('software')}) -> "
            f"{new.get('fingerprint')} (biofeedback {new.get('software')})"
        )
    libs_old, libs_new = old.get("libraries") or {}, new.get("libraries") or {}
    # Only the libraries today's pipeline computes with: one it no longer uses (neurokit2 in
    # recordings made before the native detector) cannot explain a difference.
    for name in sorted(libs_new):
        if libs_old.get(name) != libs_new.get(name):
            out.append(f"{name} {libs_old.get(name)} -> {libs_new.get(name)}")
    return out


def record_output(rec: SessionRecorder, out: CoreOutputLike) -> None:
    """Record what the core produced for one input (the live runner does the same)."""
    for u in out.updates:
        rec.update(u)
    if out.events:
        rec.events(out.events)
    assessment = getattr(out, "assessment_events", ())
    if assessment:
        rec.assessment_events(assessment)
    baseline = getattr(out, "baseline", None)
    if baseline is not None:
        rec.set_meta(baseline_created=baseline)


def meta_dataclass(info: RecordingInfo, key: str, cls: type[T]) -> T | None:
    """`cls` rebuilt from the sidecar's `meta[key]` (SignalConfig from "signal_config", Baseline
    from "baseline", ...), for a replay core factory; None when the key is absent."""
    data = info.meta.get(key)
    if data is None:
        return None
    if not isinstance(data, dict):
        raise RecordingError(f"{info.path / SIDECAR}: meta.{key} is not a JSON object")
    try:
        return typing.cast(T, build_dataclass(cls, data))
    except ParseError as exc:
        raise RecordingError(f"{info.path / SIDECAR}: meta.{key}: {exc}") from exc


def _replay_id(out_root: Path, info: RecordingInfo) -> str:
    base = f"{info.session_id}-replay"[:64]
    n = 1
    cand = base
    while (Path(out_root) / info.client_id / cand).exists():
        n += 1
        cand = f"{base[:60]}-{n}"
    return cand


def replay_session(
    session_dir: Path,
    out_root: Path,
    *,
    core_factory: CoreFactory,
    session_id: str | None = None,
    compare: bool = True,
    on_output: Callable[[RecordedInput, CoreOutputLike], None] | None = None,
) -> ReplayResult:
    """Replay `session_dir` through `core_factory(info)`, record it under `out_root`, compare.

    `on_output` sees every input with its output (to drive a dashboard, for instance).
    """
    info = open_session(session_dir)
    core = core_factory(info)
    meta = dict(info.meta)
    meta["start_t"] = info.start_t
    meta["replay_of"] = str(Path(session_dir).resolve())
    rec = SessionRecorder(
        out_root,
        client_id=info.client_id,
        session_id=session_id or _replay_id(out_root, info),
        meta=meta,
    )
    n = 0
    with rec:
        for seq, item in iter_input_rows(session_dir):
            out = core.feed(item)
            rec.input(item, seq)
            record_output(rec, out)
            if on_output is not None:
                on_output(item, out)
            n += 1
            rec.flush_if_due(time.monotonic())
        snap = getattr(core, "snapshot", None)
        if snap is not None:
            rec.snapshot(snap)
        has_raw = info.row_counts.get(PMD.name, 0) > 0
        if has_raw:
            for reading in pmd_readings_of(info):
                rec.pmd(reading)
    tables = COMPARED + COMPARED_RAW if has_raw else COMPARED
    diffs = tuple(compare_sessions(session_dir, rec.path, tables)) if compare else ()
    result = ReplayResult(
        Path(session_dir),
        rec.path,
        n,
        diffs,
        source_format=info.format_version,
        source_pipeline=info.pipeline,
        replay_pipeline=pipeline_identity(),
        dropped_rows=info.dropped_rows,
    )
    if diffs:
        log.warning("replay of %s: %s; first: %s", session_dir, result.verdict, diffs[0])
    return result


def _lines(path: Path) -> Iterator[bytes]:
    with open_table_file(path) as f:
        for raw in f:
            if raw.endswith(b"\n"):  # a crash's partial last line is not part of the recording
                yield raw[:-1]


def _txt(cell: bytes) -> str:
    return cell.decode("utf-8", "replace")


def compare_sessions(
    a: Path, b: Path, tables: Sequence[TableSpec] = COMPARED, *, max_per_table: int = 3
) -> list[str]:
    """Differences between two recordings' outputs, naming table, row and column; [] if equal."""
    out: list[str] = []
    for spec in tables:
        pa, pb = table_path(Path(a), spec), table_path(Path(b), spec)
        la, lb = list(_lines(pa)), list(_lines(pb))
        found = 0
        for lineno, (x, y) in enumerate(zip(la, lb, strict=False), start=1):
            if x == y:
                continue
            found += 1
            if found <= max_per_table:
                cx, cy = x.split(b"\t"), y.split(b"\t")
                cols = [
                    f"{c.name}: {_txt(u)!r} != {_txt(v)!r}"
                    for c, u, v in zip(spec.columns, cx, cy, strict=False)
                    if u != v
                ]
                out.append(f"{spec.filename} line {lineno}: " + "; ".join(cols or ["row differs"]))
        if found > max_per_table:
            out.append(f"{spec.filename}: {found - max_per_table} more differing line(s)")
        if len(la) != len(lb):
            out.append(f"{spec.filename}: {len(la) - 1} row(s) in {a}, {len(lb) - 1} in {b}")
    return out
