"""Replay: feed a recording's inputs, in their recorded order, to a fresh session core.

The replay is itself recorded (a new session folder beside the others, `replay_of` in its sidecar)
and compared with the original, table by table and cell by cell: beats, revisions, metrics,
frequency, arousal and events must be identical for a deterministic core. The comparison works on
the written text, whose floats round-trip exactly, so "identical" means bit-identical numbers.
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
    EVENTS,
    FREQUENCY,
    METRICS,
    REVISIONS,
    SIDECAR,
    TableSpec,
)
from biofeedback.signal.measures import BeatUpdate

log = logging.getLogger(__name__)

T = TypeVar("T")

COMPARED: tuple[TableSpec, ...] = (BEATS, REVISIONS, METRICS, FREQUENCY, AROUSAL, EVENTS)


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

    @property
    def identical(self) -> bool:
        return not self.differences


def record_output(rec: SessionRecorder, out: CoreOutputLike) -> None:
    """Record what the core produced for one input (the live runner does the same)."""
    for u in out.updates:
        rec.update(u)
    if out.events:
        rec.events(out.events)
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
    diffs = tuple(compare_sessions(session_dir, rec.path)) if compare else ()
    if diffs:
        log.warning("replay of %s differs from the recording: %s", session_dir, diffs[0])
    return ReplayResult(Path(session_dir), rec.path, n, diffs)


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
