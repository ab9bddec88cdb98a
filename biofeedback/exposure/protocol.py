"""Exposure protocol files: the agreed agenda of steps, thresholds, guidance and check-in cadence.

A protocol is TOML (see `config/protocols/spider-hierarchy.toml`). Every problem is reported as a
`ConfigError` whose message names the file, the line and the field, e.g.

    config/protocols/x.toml, line 12, field thresholds.lower: must be below thresholds.upper (70)

`tomllib` gives no positions for keys, so `_LineIndex` finds the line of each key in the text.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from biofeedback.errors import ConfigError
from biofeedback.exposure.messages import BreathingPattern, GroundingTechnique

#: Most steps a protocol may have (a hierarchy has a handful; commands name steps 0..MAX_STEPS-1).
MAX_STEPS = 1000

DEFAULT_GROUNDING: tuple[GroundingTechnique, ...] = (
    GroundingTechnique.PACED_BREATHING,
    GroundingTechnique.SENSORY_54321,
    GroundingTechnique.COGNITIVE_CHECK,
    GroundingTechnique.SELF_COMPASSION,
)


@dataclass(frozen=True, slots=True)
class Step:
    """One rung of the hierarchy: what the client will do, for about how long."""

    title: str
    description: str
    planned_s: float
    suds_anchors: tuple[tuple[int, str], ...] = ()  # (SUDS value, what it means), ascending


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Arousal thresholds (0..100) with hysteresis and dwell; all times in seconds."""

    upper: float = 70.0  # held at or above for `dwell_s` during exposure: pause
    lower: float = 45.0  # held below for `recovery_s` while paused: recovered
    dwell_s: float = 10.0
    recovery_s: float = 60.0
    max_step_s: float = 900.0  # longest continuous exposure before a system pause
    stale_s: float = 5.0  # an arousal value older than this counts as unknown
    signal_timeout_s: float = 10.0  # no arousal sample at all for this long: monitoring lost


@dataclass(frozen=True, slots=True)
class GuidancePrefs:
    """How grounding is offered: breathing pattern and the client's menu in order of preference."""

    breathing: BreathingPattern = field(default_factory=BreathingPattern)
    grounding: tuple[GroundingTechnique, ...] = DEFAULT_GROUNDING


@dataclass(frozen=True, slots=True)
class CheckinCadence:
    """When the client is asked for a SUDS rating (0..100)."""

    at_step_start: bool = True
    at_step_end: bool = True
    after_recovery: bool = True
    every_s: float = 0.0  # also every this many seconds of exposure (0 = never)


@dataclass(frozen=True, slots=True)
class SessionOptions:
    """Automation that never pushes: an offer still needs the client's consent."""

    auto_offer: bool = False  # system offers the next step / resume when due (consent still needed)
    auto_complete: bool = False  # a step completes once its planned exposure time is reached
    # Arousal while the chest accelerometer says the client moves (exercise, talking, shifting in
    # the chair) may pause the step: pausing is the safe direction, so True unless the protocol
    # says otherwise (docs/session.md, "Movement").
    movement_pauses: bool = True


@dataclass(frozen=True, slots=True)
class ExposureProtocol:
    """A validated protocol. `source` names where it came from (file path or given name)."""

    name: str
    steps: tuple[Step, ...]
    thresholds: Thresholds = field(default_factory=Thresholds)
    guidance: GuidancePrefs = field(default_factory=GuidancePrefs)
    checkins: CheckinCadence = field(default_factory=CheckinCadence)
    options: SessionOptions = field(default_factory=SessionOptions)
    # Three non-overlapping minutes: the smallest calibration whose median over minutes rejects
    # one atypical minute and that measures the client's own minute-to-minute spread
    # (docs/arousal.md, "Baseline").
    calibration_s: float = 180.0
    description: str = ""
    source: str = "<protocol>"


