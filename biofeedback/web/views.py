"""Turn MQTT payloads (docs/mqtt.md) into the small, stable shapes the browser pages draw.

The pages never read MQTT payload fields themselves: every field name of the topic tree is read
here, once, so a schema change touches one Python file that is unit tested instead of three
JavaScript files that are not. Every function is pure and total: a payload with missing or wrongly
typed fields gives `None` values (drawn as unknown / as a gap), never an exception.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from biofeedback.web import next_action

JsonDict = dict[str, Any]

# session states in which exposure is not running because something paused it; the charts shade
# these spans and mark where they begin
PAUSED_STATES = frozenset({"paused", "grounding", "recovered", "resume_offered"})
# states in which the client is asked to agree before anything goes on
CONSENT_STATES = frozenset({"step_offered", "resume_offered"})


def num(value: Any, lo: float = -math.inf, hi: float = math.inf) -> float | None:
    """A finite float within [lo, hi], or None (bools, strings, NaN, infinities are not numbers)."""
    # exact types first: this runs for every field of every message (JSON gives float and int)
    tp = type(value)
    f: float
    if tp is float:
        f = value
    elif tp is int or (tp is not bool and isinstance(value, int | float)):
        f = float(value)
    else:
        return None
    if not math.isfinite(f) or f < lo or f > hi:
        return None
    return f


def text(value: Any, limit: int = 500) -> str | None:
    """A string cut to `limit` characters, or None."""
    return value[:limit] if isinstance(value, str) else None


def _get(payload: Mapping[str, Any], *paths: str) -> Any:
    """First present value among dotted paths ("short.rmssd_ms")."""
    for path in paths:
        cur: Any = payload
        for part in path.split("."):
            # `type(...) is dict` first: an ABC isinstance check costs several times more
            if (type(cur) is dict or isinstance(cur, Mapping)) and part in cur:
                cur = cur[part]
            else:
                cur = None
                break
        if cur is not None:
            return cur
    return None


def payload_time(payload: Mapping[str, Any]) -> float | None:
    """Session-clock time a payload is stamped with."""
    return num(_get(payload, "t", "ts", "timestamp"), 0.0)


def metrics_point(payload: Mapping[str, Any]) -> JsonDict | None:
    """One chart point from a `metrics` payload: HR and RMSSD (None = a gap), quality 0..1."""
    t = payload_time(payload)
    if t is None:
        return None
    hr = num(_get(payload, "hr_bpm", "short.hr_bpm", "hr"), 20.0, 260.0)
    rmssd = num(_get(payload, "rmssd_ms", "short.rmssd_ms", "rmssd"), 0.0, 2000.0)
    quality = num(_get(payload, "quality.score", "quality_score", "quality"), 0.0, 1.0)
    return {"t": t, "hr": hr, "rmssd": rmssd, "quality": quality}


def arousal_point(payload: Mapping[str, Any]) -> JsonDict | None:
    """One chart point from an `arousal` payload: value 0..100 (None = unknown, drawn as a gap)."""
    t = payload_time(payload)
    if t is None:
        return None
    value = num(_get(payload, "value", "arousal"), 0.0, 100.0)
    confidence = num(_get(payload, "confidence"), 0.0, 1.0)
    return {
        "t": t,
        "arousal": value,
        "confidence": confidence,
        "basis": text(_get(payload, "basis"), 20),
        "reason": text(_get(payload, "reason"), 200),
    }


def beat_point(payload: Mapping[str, Any]) -> JsonDict | None:
    """Instantaneous HR of one beat (used only when no `metrics` arrive)."""
    t = payload_time(payload)
    if t is None:
        return None
    hr = num(_get(payload, "hr_bpm", "hr"), 20.0, 260.0)
    rr = num(_get(payload, "rr_ms", "beat.rr_ms"), 100.0, 3000.0)
    if hr is None and rr is not None:
        hr = 60000.0 / rr
    return {"t": t, "hr": hr}


def status_view(payload: Mapping[str, Any]) -> JsonDict:
    """Device / service status: online, battery %, device name, contact, signal quality."""
    online_raw = _get(payload, "online", "state", "status")
    if isinstance(online_raw, bool):
        online: bool | None = online_raw
    elif isinstance(online_raw, str):
        online = online_raw.lower() not in {"offline", "lost", "gone", "ended"}
    else:
        online = None
    contact = _get(payload, "contact", "device.contact")
    return {
        "t": payload_time(payload),
        "online": online,
        "state": text(_get(payload, "state", "status"), 40),
        "battery": num(_get(payload, "battery", "battery_pct", "device.battery"), 0.0, 100.0),
        "device": text(_get(payload, "device.name", "device_name", "device"), 80),
        "contact": contact if isinstance(contact, bool) else None,
        "signal": _bool(_get(payload, "signal")),
        "reason": text(_get(payload, "reason"), 200),
        "quality": num(_get(payload, "quality.score", "quality"), 0.0, 1.0),
        "speed": num(_get(payload, "clock_speed", "speed"), 0.001, 10_000.0),
        # why the strap cannot be reached, and the fix (until it connects)
        "device_error": text(_get(payload, "device_error"), 400),
        "device_hint": text(_get(payload, "device_hint"), 400),
    }


def _steps(raw: Any) -> list[JsonDict]:
    out: list[JsonDict] = []
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        return out
    for i, step in enumerate(raw[:200]):
        if isinstance(step, str):
            out.append({"index": i, "title": step[:200], "status": None, "description": None})
        elif isinstance(step, Mapping):
            title = text(_get(step, "title", "name", "label", "description"), 200)
            out.append(
                {
                    "index": i,
                    "title": title if title is not None else f"Step {i + 1}",
                    "status": text(_get(step, "status", "state"), 40),
                    "description": text(_get(step, "description"), 500),
                    "anchors": _anchors(step.get("suds_anchors")),
                    "planned_s": num(_get(step, "planned_s"), 0.0),
                }
            )
    return out


def _anchors(raw: Any) -> list[list[Any]]:
    """SUDS anchors [[value, label], ...] from [[0, "calm"], ...] or {"0": "calm", ...}."""
    pairs: list[tuple[Any, Any]] = []
    if isinstance(raw, Mapping):
        pairs = list(raw.items())
    elif isinstance(raw, Sequence) and not isinstance(raw, str):
        pairs = [tuple(p) for p in raw if isinstance(p, Sequence) and len(p) == 2]
    out: list[list[Any]] = []
    for value, label in pairs[:11]:
        v = num(_int_or_none(value) if isinstance(value, str) else value, 0.0, 100.0)
        if v is not None and isinstance(label, str):
            out.append([int(v), label[:40]])
    return sorted(out)


def _int_or_none(value: str) -> int | None:
    return int(value) if value.strip().isdigit() else None


def _suds(raw: Any) -> list[JsonDict]:
    out: list[JsonDict] = []
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        return out
    for rec in raw[-100:]:
        if isinstance(rec, Mapping):
            value = num(rec.get("value"), 0.0, 100.0)
            if value is None:
                continue
            prompts = rec.get("prompts")
            out.append(
                {
                    "t": num(rec.get("t")),
                    "value": value,
                    "step_index": num(rec.get("step_index"), 0.0),
                    "prompts": [p for p in prompts if isinstance(p, str)][:5]
                    if isinstance(prompts, list)
                    else [],
                }
            )
    return out


def session_view(payload: Mapping[str, Any]) -> JsonDict:
    """Session state: where in the agenda, thresholds, why paused, what the client is asked."""
    state = text(_get(payload, "state"), 40)
    steps = _steps(_get(payload, "steps", "agenda", "protocol.steps"))
    step_index_raw = num(_get(payload, "step_index", "step", "current_step"), 0.0, 10_000.0)
    step_index = int(step_index_raw) if step_index_raw is not None else None
    step_title = text(_get(payload, "step_title", "step.title"), 200)
    step_description = None
    if step_index is not None and step_index < len(steps):
        step_title = step_title or steps[step_index]["title"]
        step_description = steps[step_index].get("description")
    upper = num(_get(payload, "thresholds.upper", "upper"), 0.0, 100.0)
    lower = num(_get(payload, "thresholds.lower", "lower"), 0.0, 100.0)
    # the service says what the client is asked to agree to; older payloads only give the state
    consent_raw = payload.get("consent_needed")
    if "consent_needed" in payload:
        consent_needed = bool(consent_raw)
    else:
        consent_needed = state in CONSENT_STATES if state else False
    offer = text(_get(payload, "offer"), 20)
    checkin_raw = _get(payload, "checkin_due", "suds_due")
    menu = _get(payload, "grounding_menu")
    pause_reason = text(_get(payload, "pause_reason", "reason"), 200)
    reasons = _texts(_get(payload, "pause_reasons"), 8, 40)
    if state not in PAUSED_STATES:
        reasons = []
    elif not reasons and pause_reason:
        reasons = [pause_reason]  # a payload from before pause_reasons
    view: JsonDict = {
        "t": payload_time(payload),
        "state": state,
        "paused": state in PAUSED_STATES if state else None,
        "consent_needed": consent_needed,
        "consent_text": text(consent_raw, 600) if isinstance(consent_raw, str) else None,
        "consent_for": offer or ("resume" if state == "resume_offered" else "step"),
        "pause_reason": pause_reason,
        # every reason of the current pause, oldest first ("arousal", then "client")
        "pause_reasons": reasons,
        "paused_since": num(_get(payload, "paused_since"), 0.0),
        "state_since_t": num(_get(payload, "state_since_t"), 0.0),
        "step_index": step_index,
        "step_title": step_title,
        "step_description": step_description,
        "step_anchors": steps[step_index]["anchors"]
        if step_index is not None and step_index < len(steps) and "anchors" in steps[step_index]
        else [],
        "steps": steps,
        "thresholds": {
            "upper": upper,
            "lower": lower,
            "dwell_s": num(_get(payload, "thresholds.dwell_s", "dwell_s"), 0.0, 3600.0),
            "recovery_s": num(_get(payload, "thresholds.recovery_s", "recovery_s"), 0.0, 3600.0),
        },
        "checkin_due": bool(checkin_raw) if isinstance(checkin_raw, bool | int | str) else False,
        "checkin_prompt": text(checkin_raw, 60) if isinstance(checkin_raw, str) else None,
        "started_t": num(_get(payload, "started_t", "start_t"), 0.0),
        "monitoring_ok": _bool(_get(payload, "monitoring_ok")),
        "device_connected": _bool(_get(payload, "device_connected")),
        "calibrated": _bool(_get(payload, "calibrated")),
        "calibration_failed": _get(payload, "calibration_failed") is True,
        "calibration_detail": text(_get(payload, "calibration_detail"), 300),
        # the running calibration: when it began (None: waiting for the first beat) and its length
        "calibration_started_t": num(_get(payload, "calibration_started_t"), 0.0),
        "calibration_s": num(_get(payload, "calibration_s"), 0.0, 86_400.0),
        "recalibrating": _get(payload, "recalibrating") is True,
        "calibration_reason": text(_get(payload, "calibration_reason"), 200),
        "calibration_notes": _texts(_get(payload, "calibration_notes"), 6, 300),
        "dwell_progress": num(_get(payload, "dwell_progress"), 0.0, 1.0),
        "recovery_progress": num(_get(payload, "recovery_progress"), 0.0, 1.0),
        "grounding_menu": [m for m in menu if isinstance(m, str)][:10]
        if isinstance(menu, list)
        else [],
        "suds": _suds(_get(payload, "suds")),
        "technique": text(_get(payload, "guidance.technique"), 40),
        # the client said "I'm ready to continue" during this pause (a request, never a resume)
        "client_ready": _get(payload, "client_ready") is True,
        "client_ready_t": num(_get(payload, "client_ready_t"), 0.0),
    }
    # the therapist's words: the state, what Offer does now, and what comes next
    view["state_label"] = next_action.state_label(view)
    view["offer_action"] = next_action.offer_action(view)
    view["next"] = next_action.next_line(view)
    return view


def _texts(raw: Any, most: int, limit: int) -> list[str]:
    """A short list of short texts (anything else in the list left out)."""
    if not isinstance(raw, list):
        return []
    return [t for t in (text(v, limit) for v in raw[:most] if isinstance(v, str)) if t]


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


_PHASES = (
    ("inhale", "inhale_s"),
    ("hold", "hold_in_s"),
    ("exhale", "exhale_s"),
    ("rest", "hold_out_s"),
)


def guidance_view(payload: Mapping[str, Any]) -> JsonDict:
    """Breathing schedule: phases (name, seconds) repeating from `start_t` on the session clock."""
    start_t = num(_get(payload, "start_t", "started_t"), 0.0)
    breathing = _get(payload, "breathing", "pattern")
    phases: list[list[Any]] = []
    if isinstance(breathing, Mapping):
        for name, key in _PHASES:
            seconds = num(breathing.get(key), 0.0, 120.0)
            if seconds:
                phases.append([name, seconds])
    active_raw = _get(payload, "active")
    active = active_raw if isinstance(active_raw, bool) else start_t is not None
    return {
        "t": payload_time(payload),
        "active": bool(active and start_t is not None),
        "start_t": start_t,
        "technique": text(_get(payload, "technique"), 40),
        "prompt": text(_get(payload, "prompt", "text"), 500),
        "phases": phases,
    }


def event_view(payload: Mapping[str, Any]) -> JsonDict:
    """One timeline row: when, what, who, why, and the values that caused it."""
    values = _get(payload, "values")
    shown: JsonDict = {}
    if isinstance(values, Mapping):
        for key, value in list(values.items())[:12]:
            if isinstance(key, str) and (num(value) is not None or isinstance(value, str)):
                shown[key[:40]] = value if not isinstance(value, str) else value[:80]
    event: JsonDict = {
        "t": payload_time(payload),
        "seq": num(_get(payload, "seq")),
        "kind": text(_get(payload, "kind", "type"), 40),
        "actor": text(_get(payload, "actor", "role"), 20),
        "source": text(_get(payload, "source"), 20),
        "from_state": text(_get(payload, "from_state", "from"), 40),
        "to_state": text(_get(payload, "to_state", "to"), 40),
        "reason": text(_get(payload, "reason", "detail"), 300),
        "values": shown,
        # a device or service problem: what a person can do about it
        "hint": text(_get(payload, "hint"), 400) or None,
    }
    event.update(next_action.event_words(event))  # what, change, why: the row in words
    return event


def checkin_view(payload: Mapping[str, Any]) -> JsonDict:
    """A SUDS prompt ("checkin_due", value None) or the client's answer ("checkin", 0..100)."""
    kind = text(_get(payload, "kind", "type"), 40)
    value = num(_get(payload, "values.suds", "value", "suds"), 0.0, 100.0)
    due_raw = _get(payload, "due")
    if isinstance(due_raw, bool):
        due = due_raw
    else:
        due = kind == "checkin_due" or (kind is None and value is None)
    return {
        "t": payload_time(payload),
        "kind": kind,
        "due": due,
        "value": None if due else value,
        "prompt": text(_get(payload, "values.prompt", "prompt", "question"), 300),
        "step_index": num(_get(payload, "values.step", "step_index", "step"), 0.0),
        "reason": text(_get(payload, "reason"), 300),
    }


def reply_view(payload: Mapping[str, Any]) -> JsonDict:
    """A command reply: which command, accepted or not, and the error a person can act on."""
    ok_raw = _get(payload, "ok", "accepted")
    status = text(_get(payload, "status", "result"), 40)
    if isinstance(ok_raw, bool):
        ok: bool | None = ok_raw
    elif status is not None:
        ok = status.lower() in {"ok", "accepted", "applied", "done", "duplicate"}
    else:
        ok = None
    return {
        "t": payload_time(payload),
        "id": text(_get(payload, "id", "command_id", "correlation"), 80),
        "ok": ok,
        "status": status,
        "error": text(_get(payload, "error", "detail", "message", "reason"), 300),
    }
