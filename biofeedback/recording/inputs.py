"""Session inputs to `inputs.tsv` rows and back.

A notification is stored as what arrived (receive time, device, raw bytes) plus the times its beats
were given. Reading it back re-parses the bytes through `BeatTimer.notification`, the same path a
live strap uses, and checks the beat times it reconstructs against the recorded ones.

Commands and the other inputs of `biofeedback.exposure.messages` are stored generically: `t`, `role`
and `command_id` in their own columns, every other field in the `fields` JSON; a command class
added later is recorded and read back without a change here.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import types
import typing
from collections.abc import Mapping
from typing import Any

from biofeedback.devices.readings import (
    Beat,
    DeviceEvent,
    DeviceInfo,
    Notification,
)
from biofeedback.devices.timing import BeatTimer
from biofeedback.errors import ParseError
from biofeedback.exposure import messages
from biofeedback.exposure.messages import (
    AdjustThresholds,
    ArousalSample,
    CalibrationDone,
    ChooseGrounding,
    CompleteStep,
    Consent,
    Decline,
    EcgVerdictReport,
    EndSession,
    MovementReport,
    OfferStep,
    Pause,
    SignalLost,
    SignalRestored,
    SudsAnswer,
    Tick,
)

log = logging.getLogger(__name__)

RecordedInput = Notification | DeviceEvent | messages.SessionInput

# Inputs the reader accepts by class name; anything else in the exposure messages module that is a
# dataclass with a `t` field is accepted too (a command added later), but nothing outside it.
KNOWN_INPUTS: dict[str, type[Any]] = {
    cls.__name__: cls
    for cls in (
        Tick,
        Pause,
        Consent,
        Decline,
        OfferStep,
        CompleteStep,
        EndSession,
        AdjustThresholds,
        SudsAnswer,
        ChooseGrounding,
        ArousalSample,
        SignalLost,
        SignalRestored,
        CalibrationDone,
        EcgVerdictReport,
        MovementReport,
    )
}
_COLUMN_FIELDS = {"t", "role", "command_id"}


def encode_input(item: object, seq: int) -> tuple[Any, ...]:
    """The `inputs.tsv` values (column order of schema.INPUTS) for one input."""
    if isinstance(item, Notification):
        beat_t = ",".join(repr(float(b.t)) for b in item.beats)
        return (
            seq,
            item.t,
            "Notification",
            item.device,
            item.payload,
            beat_t,
            item.error,
            None,
            None,
            None,
        )
    if isinstance(item, DeviceEvent):
        fields = {
            "kind": item.kind.value,
            "detail": item.detail,
            "battery_pct": item.battery_pct,
            "gap_s": item.gap_s,
            "info": None if item.info is None else dataclasses.asdict(item.info),
        }
        return (seq, item.t, "DeviceEvent", item.device, None, None, None, None, None, fields)
    if dataclasses.is_dataclass(item) and not isinstance(item, type) and hasattr(item, "t"):
        name = type(item).__name__
        role = getattr(item, "role", None)
        command_id = getattr(item, "command_id", None)
        rest = {
            f.name: getattr(item, f.name)
            for f in dataclasses.fields(item)
            if f.name not in _COLUMN_FIELDS
        }
        return (
            seq,
            item.t,
            name,
            None,
            None,
            None,
            None,
            None if role is None else str(role.value if isinstance(role, enum.Enum) else role),
            command_id,
            rest or None,
        )
    raise TypeError(f"cannot record input of type {type(item).__name__}: not a session input")


def _input_class(name: str) -> type[Any]:
    cls = KNOWN_INPUTS.get(name)
    if cls is not None:
        return cls
    cand = getattr(messages, name, None)
    # Only commands (they name a role) may be added without a change here.
    if (
        isinstance(cand, type)
        and dataclasses.is_dataclass(cand)
        and {"t", "role"} <= {f.name for f in dataclasses.fields(cand)}
    ):
        return cand
    raise ParseError(f"unknown input type {name!r}")


def _coerce(hint: Any, value: Any, name: str) -> Any:
    """`value` (from JSON) as the field type `hint` says; ParseError when it does not fit."""
    if value is None:
        args = typing.get_args(hint)
        if hint is type(None) or type(None) in args:
            return None
        raise ParseError(f"field {name!r} may not be empty")
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        errors: list[str] = []
        for opt in options:
            try:
                return _coerce(opt, value, name)
            except ParseError as exc:
                errors.append(str(exc))
        raise ParseError("; ".join(errors))
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if isinstance(value, hint):
            return value
        if not isinstance(value, dict):
            raise ParseError(f"field {name!r}: expected an object for {hint.__name__}")
        return build_dataclass(hint, value)
    if origin is tuple and isinstance(value, list | tuple):
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, name) for v in value)
        if len(args) == len(value):
            return tuple(_coerce(a, v, name) for a, v in zip(args, value, strict=True))
        raise ParseError(f"field {name!r}: expected {len(args)} values, got {len(value)}")
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        try:
            return hint(value)
        except ValueError as exc:
            raise ParseError(f"field {name!r}: {value!r} is not a {hint.__name__}") from exc
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ParseError(f"field {name!r}: expected a number, got {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParseError(f"field {name!r}: expected an integer, got {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ParseError(f"field {name!r}: expected true/false, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ParseError(f"field {name!r}: expected text, got {value!r}")
        return value
    return value  # Mapping / Any fields are kept as read


def build_dataclass(cls: type[Any], values: Mapping[str, Any]) -> Any:
    """An instance of dataclass `cls` from JSON-like `values`, each field checked against its
    type (enums by value, nested dataclasses, tuples); ParseError names the bad field."""
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in values:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ParseError(f"{cls.__name__} needs field {f.name!r}")
            continue
        kwargs[f.name] = _coerce(hints[f.name], values[f.name], f.name)
    unknown = sorted(set(values) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise ParseError(f"{cls.__name__} has no field(s) {', '.join(unknown)}")
    return cls(**kwargs)


class InputDecoder:
    """Rebuilds inputs from rows; keeps one BeatTimer per device, as a live strap does."""

    def __init__(self) -> None:
        self._timers: dict[str, BeatTimer] = {}
        self.timing_mismatches = 0  # notifications whose re-parsed beat times had to be replaced

    def decode(self, row: Mapping[str, Any]) -> RecordedInput:
        """One input from its parsed `inputs.tsv` row (ParseError says what is wrong)."""
        name = row["input"]
        t = row["t"]
        if t is None:
            raise ParseError("column 't' is empty")
        if name == "Notification":
            return self._notification(row, t)
        if name == "DeviceEvent":
            return self._device_event(row, t)
        if name is None:
            raise ParseError("column 'input' is empty")
        cls = _input_class(name)
        fields = row["fields"] or {}
        if not isinstance(fields, dict):
            raise ParseError(f"column 'fields' must be a JSON object, got {fields!r}")
        values: dict[str, Any] = {"t": t, **fields}
        names = {f.name for f in dataclasses.fields(cls)}
        if "role" in names:
            values["role"] = row["role"]
        if "command_id" in names and row["command_id"] is not None:
            values["command_id"] = row["command_id"]
        return typing.cast(RecordedInput, build_dataclass(cls, values))

    def _notification(self, row: Mapping[str, Any], t: float) -> Notification:
        device = row["device"]
        payload = row["payload_hex"]
        if device is None or payload is None:
            raise ParseError("a Notification needs 'device' and 'payload_hex'")
        timer = self._timers.get(device)
        if timer is None:
            timer = self._timers[device] = BeatTimer(device)
        n = timer.notification(t, payload)
        recorded = _beat_times(row["beat_t"])
        if recorded is None or tuple(b.t for b in n.beats) == recorded:
            return n
        if n.measurement is None or len(recorded) != len(n.beats):
            raise ParseError(
                f"recorded {len(recorded)} beat time(s) but the payload holds {len(n.beats)} RR "
                "value(s)"
            )
        # The live chain was restarted (a reconnect resets the timer): start a fresh one.
        timer.reset()
        retry = timer.beats(t, n.measurement)
        if tuple(b.t for b in retry) == recorded:
            return Notification(t, device, n.payload, n.measurement, retry, n.error)
        # Timing rules differ from the recording's (an older version, another source): the
        # recorded times are what the session saw, so they win and the next chain starts there.
        self.timing_mismatches += 1
        beats = tuple(
            Beat(t=bt, rr_ms=b.rr_ms, hr_bpm=b.hr_bpm, contact=b.contact, device=device)
            for bt, b in zip(recorded, n.beats, strict=True)
        )
        timer.reset()
        timer.beats(
            recorded[-1], dataclasses.replace(n.measurement, rr_1024=n.measurement.rr_1024[-1:])
        )
        return Notification(t, device, n.payload, n.measurement, beats, n.error)

    def _device_event(self, row: Mapping[str, Any], t: float) -> DeviceEvent:
        device = row["device"]
        fields = row["fields"] or {}
        if device is None or not isinstance(fields, dict):
            raise ParseError("a DeviceEvent needs 'device' and a JSON object in 'fields'")
        info = fields.get("info")
        if info is not None and not isinstance(info, dict):
            raise ParseError(f"device info must be a JSON object, got {info!r}")
        values = {**fields, "t": t, "device": device}
        values["info"] = None if info is None else build_dataclass(DeviceInfo, info)
        return typing.cast(DeviceEvent, build_dataclass(DeviceEvent, values))


def _beat_times(text: str | None) -> tuple[float, ...] | None:
    if text is None:
        return None
    if text == "":
        return ()
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError as exc:
        raise ParseError(f"column 'beat_t' holds {text[:60]!r}, not comma-separated times") from exc
