"""What the therapist's detail page gets of a strap's raw data: the ECG strip and the chest
breathing trace (MQTT `ecg`, `breathing`, `movement`; docs/mqtt.md).

Each view keeps only the fields the page draws, every number checked (a malformed or hostile
payload yields None for that field, never an exception). The hub relays these kinds to
therapist pages only: breath-hold and rapid-shallow events are never shown to the client.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from biofeedback.web.views import num, text

JsonDict = dict[str, Any]

MAX_ECG_SAMPLES = 1000  # as the ecg schema's maxItems
MAX_TRACE = 400  # as the breathing schema's maxItems
THERAPIST_ONLY_KINDS = frozenset({"ecg", "breathing", "movement"})


def _numbers(value: Any, most: int, lo: float, hi: float) -> list[float | None]:
    if not isinstance(value, list):
        return []
    return [num(v, lo, hi) for v in value[-most:]]


def ecg_view(payload: Mapping[str, Any]) -> JsonDict:
    """A batch of ECG samples (µV) with its first sample's time and sample period."""
    return {
        "t": num(payload.get("t"), 0.0),
        "dt_s": num(payload.get("dt_s"), 1e-4, 1.0),
        "uv": _numbers(payload.get("uv"), MAX_ECG_SAMPLES, -8_388_608, 8_388_607),
        "gap_before_s": num(payload.get("gap_before_s"), 0.0),
    }


def _events(value: Any) -> list[JsonDict]:
    if not isinstance(value, list):
        return []
    out: list[JsonDict] = []
    for e in value[-10:]:
        if isinstance(e, Mapping) and e.get("kind") in ("breath_hold", "rapid_shallow"):
            out.append(
                {
                    "kind": e["kind"],
                    "start_t": num(e.get("start_t"), 0.0),
                    "detail": text(e.get("detail"), 300),
                }
            )
    return out


def breathing_view(payload: Mapping[str, Any]) -> JsonDict:
    """Chest breathing: rate, validity, pacer adherence, therapist-only events, the trace."""
    valid = payload.get("valid")
    moving = payload.get("moving")
    return {
        "t": num(payload.get("t"), 0.0),
        "rate_bpm": num(payload.get("rate_bpm"), 0.0, 120.0),
        "valid": valid if isinstance(valid, bool) else False,
        "reason": text(payload.get("reason"), 200),
        "moving": moving if isinstance(moving, bool) else False,
        "adherence": num(payload.get("adherence"), 0.0, 1.0),
        "pacer_bpm": num(payload.get("pacer_bpm"), 0.0, 120.0),
        "events": _events(payload.get("events")),
        "trace_t0": num(payload.get("trace_t0"), 0.0),
        "trace_dt_s": num(payload.get("trace_dt_s"), 1e-3, 10.0),
        "trace_mg": _numbers(payload.get("trace_mg"), MAX_TRACE, -1e5, 1e5),
    }


def movement_view(payload: Mapping[str, Any]) -> JsonDict:
    """The movement index (mg) and level."""
    level = payload.get("level")
    moving = payload.get("moving")
    return {
        "t": num(payload.get("t"), 0.0),
        "index_mg": num(payload.get("index_mg"), 0.0, 1e6),
        "level": level if level in ("still", "light", "moving") else None,
        "moving": moving if isinstance(moving, bool) else False,
    }


VIEWS = {"ecg": ecg_view, "breathing": breathing_view, "movement": movement_view}
