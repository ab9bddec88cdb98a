"""Measured progress: per step, per session, and the trend across one client's sessions.

All pure data. `trend()` takes past `SessionSummary` values (however the caller stored them) and
answers: for the same step, does recovery get faster, does peak arousal fall?
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from biofeedback.errors import BiofeedbackError


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
