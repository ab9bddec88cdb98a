"""The on-disk format of a session recording: files, columns, units and how values are written.

One folder per session, `<root>/<client_id>/<session_id>/`, holding tab-separated text files with a
header row (`<name>.tsv`, or `<name>.tsv.gz` once compressed after the session) and a JSON sidecar
`session.json`. The full description for researchers is docs/recording.md; this module is the
single source both the writer and the reader use, so they cannot drift apart.

Cell encoding (the same in every file):

* missing value: `n/a` (as BIDS);
* float: Python's shortest round-trip repr (`0.1`, `1764067088.123456`, `nan`), so a value read
  back is bit-identical to the value written; replay relies on this;
* int: decimal; bool: `true` / `false`;
* hex: the payload bytes as lowercase hex (`1648e803`);
* text: UTF-8 with backslash escapes for `\\`, tab, newline and carriage return; a literal text
  `n/a` is written `n\\/a` so it cannot be confused with a missing value;
* json: compact JSON (`{"a":1}`), which never contains a raw tab or newline.
"""

from __future__ import annotations

import enum
import json
import math
from dataclasses import dataclass
from typing import Any

from biofeedback.errors import ParseError

FORMAT_NAME = "biofeedback-session"
# Version 2 added gaps.tsv and the sidecar's `Pipeline`; version 3 added pmd.tsv and ecg.tsv (a
# strap's raw data). Older recordings are migrated on read (biofeedback.recording.migrate). Bump it
# whenever a reader of the old version would misread a new recording, and add the migration.
FORMAT_VERSION = 3
SIDECAR = "session.json"
NA = "n/a"


class ColType(enum.StrEnum):
    FLOAT = "float"
    INT = "int"
    BOOL = "bool"
    TEXT = "text"
    HEX = "hex"
    JSON = "json"


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: ColType
    unit: str  # "" when the column has no unit
    description: str


@dataclass(frozen=True, slots=True)
class TableSpec:
    """One TSV file of a recording."""

    name: str  # "beats"; the file is "beats.tsv" (or "beats.tsv.gz")
    description: str
    columns: tuple[Column, ...]

    @property
    def filename(self) -> str:
        return f"{self.name}.tsv"

    @property
    def header(self) -> str:
        return "\t".join(c.name for c in self.columns) + "\n"

    def sidecar_entry(self) -> dict[str, Any]:
        """The BIDS-style description of this file's columns for the JSON sidecar."""
        return {
            "Description": self.description,
            "Columns": [c.name for c in self.columns],
            **{
                c.name: {
                    "Description": c.description,
                    "Type": str(c.type),
                    **({"Units": c.unit} if c.unit else {}),
                }
                for c in self.columns
            },
        }


_F, _I, _B, _T, _H, _J = (
    ColType.FLOAT,
    ColType.INT,
    ColType.BOOL,
    ColType.TEXT,
    ColType.HEX,
    ColType.JSON,
)
_S = "s"
_CLOCK = "session clock: Unix epoch seconds for a real strap, a virtual epoch for the simulator"

INPUTS = TableSpec(
    "inputs",
    "Every session input in processing order; replay feeds exactly these rows to a fresh core.",
    (
        Column("seq", _I, "", "the runner's sequence number of this input (processing order)"),
        Column("t", _F, _S, "time carried by the input (" + _CLOCK + ")"),
        Column(
            "input",
            _T,
            "",
            "input type: Notification, DeviceEvent, Tick, or a command class name "
            "(Pause, Consent, Decline, OfferStep, CompleteStep, EndSession, AdjustThresholds, "
            "SudsAnswer, ChooseGrounding)",
        ),
        Column("device", _T, "", "device name (Notification, DeviceEvent)"),
        Column(
            "payload_hex",
            _H,
            "",
            "raw Heart Rate Measurement (0x2A37) bytes as received (Notification)",
        ),
        Column(
            "beat_t",
            _T,
            _S,
            "comma-separated times given to the notification's RR intervals, oldest first",
        ),
        Column("error", _T, "", "why the payload could not be parsed (Notification)"),
        Column("role", _T, "", "who sent the command: client, therapist or system"),
        Column("command_id", _T, "", "the command's id, echoed in its reply"),
        Column("fields", _J, "", "the remaining fields of the input (DeviceEvent, commands)"),
    ),
)