def threshold_problems(th: Thresholds) -> list[tuple[str, str]]:
    """(field, problem) pairs for an inconsistent set of thresholds; empty when valid.

    Shared by protocol loading and the therapist's AdjustThresholds command.
    """
    out: list[tuple[str, str]] = []
    for name in ("upper", "lower"):
        v = getattr(th, name)
        if not (math.isfinite(v) and 0.0 <= v <= 100.0):
            out.append((name, f"must be within 0..100, got {v!r}"))
    for name in ("dwell_s", "recovery_s"):
        v = getattr(th, name)
        if not (math.isfinite(v) and 0.0 <= v <= 3600.0):
            out.append((name, f"must be within 0..3600 seconds, got {v!r}"))
    for name in ("max_step_s", "stale_s", "signal_timeout_s"):
        v = getattr(th, name)
        if not (math.isfinite(v) and 0.0 < v <= 86400.0):
            out.append((name, f"must be a positive number of seconds, got {v!r}"))
    if not out and not th.lower < th.upper:
        out.append(("lower", f"must be below upper ({th.upper:g}), got {th.lower:g}"))
    return out


# ---- line numbers ------------------------------------------------------------------------------

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(
    r"^\s*((?:[A-Za-z0-9_\-]+|\"[^\"]*\")(?:\s*\.\s*(?:[A-Za-z0-9_\-]+|\"[^\"]*\"))*)\s*="
)
_INLINE_KEY = re.compile(r"[{,]\s*([A-Za-z0-9_\-]+|\"[^\"]*\")\s*=")

Path_ = tuple[str | int, ...]


def _split_key(raw: str) -> list[str]:
    return [p.strip().strip('"') for p in re.findall(r"\"[^\"]*\"|[^.]+", raw)]


class _LineIndex:
    """Line number (1-based) of each key path in a TOML text, found by scanning its lines."""

    def __init__(self, text: str) -> None:
        self.lines: dict[Path_, int] = {}
        counts: dict[tuple[str, ...], int] = {}
        context: Path_ = ()
        for no, line in enumerate(text.splitlines(), start=1):
            h = _HEADER.match(line)
            if h and "=" not in h.group(2):
                parts = tuple(_split_key(h.group(2)))
                if h.group(1) == "[[":
                    idx = counts.get(parts, 0)
                    counts[parts] = idx + 1
                    context = (*parts, idx)
                else:
                    context = parts
                self.lines.setdefault(context, no)
                continue
            k = _KEY.match(line)
            if not k:
                continue
            keypath: Path_ = (*context, *_split_key(k.group(1)))
            self.lines.setdefault(keypath, no)
            for inner in _INLINE_KEY.finditer(line[k.end() :]):
                self.lines.setdefault((*keypath, inner.group(1).strip('"')), no)

    def line_of(self, path: Path_) -> int | None:
        """Line of `path`, else of its nearest enclosing key or table, else None."""
        for n in range(len(path), 0, -1):
            no = self.lines.get(path[:n])
            if no is not None:
                return no
        return None


def _fmt_path(path: Path_) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else p)
    return out


class _Reader:
    """Typed access to the parsed TOML that raises ConfigError naming file, line and field."""

    def __init__(self, text: str, source: str) -> None:
        self.source = source
        self.index = _LineIndex(text)

    def error(self, path: Path_, problem: str) -> ConfigError:
        line = self.index.line_of(path)
        where = f"line {line}" if line is not None else "(field not present)"
        return ConfigError(f"{self.source}, {where}, field {_fmt_path(path)}: {problem}")

    def table(self, data: Mapping[str, Any], path: Path_, allowed: set[str]) -> Mapping[str, Any]:
        for key in data:
            if key not in allowed:
                hint = ", ".join(sorted(allowed))
                raise self.error((*path, key), f"unknown field (expected one of: {hint})")
        return data

    def sub(self, data: Mapping[str, Any], path: Path_, key: str) -> Mapping[str, Any] | None:
        v = data.get(key)
        if v is None:
            return None
        if not isinstance(v, dict):
            raise self.error((*path, key), f"must be a table, got {type(v).__name__}")
        return v

    def number(
        self,
        data: Mapping[str, Any],
        path: Path_,
        key: str,
        default: float | None,
        *,
        lo: float | None = None,
        hi: float | None = None,
        positive: bool = False,
    ) -> float:
        p = (*path, key)
        if key not in data:
            if default is None:
                raise self.error(p, "is required (a number)")
            return default
        v = data[key]
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise self.error(p, f"must be a number, got {type(v).__name__} {v!r}")
        f = float(v)
        if not math.isfinite(f):
            raise self.error(p, f"must be a finite number, got {v!r}")
        if positive and not f > 0:
            raise self.error(p, f"must be greater than 0, got {v!r}")
        if lo is not None and f < lo:
            raise self.error(p, f"must be at least {lo:g}, got {v!r}")
        if hi is not None and f > hi:
            raise self.error(p, f"must be at most {hi:g}, got {v!r}")
        return f

    def string(self, data: Mapping[str, Any], path: Path_, key: str, default: str | None) -> str:
        p = (*path, key)
        if key not in data:
            if default is None:
                raise self.error(p, "is required (a string)")
            return default
        v = data[key]
        if not isinstance(v, str):
            raise self.error(p, f"must be a string, got {type(v).__name__} {v!r}")
        return v.strip()

    def boolean(self, data: Mapping[str, Any], path: Path_, key: str, default: bool) -> bool:
        if key not in data:
            return default
        v = data[key]
        if not isinstance(v, bool):
            raise self.error((*path, key), f"must be true or false, got {v!r}")
        return v


