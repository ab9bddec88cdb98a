"""Shared helpers for the recording tests."""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Iterable
from pathlib import Path

from biofeedback.exposure.messages import Role, SessionEvent, SessionState
from biofeedback.recording import SessionRecorder
from biofeedback.recording.synthetic import Step, synthetic_session
from biofeedback.recording.writer import OsDisk

START_T = 1_764_000_000.0


def record(
    root: Path,
    steps: Iterable[Step],
    *,
    client_id: str = "client-1",
    compress: bool = False,
    session_id: str | None = None,
) -> Path:
    """Record `steps` as the service would and close the recording; returns its folder."""
    rec = SessionRecorder(
        root, client_id=client_id, session_id=session_id, meta={"start_t": START_T, "demo": True}
    )
    for s in steps:
        rec.input(s.item, s.seq)
        for u in s.updates:
            rec.update(u)
        rec.events(s.events)
        rec.flush_if_due(time.monotonic())
    rec.close(compress=compress)
    return rec.path


def steps(duration_s: float, seed: int = 0) -> list[Step]:
    return list(synthetic_session(duration_s, start_t=START_T, seed=seed))


def scripted_events() -> list[SessionEvent]:
    """A plausible session story: offer, SUDS, exposure, arousal pause, breathing, recovery,
    resume, completion, SUDS (times in seconds after START_T)."""
    S = SessionState
    script: list[tuple[float, str, Role, SessionState, SessionState, dict[str, object]]] = [
        (10, "transition", Role.THERAPIST, S.READY, S.STEP_OFFERED, {"step": 0}),
        (12, "checkin_due", Role.SYSTEM, S.STEP_OFFERED, S.STEP_OFFERED, {"prompt": "step_start"}),
        (
            15,
            "checkin",
            Role.CLIENT,
            S.STEP_OFFERED,
            S.STEP_OFFERED,
            {"suds": 40, "prompts": ["step_start"], "step": 0},
        ),
        (20, "transition", Role.CLIENT, S.STEP_OFFERED, S.EXPOSING, {"step": 0}),
        (60, "transition", Role.SYSTEM, S.EXPOSING, S.PAUSED, {"pause_reason": "arousal"}),
        (60, "transition", Role.SYSTEM, S.PAUSED, S.GROUNDING, {"technique": "paced_breathing"}),
        (120, "transition", Role.SYSTEM, S.GROUNDING, S.RECOVERED, {"time_to_recover_s": 60.0}),
        (130, "transition", Role.SYSTEM, S.RECOVERED, S.RESUME_OFFERED, {"step": 0}),
        (135, "transition", Role.CLIENT, S.RESUME_OFFERED, S.EXPOSING, {"step": 0}),
        (170, "transition", Role.CLIENT, S.EXPOSING, S.PAUSED, {"pause_reason": "client"}),
        (175, "transition", Role.CLIENT, S.PAUSED, S.EXPOSING, {"step": 0}),
        (200, "transition", Role.THERAPIST, S.EXPOSING, S.STEP_COMPLETE, {"step": 0}),
        (
            205,
            "checkin",
            Role.CLIENT,
            S.STEP_COMPLETE,
            S.STEP_COMPLETE,
            {"suds": 20, "prompts": ["step_end"], "step": 0},
        ),
        (210, "transition", Role.THERAPIST, S.STEP_COMPLETE, S.DEBRIEF, {}),
    ]
    return [
        SessionEvent(i + 1, START_T + dt, kind, actor, a, b, f"{kind} {b.value}", vals)
        for i, (dt, kind, actor, a, b, vals) in enumerate(script)
    ]


def record_scripted(root: Path, *, client_id: str = "client-1", seed: int = 0) -> Path:
    """A 240 s synthetic session with the scripted events, recorded and closed."""
    evs = scripted_events()
    rec = SessionRecorder(
        root, client_id=client_id, meta={"start_t": START_T, "device": {"name": "SimStrap"}}
    )
    with rec:
        for s in synthetic_session(240, start_t=START_T, seed=seed):
            rec.input(s.item, s.seq)
            for u in s.updates:
                rec.update(u)
            due = [e for e in evs if e.t <= s.item.t]
            evs = evs[len(due) :]
            rec.events(due)
        rec.events(evs)
    return rec.path


class FullDisk(OsDisk):
    """The real disk, except that while `full` is set every write fails as a full disk does
    (the writer's seam; tests/recording/test_spill.py also fills a real filesystem)."""

    def __init__(self) -> None:
        self.full = False
        self.failed_writes = 0

    def _check(self) -> None:
        if self.full:
            self.failed_writes += 1
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def write(self, fd: int, data: memoryview) -> int:
        self._check()
        return super().write(fd, data)

    def replace_file(self, path: Path, text: str) -> None:
        self._check()
        super().replace_file(path, text)
