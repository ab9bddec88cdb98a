"""JSON payloads of the MQTT topic tree (docs/mqtt.md), one encoder per kind, each with a schema.

Every payload is a JSON object with "v" (SCHEMA_VERSION), "t" (session-clock seconds of the thing
it describes) and "client" (the pseudonymous client id). Each kind has a JSON Schema in
`biofeedback/service/schemas/<kind>.json`; `validate(kind, payload)` checks one. Non-finite
floats (NaN, inf) become null: they are not JSON.

Kinds and topics: status -> `status`; beat, metrics, arousal, ecg, breathing, movement -> their
topics; session ->
`session`;
guidance -> `guidance`; event (session, device or service events, told apart by "source") ->
`event` and, for check-ins, `checkin`; command -> `cmd` (in); reply -> `reply` or the MQTT 5
response topic.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
import math
import time
from collections.abc import Mapping
from importlib import resources
from typing import Any, Protocol

from biofeedback.devices.readings import DeviceEvent, DeviceEventKind, Notification
from biofeedback.errors import ParseError
from biofeedback.exposure.messages import Guidance, SessionEvent
from biofeedback.service.topics import SCHEMA_VERSION, Topic
from biofeedback.signal.chest_breathing import Breath, BreathingEvent, BreathingUpdate
from biofeedback.signal.measures import (
    Arousal,
    BeatUpdate,
    CleanBeat,
    FrequencyDomain,
    SignalQuality,
    TimeDomain,
)
from biofeedback.signal.movement import MovementSample

KINDS = (
    "status",
    "beat",
    "metrics",
    "arousal",
    "ecg",
    "breathing",
    "movement",
    "session",
    "guidance",
    "assessment",
    "event",
    "checkin",
    "command",
    "reply",
)


def jsonable(value: Any) -> Any:
    """A JSON-ready copy: dataclasses -> objects, enums -> values, NaN/inf -> null, bytes -> hex."""
    if value is None or isinstance(value, bool | str | int):
        return value.value if isinstance(value, enum.Enum) else value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if hasattr(value, "item"):  # numpy scalars
        return jsonable(value.item())
    return str(value)


def _num(x: float | None) -> float | None:
    return x if x is None or math.isfinite(x) else None


def _head(client_id: str, t: float) -> dict[str, Any]:
    return {"v": SCHEMA_VERSION, "t": _num(float(t)), "client": client_id}


# ---- status -------------------------------------------------------------------------------


def online_status(client_id: str, t: float, **fields: Any) -> dict[str, Any]:
    """Retained `status`: the service is up; extra fields (device, battery_pct, ...) as given."""
    return {**_head(client_id, t), "online": True, **jsonable(fields)}


def offline_status(
    client_id: str, t: float | None = None, reason: str = "connection lost"
) -> dict[str, Any]:
    """Retained `status` saying offline: the last will, and what a clean shutdown publishes.

    A will is registered at connect time, so its "t" is when the link connected, not when the
    connection was lost; "reason" says which.
    """
    return {
        **_head(client_id, time.time() if t is None else t),
        "online": False,
        "reason": reason,
    }


class StatusTracker:
    """Accumulates device facts so each retained `status` carries all of them, not just the last.

    (A retained message replaces the previous one, so a battery reading must not be lost when a
    later contact event is published.)
    """

    def __init__(self, client_id: str) -> None:
        self.client_id = client_id
        self._fields: dict[str, Any] = {}

    def update(self, e: DeviceEvent) -> dict[str, Any]:
        """Fold one device event in and return the new status payload."""
        fields = _status_fields(e)
        if e.kind is DeviceEventKind.CONNECTED and self._fields.get("signal") is False:
            # A reconnect is not a signal yet: that is SIGNAL_RESTORED, at the first valid beat.
            fields.pop("signal")
        self._fields.update(fields)
        return online_status(self.client_id, e.t, **self._fields)


def _status_fields(e: DeviceEvent) -> dict[str, Any]:
    f: dict[str, Any] = {"device": e.device, "last_device_event": e.kind.value}
    k = e.kind
    if k in (DeviceEventKind.CONNECTED, DeviceEventKind.SIGNAL_RESTORED):
        f["signal"] = True
    elif k in (DeviceEventKind.SIGNAL_LOST, DeviceEventKind.ENDED):
        f["signal"] = False
    elif k is DeviceEventKind.CONTACT_LOST:
        f["contact"] = False
    elif k is DeviceEventKind.CONTACT_RESTORED:
        f["contact"] = True
    if k is DeviceEventKind.ERROR:
        # retained, so a dashboard opened later still sees why there is no signal
        f["device_error"] = e.detail
        f["device_hint"] = e.hint
    elif k in (DeviceEventKind.CONNECTED, DeviceEventKind.SIGNAL_RESTORED):
        f["device_error"] = None
        f["device_hint"] = None
    if e.battery_pct is not None:
        f["battery_pct"] = e.battery_pct
    if e.info is not None:
        f["device_info"] = jsonable(e.info)
    return f


# ---- live samples -------------------------------------------------------------------------


def _clean_beat(b: CleanBeat) -> dict[str, Any]:
    return {
        "t": _num(b.t),
        "rr_ms": _num(b.rr_ms),
        "raw_rr_ms": _num(b.raw_rr_ms),
        "corrected": b.corrected,
        "artifact": b.artifact,
        "contact": b.contact,
    }


def beat(client_id: str, u: BeatUpdate) -> dict[str, Any]:
    """`beat`: the newest input (a cleaned beat, a rejected RR or an HR-only sample)."""
    b = u.beat
    p = _head(client_id, u.t)
    p.update(
        {
            "rr_ms": _num(b.rr_ms) if b else None,
            "raw_rr_ms": _num(b.raw_rr_ms) if b else None,
            "corrected": b.corrected if b else False,
            "artifact": b.artifact if b else None,
            "contact": b.contact if b else u.quality.contact,
            "hr_bpm": _num(u.hr_bpm),
            "rejected": u.rejected,
            "revised": [_clean_beat(r) for r in getattr(u, "revised", ())],
        }
    )
    return p


def ecg(
    client_id: str,
    *,
    device: str,
    t: float,
    dt_s: float,
    uv: list[int],
    gap_before_s: float | None = None,
    dropped_samples: int = 0,
) -> dict[str, Any]:
    """`ecg`: a batch of raw ECG samples (µV); sample i at about `t + i * dt_s`."""
    p = _head(client_id, t)
    p.update(
        {
            "device": device,
            "dt_s": _num(dt_s),
            "uv": [int(v) for v in uv],
            "gap_before_s": _num(gap_before_s),
            "dropped_samples": int(dropped_samples),
        }
    )
    return p


def movement(client_id: str, device: str, m: MovementSample) -> dict[str, Any]:
    """`movement`: the chest movement index over the second ending at `t` (signal/movement.py)."""
    p = _head(client_id, m.t)
    p.update(
        {
            "device": device,
            "index_mg": _num(round(float(m.index_mg), 2)),
            "level": m.level.value,
            "moving": bool(m.moving),
        }
    )
    return p


def breathing(
    client_id: str,
    device: str,
    u: BreathingUpdate,
    *,
    breaths: tuple[Breath, ...] = (),
    events: tuple[BreathingEvent, ...] = (),
    moving: bool = False,
    adherence: float | None = None,
    pacer_bpm: float | None = None,
    trace_t: list[float] | None = None,
    trace_mg: list[float] | None = None,
) -> dict[str, Any]:
    """`breathing`: the chest breathing estimate at `t` (signal/chest_breathing.py): rate, the
    breaths that became final, therapist-only events, pacer adherence during paced breathing,
    and the newest seconds of the chest trace (`trace_t0` + i * `trace_dt_s`)."""
    p = _head(client_id, u.t)
    n = min(len(trace_t or []), len(trace_mg or []), 400)
    tt = (trace_t or [])[len(trace_t or []) - n :]
    ty = (trace_mg or [])[len(trace_mg or []) - n :]
    dt = (tt[n - 1] - tt[0]) / (n - 1) if n > 1 else None
    p.update(
        {
            "device": device,
            "rate_bpm": _num(None if u.rate_bpm is None else round(float(u.rate_bpm), 2)),
            "valid": bool(u.valid),
            "reason": u.reason,
            "moving": bool(moving),
            "adherence": _num(None if adherence is None else round(float(adherence), 3)),
            "pacer_bpm": _num(pacer_bpm),
            "breaths": [
                {
                    "start_t": _num(b.start_t),
                    "end_t": _num(b.end_t),
                    "depth_mg": _num(round(float(b.depth_mg), 2)),
                }
                for b in breaths
            ][-20:],
            "events": [
                {"kind": e.kind.value, "start_t": _num(e.start_t), "detail": e.detail}
                for e in events
            ][-10:],
            "trace_t0": _num(tt[0]) if n else None,
            "trace_dt_s": _num(dt) if dt is not None and dt > 0 else None,
            "trace_mg": [_num(round(float(y), 2)) for y in ty],
        }
    )
    return p


def _time_domain(d: TimeDomain | None) -> dict[str, Any] | None:
    return None if d is None else jsonable(d)


def _frequency(d: FrequencyDomain | None) -> dict[str, Any] | None:
    return None if d is None else jsonable(d)


def _quality(q: SignalQuality) -> dict[str, Any]:
    return {
        "score": _num(q.score),
        "corrected_share": _num(q.corrected_share),
        "rejected_share": _num(q.rejected_share),
        "contact": q.contact,
        "hrv_available": q.hrv_available,
        "reason": q.reason,
    }


def metrics(client_id: str, u: BeatUpdate) -> dict[str, Any]:
    """`metrics`: HR and HRV over the short and long windows, spectra when recomputed, quality."""
    return {
        **_head(client_id, u.t),
        "hr_bpm": _num(u.hr_bpm),
        "short": _time_domain(u.short),
        "long": _time_domain(u.long),
        "frequency": _frequency(u.frequency),
        "quality": _quality(u.quality),
    }


def arousal(client_id: str, a: Arousal) -> dict[str, Any]:
    """`arousal`: the estimate (value null = unknown, with the reason)."""
    return {
        **_head(client_id, a.t),
        "value": _num(a.value),
        "confidence": _num(a.confidence),
        "fast": _num(a.fast),
        "slow": _num(a.slow),
        "basis": a.basis.value,
        "reason": a.reason,
    }


def update_payloads(client_id: str, u: BeatUpdate) -> list[tuple[Topic, dict[str, Any]]]:
    """The (kind, payload) pairs one BeatUpdate publishes: beat, metrics, arousal."""
    return [
        (Topic.BEAT, beat(client_id, u)),
        (Topic.METRICS, metrics(client_id, u)),
        (Topic.AROUSAL, arousal(client_id, u.arousal)),
    ]


# ---- session state ------------------------------------------------------------------------


def session_snapshot(client_id: str, snap: Any) -> dict[str, Any]:
    """Retained `session`: the full session state (every field of the snapshot dataclass).

    It needs at least "t" and "state"; all other fields are passed through as JSON.
    """
    body = jsonable(snap)
    if not isinstance(body, dict) or "state" not in body or "t" not in body:
        raise ParseError(f"session snapshot {type(snap).__name__} has no 't' and 'state' fields")
    body.pop("client", None)
    body.pop("v", None)
    t = body.pop("t")
    return {**_head(client_id, t), **body}


def guidance(client_id: str, t: float, g: Guidance | None) -> dict[str, Any]:
    """Retained `guidance`: the grounding in progress (breathing phases follow from start_t and
    the pattern), or `"active": false` when there is none."""
    p = _head(client_id, t)
    if g is None:
        p["active"] = False
        return p
    p.update(
        {
            "active": True,
            "start_t": _num(g.start_t),
            "technique": g.technique.value,
            "breathing": None
            if g.breathing is None
            else {
                "inhale_s": g.breathing.inhale_s,
                "hold_in_s": g.breathing.hold_in_s,
                "exhale_s": g.breathing.exhale_s,
                "hold_out_s": g.breathing.hold_out_s,
                "period_s": g.breathing.period_s,
                "rate_bpm": g.breathing.rate_bpm,
            },
            "prompt": g.prompt,
        }
    )
    return p


def assessment(
    client_id: str,
    snap: Any,
    events: Any = (),
    chosen_rate_bpm: float | None = None,
    protocol: Any = None,
) -> dict[str, Any]:
    """Retained `assessment`: the resonance assessment's state (docs/resonance.md): the block
    running, its rate and when it ends, every block scored so far, the result, the consent text
    while offered; `events` are the assessment events that produced this state (block scores as
    each block ends), `chosen_rate_bpm` the client's own breathing rate if they chose one."""
    from biofeedback.signal.resonance import assessment_to_json

    g = snap.guidance
    return {
        **_head(client_id, snap.t),
        "state": snap.state.value,
        "state_since_t": _num(snap.state_since_t),
        "started_t": _num(snap.started_t),
        "block_index": snap.block_index,
        "phase": snap.phase,
        "phase_ends_t": _num(snap.phase_ends_t),
        "remaining_s": None if snap.phase_ends_t is None else max(0.0, snap.phase_ends_t - snap.t),
        "rate_bpm": _num(snap.rate_bpm),
        "rates_bpm": list(snap.rates_bpm),
        "consent_needed": snap.consent_needed,
        "pacer": None if g is None else guidance(client_id, snap.t, g),
        "blocks": [jsonable(b) for b in snap.blocks],
        "result": None if snap.result is None else jsonable(assessment_to_json(snap.result)),
        "chosen_rate_bpm": _num(chosen_rate_bpm),
        # the plan, so a chart can draw the pacer of every block from started_t
        "block_s": None if protocol is None else _num(protocol.block_s),
        "rest_s": None if protocol is None else _num(protocol.rest_s),
        "inhale_share": None if protocol is None else _num(protocol.inhale_share),
        "events": [
            {
                "seq": ev.seq,
                "t": _num(ev.t),
                "kind": ev.kind,
                "actor": ev.actor.value,
                "from_state": ev.from_state.value,
                "to_state": ev.to_state.value,
                "reason": ev.reason,
                "values": jsonable(dict(ev.values)),
            }
            for ev in events
        ],
    }