def parse_protocol(text: str, source: str = "<protocol>") -> ExposureProtocol:
    """Validate protocol TOML `text`; `source` names it in error messages.

    Raises ConfigError naming the source, line and field of the first problem found.
    """
    r = _Reader(text, source)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
    top = r.table(
        data,
        (),
        {
            "name",
            "description",
            "calibration_s",
            "steps",
            "thresholds",
            "guidance",
            "checkins",
            "session",
        },
    )
    name = r.string(top, (), "name", None)
    if not name:
        raise r.error(("name",), "must not be empty")
    description = r.string(top, (), "description", "")
    calibration_s = r.number(top, (), "calibration_s", 180.0, lo=10.0, hi=3600.0)

    steps = _parse_steps(r, top)
    thresholds = _parse_thresholds(r, top)
    guidance = _parse_guidance(r, top)

    ck = r.sub(top, (), "checkins") or {}
    r.table(ck, ("checkins",), {"at_step_start", "at_step_end", "after_recovery", "every_s"})
    checkins = CheckinCadence(
        at_step_start=r.boolean(ck, ("checkins",), "at_step_start", True),
        at_step_end=r.boolean(ck, ("checkins",), "at_step_end", True),
        after_recovery=r.boolean(ck, ("checkins",), "after_recovery", True),
        every_s=r.number(ck, ("checkins",), "every_s", 0.0, lo=0.0, hi=86400.0),
    )
    se = r.sub(top, (), "session") or {}
    r.table(se, ("session",), {"auto_offer", "auto_complete", "movement_pauses"})
    options = SessionOptions(
        auto_offer=r.boolean(se, ("session",), "auto_offer", False),
        auto_complete=r.boolean(se, ("session",), "auto_complete", False),
        movement_pauses=r.boolean(se, ("session",), "movement_pauses", True),
    )
    return ExposureProtocol(
        name=name,
        description=description,
        steps=steps,
        thresholds=thresholds,
        guidance=guidance,
        checkins=checkins,
        options=options,
        calibration_s=calibration_s,
        source=source,
    )


def _parse_steps(r: _Reader, top: Mapping[str, Any]) -> tuple[Step, ...]:
    raw = top.get("steps")
    if raw is None:
        raise r.error(("steps",), "is required: at least one [[steps]] table")
    if not isinstance(raw, list) or not raw:
        raise r.error(("steps",), "must be a non-empty array of [[steps]] tables")
    if len(raw) > MAX_STEPS:
        raise r.error(("steps",), f"has {len(raw)} steps; at most {MAX_STEPS} are allowed")
    steps: list[Step] = []
    for i, st in enumerate(raw):
        p: Path_ = ("steps", i)
        if not isinstance(st, dict):
            raise r.error(p, f"must be a table, got {type(st).__name__}")
        r.table(st, p, {"title", "description", "planned_s", "suds_anchors"})
        title = r.string(st, p, "title", None)
        if not title:
            raise r.error((*p, "title"), "must not be empty")
        anchors: list[tuple[int, str]] = []
        raw_anchors = r.sub(st, p, "suds_anchors") or {}
        for key, text in raw_anchors.items():
            ap = (*p, "suds_anchors", key)
            if not re.fullmatch(r"\d{1,3}", key) or int(key) > 100:
                raise r.error(ap, f"anchor keys are SUDS values 0..100, got {key!r}")
            if not isinstance(text, str) or not text.strip():
                raise r.error(ap, "must be a non-empty string describing that SUDS level")
            anchors.append((int(key), text.strip()))
        steps.append(
            Step(
                title=title,
                description=r.string(st, p, "description", None),
                planned_s=r.number(st, p, "planned_s", None, positive=True, hi=86400.0),
                suds_anchors=tuple(sorted(anchors)),
            )
        )
    return tuple(steps)


