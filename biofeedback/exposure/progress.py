"""Measured progress: per step, per session, and the trend across one client's sessions.

All pure data. `trend()` takes past `SessionSummary` values (however the caller stored them) and
answers: for the same step, does recovery get faster, does peak arousal fall?
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from biofeedback.errors import BiofeedbackError, ParseError


@dataclass(frozen=True, slots=True)
class SudsRecord:
    """One SUDS answer: when, how much, which prompt(s) it answered, during which step."""

    t: float
    value: int
    prompts: tuple[str, ...]  # e.g. ("step_end", "step_start"); () when unprompted
    step_index: int | None


@dataclass(frozen=True, slots=True)
class StepProgress:
    """What happened in one step of the agenda during one session."""

    index: int
    title: str
    offered: bool = False
    started: bool = False
    completed: bool = False
    exposed_s: float = 0.0
    peak_arousal: float | None = None  # highest known arousal while exposing
    pauses: int = 0  # pauses that interrupted exposure
    pause_reasons: tuple[str, ...] = ()
    recovery_times_s: tuple[float, ...] = ()  # pause -> recovered, for each pause that recovered
    suds_before: int | None = None  # answer to the step-start check-in
    suds_after: int | None = None  # answer to the step-end check-in

    @property
    def mean_recovery_s(self) -> float | None:
        """Mean time from pause to recovered, over the pauses that recovered."""
        r = self.recovery_times_s
        return sum(r) / len(r) if r else None


@dataclass(frozen=True, slots=True)
class SessionSummary:
    """One session's measured progress, the unit of the across-session trend."""

    client_id: str
    protocol_name: str
    started_t: float
    ended_t: float
    final_state: str
    steps: tuple[StepProgress, ...]
    suds: tuple[SudsRecord, ...]
    total_exposed_s: float
    total_pauses: int
    pauses_by_reason: tuple[tuple[str, int], ...]
    mean_recovery_s: float | None
    completed_steps: int


@dataclass(frozen=True, slots=True)
class TrendPoint:
    started_t: float
    peak_arousal: float | None
    mean_recovery_s: float | None
    exposed_s: float
    pauses: int
    suds_before: int | None
    suds_after: int | None


@dataclass(frozen=True, slots=True)
class StepTrend:
    """One step (matched by title) across sessions, oldest first; slopes are per session."""

    title: str
    points: tuple[TrendPoint, ...]
    peak_slope: float | None  # arousal points per session (negative: falling)
    recovery_slope: float | None  # seconds per session (negative: recovering faster)
    peak_falling: bool | None  # None when fewer than two sessions have a value
    recovery_faster: bool | None


@dataclass(frozen=True, slots=True)
class ClientTrend:
    client_id: str
    sessions: int
    steps: tuple[StepTrend, ...]


def _slope(values: Sequence[float | None]) -> float | None:
    pts = [(float(i), v) for i, v in enumerate(values) if v is not None]
    if len(pts) < 2:
        return None
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    return sum((x - mx) * (y - my) for x, y in pts) / sxx


def trend(summaries: Sequence[SessionSummary]) -> ClientTrend:
    """The trend over one client's sessions (any order; sorted by start time).

    Only steps the client actually started are points of that step's trend. A least-squares slope
    over session order says whether peak arousal falls and whether recovery gets faster.
    Raises BiofeedbackError if the summaries belong to different clients or there are none.
    """
    if not summaries:
        raise BiofeedbackError("trend needs at least one session summary")
    clients = {s.client_id for s in summaries}
    if len(clients) != 1:
        raise BiofeedbackError(f"trend is per client; got sessions of {sorted(clients)}")
    ordered = sorted(summaries, key=lambda s: s.started_t)
    titles: list[str] = []
    for s in ordered:
        for st in s.steps:
            if st.started and st.title not in titles:
                titles.append(st.title)
    steps: list[StepTrend] = []
    for title in titles:
        points: list[TrendPoint] = []
        for s in ordered:
            matching = [st for st in s.steps if st.title == title and st.started]
            if not matching:
                continue
            st = matching[0]
            points.append(
                TrendPoint(
                    started_t=s.started_t,
                    peak_arousal=st.peak_arousal,
                    mean_recovery_s=st.mean_recovery_s,
                    exposed_s=st.exposed_s,
                    pauses=st.pauses,
                    suds_before=st.suds_before,
                    suds_after=st.suds_after,
                )
            )
        ps = _slope([p.peak_arousal for p in points])
        rs = _slope([p.mean_recovery_s for p in points])
        steps.append(
            StepTrend(
                title=title,
                points=tuple(points),
                peak_slope=ps,
                recovery_slope=rs,
                peak_falling=None if ps is None else ps < 0,
                recovery_faster=None if rs is None else rs < 0,
            )
        )
    return ClientTrend(client_id=ordered[0].client_id, sessions=len(ordered), steps=tuple(steps))