BEATS = TableSpec(
    "beats",
    "One row per signal-pipeline update: an RR interval (clean or rejected) or an HR-only sample.",
    (
        Column("t", _F, _S, "time of the beat (end of the RR interval; " + _CLOCK + ")"),
        Column("rr_ms", _F, "ms", "RR used for metrics on arrival (local median if provisional)"),
        Column("raw_rr_ms", _F, "ms", "RR interval as the strap sent it"),
        Column("hr_bpm", _F, "bpm", "instantaneous heart rate"),
        Column("corrected", _B, "", "the RR value was replaced (provisionally or as an artifact)"),
        Column("artifact", _T, "", "ectopic, missed, extra, longshort, provisional (unjudged)"),
        Column("contact", _B, "", "skin contact reported by the strap (n/a: not reported)"),
        Column("rejected", _T, "", "why the input was rejected (implausible RR, ...)"),
    ),
)


def _td_columns(prefix: str, what: str) -> tuple[Column, ...]:
    return (
        Column(f"{prefix}_window_s", _F, _S, f"length of the {what} window"),
        Column(f"{prefix}_n", _I, "", f"beats in the {what} window"),
        Column(f"{prefix}_mean_nn_ms", _F, "ms", f"mean NN interval over the {what} window"),
        Column(f"{prefix}_hr_bpm", _F, "bpm", f"60000 / mean NN over the {what} window"),
        Column(f"{prefix}_rmssd_ms", _F, "ms", f"RMSSD over the {what} window"),
        Column(f"{prefix}_sdnn_ms", _F, "ms", f"SDNN (ddof=1) over the {what} window"),
        Column(f"{prefix}_pnn50_pct", _F, "%", f"pNN50 over the {what} window"),
    )


METRICS = TableSpec(
    "metrics",
    "Time-domain HRV and signal quality after each pipeline update (same rows as beats).",
    (
        Column("t", _F, _S, "time of the update (" + _CLOCK + ")"),
        *_td_columns("short", "short"),
        *_td_columns("long", "long"),
        Column("quality_score", _F, "", "signal quality 0..1"),
        Column("corrected_share", _F, "", "share of recent beats that were corrected, 0..1"),
        Column("rejected_share", _F, "", "share of recent inputs that were rejected, 0..1"),
        Column("quality_contact", _B, "", "skin contact (n/a: not reported)"),
        Column("hrv_available", _B, "", "HRV can be computed now"),
        Column("quality_reason", _T, "", "why quality is low or HRV is unavailable"),
    ),
)

FREQUENCY = TableSpec(
    "frequency",
    "Spectral HRV, one row each time it was recomputed (bounded cadence).",
    (
        Column("t", _F, _S, "time of the update that recomputed it (" + _CLOCK + ")"),
        Column("window_end_t", _F, _S, "end of the analysed window"),
        Column("window_s", _F, _S, "length of the analysed window"),
        Column("lf_ms2", _F, "ms^2", "low-frequency power (0.04-0.15 Hz)"),
        Column("hf_ms2", _F, "ms^2", "high-frequency power (0.15-0.4 Hz)"),
        Column("lf_hf", _F, "", "LF/HF ratio"),
        Column("breathing_rate_bpm", _F, "1/min", "breathing rate from the RSA peak"),
        Column("coherence", _F, "", "share of power near the paced breathing frequency, 0..1"),
        Column("paced_hz", _F, "Hz", "the paced breathing frequency coherence refers to"),
    ),
)