def _parse_thresholds(r: _Reader, top: Mapping[str, Any]) -> Thresholds:
    p: Path_ = ("thresholds",)
    th = r.sub(top, (), "thresholds")
    if th is None:
        raise r.error(p, "is required: a [thresholds] table with upper, lower, dwell_s, recovery_s")
    r.table(th, p, {f for f in Thresholds.__dataclass_fields__})
    d = Thresholds()
    out = Thresholds(
        upper=r.number(th, p, "upper", None, lo=0.0, hi=100.0),
        lower=r.number(th, p, "lower", None, lo=0.0, hi=100.0),
        dwell_s=r.number(th, p, "dwell_s", None, lo=0.0, hi=3600.0),
        recovery_s=r.number(th, p, "recovery_s", None, lo=0.0, hi=3600.0),
        max_step_s=r.number(th, p, "max_step_s", d.max_step_s, positive=True, hi=86400.0),
        stale_s=r.number(th, p, "stale_s", d.stale_s, positive=True, hi=86400.0),
        signal_timeout_s=r.number(
            th, p, "signal_timeout_s", d.signal_timeout_s, positive=True, hi=86400.0
        ),
    )
    for name, problem in threshold_problems(out):
        raise r.error((*p, name), problem)
    return out


def _parse_guidance(r: _Reader, top: Mapping[str, Any]) -> GuidancePrefs:
    p: Path_ = ("guidance",)
    g = r.sub(top, (), "guidance") or {}
    r.table(g, p, {"breathing", "grounding"})
    b = r.sub(g, p, "breathing") or {}
    bp: Path_ = (*p, "breathing")
    r.table(b, bp, {"inhale_s", "hold_in_s", "exhale_s", "hold_out_s"})
    d = BreathingPattern()
    breathing = BreathingPattern(
        inhale_s=r.number(b, bp, "inhale_s", d.inhale_s, positive=True, hi=60.0),
        hold_in_s=r.number(b, bp, "hold_in_s", d.hold_in_s, lo=0.0, hi=60.0),
        exhale_s=r.number(b, bp, "exhale_s", d.exhale_s, positive=True, hi=60.0),
        hold_out_s=r.number(b, bp, "hold_out_s", d.hold_out_s, lo=0.0, hi=60.0),
    )
    menu: tuple[GroundingTechnique, ...] = DEFAULT_GROUNDING
    if "grounding" in g:
        raw = g["grounding"]
        gp: Path_ = (*p, "grounding")
        valid = ", ".join(t.value for t in GroundingTechnique)
        if not isinstance(raw, list) or not raw:
            raise r.error(gp, f"must be a non-empty list in order of preference from: {valid}")
        items: list[GroundingTechnique] = []
        for item in raw:
            try:
                tech = GroundingTechnique(item)
            except ValueError:
                raise r.error(gp, f"unknown technique {item!r} (choose from: {valid})") from None
            if tech in items:
                raise r.error(gp, f"technique {item!r} is listed twice")
            items.append(tech)
        menu = tuple(items)
    return GuidancePrefs(breathing=breathing, grounding=menu)


def load_protocol(path: str | Path) -> ExposureProtocol:
    """Read and validate a protocol file; ConfigError names the file, line and field."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: protocol file not found") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: protocol file is not UTF-8 text ({exc.reason})") from exc
    except OSError as exc:
        raise ConfigError(f"{p}: protocol file cannot be read ({exc.strerror})") from exc
    return parse_protocol(text, source=str(p))