def _num(d: Mapping[str, Any], key: str, *, optional: bool = False) -> float | None:
    v = d.get(key)
    if v is None and optional:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise ParseError(f"session summary field {key!r} must be a finite number, got {v!r}")
    return float(v)


def _int(d: Mapping[str, Any], key: str, *, optional: bool = False) -> int | None:
    v = d.get(key)
    if v is None and optional:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise ParseError(f"session summary field {key!r} must be a whole number, got {v!r}")
    return v


def _str(d: Mapping[str, Any], key: str) -> str:
    v = d.get(key)
    if not isinstance(v, str):
        raise ParseError(f"session summary field {key!r} must be a string, got {v!r}")
    return v


def _seq(d: Mapping[str, Any], key: str) -> list[Any]:
    v = d.get(key, [])
    if not isinstance(v, list | tuple):
        raise ParseError(f"session summary field {key!r} must be a list, got {v!r}")
    return list(v)


def summary_from_dict(d: Mapping[str, Any]) -> SessionSummary:
    """Rebuild a SessionSummary from its JSON form (`dataclasses.asdict` + json round trip).

    For stored summaries fed to `trend()`; raises ParseError naming the first bad field.
    """
    if not isinstance(d, Mapping):
        raise ParseError(f"a session summary must be a JSON object, got {type(d).__name__}")
    steps = []
    for raw in _seq(d, "steps"):
        if not isinstance(raw, Mapping):
            raise ParseError(f"session summary step must be an object, got {raw!r}")
        flags = {}
        for key in ("offered", "started", "completed"):
            v = raw.get(key, False)
            if not isinstance(v, bool):
                raise ParseError(f"session summary field {key!r} must be true or false, got {v!r}")
            flags[key] = v
        steps.append(
            StepProgress(
                index=_int(raw, "index") or 0,
                title=_str(raw, "title"),
                exposed_s=_num(raw, "exposed_s") or 0.0,
                peak_arousal=_num(raw, "peak_arousal", optional=True),
                pauses=_int(raw, "pauses") or 0,
                pause_reasons=tuple(str(r) for r in _seq(raw, "pause_reasons")),
                recovery_times_s=tuple(
                    _num({"recovery_times_s": r}, "recovery_times_s") or 0.0
                    for r in _seq(raw, "recovery_times_s")
                ),
                suds_before=_int(raw, "suds_before", optional=True),
                suds_after=_int(raw, "suds_after", optional=True),
                **flags,
            )
        )
    suds = []
    for raw in _seq(d, "suds"):
        if not isinstance(raw, Mapping):
            raise ParseError(f"session summary SUDS record must be an object, got {raw!r}")
        suds.append(
            SudsRecord(
                t=_num(raw, "t") or 0.0,
                value=_int(raw, "value") or 0,
                prompts=tuple(str(p) for p in _seq(raw, "prompts")),
                step_index=_int(raw, "step_index", optional=True),
            )
        )
    reasons = []
    for pair in _seq(d, "pauses_by_reason"):
        if not (isinstance(pair, list | tuple) and len(pair) == 2 and isinstance(pair[1], int)):
            raise ParseError(f"session summary pauses_by_reason entry is malformed: {pair!r}")
        reasons.append((str(pair[0]), int(pair[1])))
    return SessionSummary(
        client_id=_str(d, "client_id"),
        protocol_name=_str(d, "protocol_name"),
        started_t=_num(d, "started_t") or 0.0,
        ended_t=_num(d, "ended_t") or 0.0,
        final_state=_str(d, "final_state"),
        steps=tuple(steps),
        suds=tuple(suds),
        total_exposed_s=_num(d, "total_exposed_s") or 0.0,
        total_pauses=_int(d, "total_pauses") or 0,
        pauses_by_reason=tuple(reasons),
        mean_recovery_s=_num(d, "mean_recovery_s", optional=True),
        completed_steps=_int(d, "completed_steps") or 0,
    )
