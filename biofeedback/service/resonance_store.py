"""The client's resonance-assessment history, kept beside their baseline (docs/resonance.md).

One JSON file per client, `<baseline_dir>/<client_id>.resonance.json`, written atomically:

    {"schema": "biofeedback.resonance-history", "version": 1, "client_id": "c-123",
     "assessments": [{"date": "2026-12-01T18:40:00+00:00", "session": "...",
                      "assessment": {...biofeedback.signal.resonance.assessment_to_json...}}]}

Oldest first; a reassessment appends. The newest assessment that chose a rate is the client's
personal rate, which the pacer uses by default (`biofeedback.exposure.guidance.with_personal_rate`).
A broken file is reported and never trusted, and never overwritten: it is moved aside first.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

from biofeedback.errors import ParseError
from biofeedback.signal.resonance import (
    Assessment,
    ResonanceRecord,
    history_from_json,
    history_to_json,
    personal_rate,
)

__all__ = [
    "ResonanceRecord",
    "append_record",
    "history_path",
    "load_history",
    "personal_rate",
    "save_assessment",
]

log = logging.getLogger(__name__)


def history_path(baseline_dir: Path, client_id: str) -> Path:
    return baseline_dir / f"{client_id}.resonance.json"


def load_history(baseline_dir: Path, client_id: str) -> list[ResonanceRecord]:
    """The client's assessments, oldest first ([] when none, or when the file is broken: logged)."""
    path = history_path(baseline_dir, client_id)
    if not path.exists():
        return []
    try:
        return history_from_json(json.loads(path.read_text(encoding="utf-8")), str(path))
    except (OSError, ValueError, ParseError) as exc:
        log.warning("ignoring the resonance history %s (%s)", path, exc)
        return []


def append_record(baseline_dir: Path, client_id: str, record: ResonanceRecord) -> Path:
    """Add one assessment to the client's history (atomic write). A file that cannot be read
    is moved aside (`.broken-N.json`) rather than overwritten."""
    path = history_path(baseline_dir, client_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    records: list[ResonanceRecord] = []
    if path.exists():
        try:
            records = history_from_json(json.loads(path.read_text(encoding="utf-8")), str(path))
        except (ValueError, ParseError) as exc:
            n = 1
            while path.with_suffix(f".broken-{n}.json").exists():
                n += 1
            aside = path.with_suffix(f".broken-{n}.json")
            path.replace(aside)
            log.error("resonance history %s is broken (%s); kept as %s", path, exc, aside)
    records.append(record)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(history_to_json(client_id, records), indent=2), encoding="utf-8")
    tmp.replace(path)
    return path


def save_assessment(
    baseline_dir: Path, client_id: str, assessment: Assessment, t: float, session: str = ""
) -> Path:
    """Add a live assessment's result to the client's history, dated at session time `t`
    (Unix seconds) and naming the recorded session it ran in (its folder name, or "")."""
    date = datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")
    path = append_record(baseline_dir, client_id, ResonanceRecord(date, session, assessment))
    log.info(
        "assessment of %s saved to %s (rate %s/min, %s)",
        client_id,
        path,
        assessment.rate_bpm,
        "complete" if assessment.complete else "partial",
    )
    return path
