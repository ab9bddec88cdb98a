"""What happened in a recorded session, derived from its files: state intervals, pauses and
recoveries, SUDS check-ins, guidance bouts with their breathing coherence.

Everything here is computed from `events.tsv`, `beats.tsv`, `metrics.tsv`, `frequency.tsv` and
`arousal.tsv`, so it works on any recording, including one cut short by a crash.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from biofeedback.recording.reader import RecordingInfo

PAUSE_STATES = frozenset({"paused", "grounding"})


@dataclass(frozen=True, slots=True)
class Interval:
    """Time spent in one session state (session clock seconds)."""

    state: str
    start: float
    end: float
    step: int | None  # the step being worked on, when known


@dataclass(frozen=True, slots=True)
class PauseInfo:
    t: float
    reason: str  # arousal, client, therapist, signal_lost, step_too_long (or "" if unknown)
    actor: str
    step: int | None
    recovered_t: float | None  # when arousal was back below the lower threshold
    time_to_recover_s: float | None


@dataclass(frozen=True, slots=True)
class SudsInfo:
    t: float
    value: int
    prompts: tuple[str, ...]
    step: int | None


@dataclass(frozen=True, slots=True)
class GuidanceBout:
    start: float
    end: float
    technique: str
    coherence_mean: float | None  # mean breathing coherence over the bout (0..1)
    coherence_n: int


@dataclass(frozen=True, slots=True)
class StepSuds:
    step: int
    before: int | None
    after: int | None


@dataclass(frozen=True, slots=True)
class SessionSummary:
    client_id: str
    session_id: str
    start_t: float
    end_t: float
    n_beats: int
    corrected_share: float | None
    rejected: int
    hr_mean_bpm: float | None
    rmssd_mean_ms: float | None
    arousal_mean_exposing: float | None
    arousal_peak: float | None
    intervals: tuple[Interval, ...]
    pauses: tuple[PauseInfo, ...]
    suds: tuple[SudsInfo, ...]
    step_suds: tuple[StepSuds, ...]
    guidance: tuple[GuidanceBout, ...]
    steps_started: tuple[int, ...]
    steps_completed: tuple[int, ...]
    upper: float | None
    lower: float | None
    incomplete: bool

    @property
    def duration_s(self) -> float:
        return self.end_t - self.start_t

    @property
    def recovery_times_s(self) -> list[float]:
        return [p.time_to_recover_s for p in self.pauses if p.time_to_recover_s is not None]


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v) if math.isfinite(v) else None


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _mean(a: npt.NDArray[np.float64]) -> float | None:
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size else None


def _in(t: npt.NDArray[np.float64], ivs: list[Interval]) -> npt.NDArray[np.bool_]:
    mask = np.zeros(t.shape, dtype=bool)
    for iv in ivs:
        mask |= (t >= iv.start) & (t < iv.end)
    return mask


def _thresholds(info: RecordingInfo, events: list[dict[str, Any]]) -> tuple[float | None, ...]:
    snap = info.snapshot
    if isinstance(snap, dict) and isinstance(snap.get("thresholds"), dict):
        th = snap["thresholds"]
        return _num(th.get("upper")), _num(th.get("lower"))
    for ev in reversed(events):
        vals = ev["values"]
        if (
            ev["kind"] == "thresholds"
            and isinstance(vals, dict)
            and isinstance(vals.get("new"), dict)
        ):
            return _num(vals["new"].get("upper")), _num(vals["new"].get("lower"))
    th = info.meta.get("thresholds")
    if isinstance(th, dict):
        return _num(th.get("upper")), _num(th.get("lower"))
    return None, None


def summarize(info: RecordingInfo) -> SessionSummary:
    """Derive the session's story and numbers from its recording."""
    events = info.events()
    beats = info.beats()
    metrics = info.metrics()
    arousal = info.arousal()
    freq = info.frequency()
    times = [float(a[-1]) for a in (beats["t"], arousal["t"]) if a.size] + [
        float(e["t"]) for e in events[-1:]
    ]
    start = info.start_t
    if start is None:
        start = min(times) if times else 0.0
    end_side = _num(info.sidecar.get("end_t"))
    end = max([start, *times, *([end_side] if end_side is not None else [])])

    # ---- state timeline from transitions --------------------------------------------------
    intervals: list[Interval] = []
    state = str(events[0]["from_state"]) if events else "unknown"
    since, step = start, None
    pauses: list[PauseInfo] = []
    open_pause: dict[str, Any] | None = None
    started: list[int] = []
    completed: list[int] = []
    technique = ""
    for ev in events:
        if ev["kind"] != "transition":
            continue
        t, to, frm = float(ev["t"]), str(ev["to_state"]), str(ev["from_state"])
        vals = ev["values"] if isinstance(ev["values"], dict) else {}
        ev_step = _int(vals.get("step"))
        if to != state:
            intervals.append(Interval(state, since, t, step))
            state, since = to, t
        if ev_step is not None:
            step = ev_step
        if to == "grounding":
            technique = str(vals.get("technique", technique))
        if to == "exposing" and step is not None and step not in started:
            started.append(step)
        if to == "step_complete" and step is not None and step not in completed:
            completed.append(step)
        if to == "paused" and frm not in PAUSE_STATES:
            if open_pause is not None:
                pauses.append(PauseInfo(**open_pause))
            open_pause = {
                "t": t,
                "reason": str(vals.get("pause_reason", "")),
                "actor": str(ev["actor"]),
                "step": step,
                "recovered_t": None,
                "time_to_recover_s": None,
            }
        elif to == "recovered" and open_pause is not None:
            took = _num(vals.get("time_to_recover_s"))
            open_pause["recovered_t"] = t
            open_pause["time_to_recover_s"] = took if took is not None else t - open_pause["t"]
            pauses.append(PauseInfo(**open_pause))
            open_pause = None
    if open_pause is not None:
        pauses.append(PauseInfo(**open_pause))
    intervals.append(Interval(state, since, end, step))
    intervals = [iv for iv in intervals if iv.end > iv.start or iv is intervals[-1]]

    # ---- SUDS -----------------------------------------------------------------------------
    suds: list[SudsInfo] = []
    per_step: dict[int, list[int | None]] = {}
    for ev in events:
        vals = ev["values"] if isinstance(ev["values"], dict) else {}
        value = _int(vals.get("suds"))
        if ev["kind"] != "checkin" or value is None:
            continue
        prompts = tuple(str(p) for p in vals.get("prompts") or ())
        s = _int(vals.get("step"))
        suds.append(SudsInfo(float(ev["t"]), value, prompts, s))
        if s is not None:
            slot = per_step.setdefault(s, [None, None])
            if "step_start" in prompts:
                slot[0] = value
            if "step_end" in prompts:
                slot[1] = value
    step_suds = tuple(StepSuds(k, v[0], v[1]) for k, v in sorted(per_step.items()))

    # ---- guidance and coherence -----------------------------------------------------------
    bouts: list[GuidanceBout] = []
    ft, coh = freq["t"], freq["coherence"]
    for iv in intervals:
        if iv.state != "grounding":
            continue
        m = (ft >= iv.start) & (ft < iv.end) & np.isfinite(coh)
        bouts.append(
            GuidanceBout(
                iv.start,
                iv.end,
                technique or "paced_breathing",
                float(coh[m].mean()) if m.any() else None,
                int(m.sum()),
            )
        )

    # ---- numbers --------------------------------------------------------------------------
    corrected = beats["corrected"]
    known = corrected[np.isfinite(corrected)]
    exposing = [iv for iv in intervals if iv.state == "exposing"]
    av = arousal["value"]
    upper, lower = _thresholds(info, events)
    return SessionSummary(
        client_id=info.client_id,
        session_id=info.session_id,
        start_t=start,
        end_t=end,
        n_beats=int(np.isfinite(beats["rr_ms"]).sum()),
        corrected_share=float(known.mean()) if known.size else None,
        rejected=int(sum(1 for r in beats["rejected"] if r is not None)),
        hr_mean_bpm=_mean(beats["hr_bpm"]),
        rmssd_mean_ms=_mean(metrics["short_rmssd_ms"]),
        arousal_mean_exposing=_mean(av[_in(arousal["t"], exposing)]),
        arousal_peak=float(np.nanmax(av)) if np.isfinite(av).any() else None,
        intervals=tuple(intervals),
        pauses=tuple(pauses),
        suds=tuple(suds),
        step_suds=step_suds,
        guidance=tuple(bouts),
        steps_started=tuple(started),
        steps_completed=tuple(completed),
        upper=upper,
        lower=lower,
        incomplete=info.incomplete,
    )