# ---- events -------------------------------------------------------------------------------


def session_event(client_id: str, ev: SessionEvent) -> dict[str, Any]:
    """`event` (and `checkin` for check-in events): one thing the session did, and why."""
    return {
        **_head(client_id, ev.t),
        "source": "session",
        "seq": ev.seq,
        "kind": ev.kind,
        "actor": ev.actor.value,
        "from_state": ev.from_state.value,
        "to_state": ev.to_state.value,
        "reason": ev.reason,
        "values": jsonable(dict(ev.values)),
    }


def device_event(client_id: str, e: DeviceEvent) -> dict[str, Any]:
    """`event` from the strap: connected, signal lost/restored (with the gap), battery, ..."""
    return {
        **_head(client_id, e.t),
        "source": "device",
        "kind": e.kind.value,
        "device": e.device,
        "detail": e.detail,
        "battery_pct": e.battery_pct,
        "gap_s": _num(e.gap_s),
        "info": jsonable(e.info),
        "hint": e.hint,
    }


def malformed(client_id: str, n: Notification) -> dict[str, Any]:
    """`event` for a notification that could not be parsed (its raw bytes in hex)."""
    return {
        **_head(client_id, n.t),
        "source": "device",
        "kind": DeviceEventKind.MALFORMED.value,
        "device": n.device,
        "detail": n.error or "malformed notification",
        "battery_pct": None,
        "gap_s": None,
        "info": None,
        "payload_hex": n.payload.hex(),
    }


