"""Shared helpers for the recording tests."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

from biofeedback.recording import SessionRecorder
from biofeedback.recording.synthetic import Step, synthetic_session

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