REVISIONS = TableSpec(
    "revisions",
    "Earlier beats the artifact detector judged later: corrected, or restored to the raw value.",
    (
        Column("t", _F, _S, "time of the update that revised the beat (" + _CLOCK + ")"),
        Column("beat_t", _F, _S, "time of the revised beat (its row in beats.tsv)"),
        Column("rr_ms", _F, "ms", "RR now used for metrics (corrected, or raw restored)"),
        Column("raw_rr_ms", _F, "ms", "RR interval as the strap sent it"),
        Column("corrected", _B, "", "RR was corrected (false: the raw value was restored)"),
        Column("artifact", _T, "", "artifact type: ectopic, missed, extra, longshort"),
        Column("contact", _B, "", "skin contact reported by the strap (n/a: not reported)"),
    ),
)

AROUSAL = TableSpec(
    "arousal",
    "The arousal estimate after each pipeline update (same rows as beats); see docs/arousal.md.",
    (
        Column("t", _F, _S, "time of the estimate (" + _CLOCK + ")"),
        Column("value", _F, "", "arousal 0..100 (n/a: unknown)"),
        Column("confidence", _F, "", "confidence 0..1"),
        Column("fast", _F, "", "heart-rate component 0..100"),
        Column("slow", _F, "", "vagal-withdrawal component 0..100"),
        Column("basis", _T, "", "hr+hrv, hr_only or unknown"),
        Column("reason", _T, "", "why unknown or low confidence"),
    ),
)

EVENTS = TableSpec(
    "events",
    "Session events (transitions, pauses, check-ins, guidance, threshold changes) in BIDS "
    "events style.",
    (
        Column("onset", _F, _S, "seconds since the recording's start_t (see session.json)"),
        Column("duration", _F, _S, "0 for instantaneous events"),
        Column("kind", _T, "", "transition, checkin_due, checkin, thresholds, guidance, ..."),
        Column("seq", _I, "", "the session's event sequence number"),
        Column("t", _F, _S, "time of the event (" + _CLOCK + ")"),
        Column("actor", _T, "", "who caused it: client, therapist or system"),
        Column("from_state", _T, "", "session state before"),
        Column("to_state", _T, "", "session state after"),
        Column("reason", _T, "", "why it happened, in words"),
        Column("values", _J, "", "the values that caused it (arousal, SUDS, thresholds, ...)"),
    ),
)

GAPS = TableSpec(
    "gaps",
    "Rows the recorder dropped because the disk would not take them and its memory budget was "
    "used up (samples first, events only when nothing else was left), one row per table and kind.",
    (
        Column("from_t", _F, _S, "time of the first dropped row (" + _CLOCK + ")"),
        Column("to_t", _F, _S, "time of the last dropped row"),
        Column("table", _T, "", "the table the rows were meant for (inputs, beats, events, ...)"),
        Column("kind", _T, "", "sample (strap data, ticks, pipeline outputs) or event"),
        Column("rows", _I, "", "how many rows were dropped"),
        Column("reason", _T, "", "why: the write error and the memory budget that was used up"),
    ),
)

PMD = TableSpec(
    "pmd",
    "Every raw-data (Polar Measurement Data) notification of the strap as received, and what "
    "became of it: ECG or ACC samples, a gap of samples never received, a frame that did not "
    "decode, or a status of the strap's PMD service. A strap without PMD has only a status row "
    "per connection saying so.",
    (
        Column(
            "t", _F, _S, "receive time of the notification, or time of the status (" + _CLOCK + ")"
        ),
        Column("device", _T, "", "device name"),
        Column("kind", _T, "", "ecg, acc, gap, malformed or status"),
        Column("stream", _T, "", "ecg or acc (gap, status: the stream concerned, if one)"),
        Column("sensor_time_ns", _I, "ns", "strap's sensor time of the frame's last sample"),
        Column("first_t", _F, _S, "service-clock time given to the frame's first sample"),
        Column("last_t", _F, _S, "service-clock time given to the frame's last sample"),
        Column("samples", _I, "", "samples in the frame (ecg, acc), or lost (gap)"),
        Column("payload_hex", _H, "", "the notification's bytes as received (ecg, acc, malformed)"),
        Column("acc_factor", _F, "", "the ACC stream's FACTOR, needed to decode compressed ACC"),
        Column("gap_s", _F, _S, "sensor time without samples (gap)"),
        Column("detail", _T, "", "why (gap, malformed) or what the strap said (status)"),
    ),
)