def service_error(client_id: str, t: float, code: str, detail: str) -> dict[str, Any]:
    """`event` from the service itself (e.g. "recording_failed") for the therapist to see."""
    return {**_head(client_id, t), "source": "service", "kind": code, "detail": detail}


# ---- commands -----------------------------------------------------------------------------


class _Result(Protocol):
    @property
    def command_id(self) -> str: ...

    @property
    def ok(self) -> bool: ...

    @property
    def error(self) -> str | None: ...


def reply(
    client_id: str, t: float, command_id: str | None, ok: bool, error: str | None
) -> dict[str, Any]:
    """`reply`: whether the command with this id was applied, and why not."""
    return {**_head(client_id, t), "id": command_id, "ok": ok, "error": error}


def command_reply(client_id: str, t: float, result: _Result) -> dict[str, Any]:
    """`reply` from the session core's result for one command."""
    return reply(client_id, t, result.command_id or None, result.ok, result.error)


def command_error(client_id: str, t: float, command_id: str | None, error: str) -> dict[str, Any]:
    """`reply` for a command refused before reaching the session (junk, bad field, role)."""
    return reply(client_id, t, command_id, False, error)


# ---- schemas ------------------------------------------------------------------------------


@functools.cache
def schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of one payload kind (shipped as package data)."""
    if kind not in KINDS:
        raise ValueError(f"unknown payload kind {kind!r}; kinds are {', '.join(KINDS)}")
    text = resources.files("biofeedback.service.schemas").joinpath(f"{kind}.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@functools.cache
def _validator(kind: str) -> Any:
    import jsonschema

    s = schema(kind)
    cls = jsonschema.validators.validator_for(s)
    cls.check_schema(s)
    return cls(s)


def validate(kind: str, payload: Any) -> None:
    """Raise ParseError naming the field when `payload` does not match the schema of `kind`."""
    errors = sorted(_validator(kind).iter_errors(payload), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        where = "/".join(str(p) for p in e.absolute_path) or "(top level)"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ParseError(f"{kind} payload invalid at {where}: {e.message}{more}")