ECG = TableSpec(
    "ecg",
    "The strap's raw ECG, one row per sample (a Polar H10: 130 Hz), as decoded from pmd.tsv.",
    (
        Column("t", _F, _S, "time of the sample (" + _CLOCK + ")"),
        Column("uv", _I, "uV", "ECG in microvolts"),
    ),
)

TABLES: tuple[TableSpec, ...] = (
    INPUTS,
    BEATS,
    REVISIONS,
    METRICS,
    FREQUENCY,
    AROUSAL,
    EVENTS,
    GAPS,
    PMD,
    ECG,
)
TABLE_BY_NAME = {t.name: t for t in TABLES}

# ---- cell encoding --------------------------------------------------------------------------

_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_UNESCAPE = {"\\": "\\", "t": "\t", "n": "\n", "r": "\r", "/": "/"}


def _escape(s: str) -> str:
    if s == NA:
        return "n\\/a"
    return s.translate(_ESCAPES)


def _unescape(s: str) -> str:
    if "\\" not in s:
        return s
    out: list[str] = []
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\":
            if i + 1 >= len(s) or s[i + 1] not in _UNESCAPE:
                raise ParseError(f"bad escape sequence at character {i} of {s[:40]!r}")
            out.append(_UNESCAPE[s[i + 1]])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def jsonable(obj: Any) -> Any:
    """`obj` as plain JSON data: dataclasses become objects, enums their values, NaN null."""
    if obj is None or isinstance(obj, bool | int | str):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, enum.Enum):
        return jsonable(obj.value)
    if isinstance(obj, bytes | bytearray | memoryview):
        return bytes(obj).hex()
    if hasattr(obj, "__dataclass_fields__"):
        return {name: jsonable(getattr(obj, name)) for name in obj.__dataclass_fields__}
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if hasattr(obj, "items") and callable(obj.items):  # Mapping proxies and the like
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [jsonable(v) for v in obj]
    return str(obj)


def dump_json(value: Any) -> str:
    """Compact, key-sorted JSON for a `json` cell (non-finite floats become null)."""
    return json.dumps(
        jsonable(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def encode_cell(col: Column, value: Any) -> str:
    """One cell's text. `value` None is `n/a`."""
    if value is None:
        return NA
    t = col.type
    if t is ColType.FLOAT:
        return repr(float(value))
    if t is ColType.INT:
        return str(int(value))
    if t is ColType.BOOL:
        return "true" if value else "false"
    if t is ColType.HEX:
        return bytes(value).hex()
    if t is ColType.JSON:
        return dump_json(value)
    return _escape(str(value))


def decode_cell(col: Column, text: str) -> Any:
    """The value of one cell; raises ParseError saying which column and why."""
    if text == NA:
        return None
    t = col.type
    try:
        if t is ColType.FLOAT:
            return float(text)
        if t is ColType.INT:
            return int(text)
        if t is ColType.BOOL:
            if text == "true":
                return True
            if text == "false":
                return False
            raise ValueError("expected true, false or n/a")
        if t is ColType.HEX:
            return bytes.fromhex(text)
        if t is ColType.JSON:
            return json.loads(text)
        return _unescape(text)
    except (ValueError, ParseError) as exc:
        raise ParseError(f"column {col.name!r} ({t}): {text[:60]!r} is not valid: {exc}") from exc


def encode_row(spec: TableSpec, values: tuple[Any, ...]) -> str:
    """One TSV line (with its newline) for `values` in column order."""
    return "\t".join(encode_cell(c, v) for c, v in zip(spec.columns, values, strict=True)) + "\n"
