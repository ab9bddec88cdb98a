"""The session's event log, word for word, for a fixed set of scenarios (a reviewed golden file).

Events are what the therapist's dashboard shows and what the recording keeps for research: their
kind, actor, states, reason text and values are an interface, and so are the messages of refused
commands (what a user reads to act on). `tests/exposure/data/event_log.jsonl` holds, for every
scenario below, each input with the events it caused (and the snapshot fields it changed) or the
message it was refused with, then the final snapshot and summary. Any change to them fails here
until the file is rewritten with

    .venv/bin/python -m tests.exposure.test_event_log

and the diff is reviewed (`git diff tests/exposure/data/event_log.jsonl`, one line per input):
the file is the
approved behaviour, read by a person, not computed by the code under test at test time.

Scenarios: every row of the transition table fired by each actor it names (the set-ups of
test_transition_rows.py), each followed by the same tail of inputs from every role; and a few
stories the rows do not reach (two recoveries in a step, declines, recalibrations, late and broken
time stamps, refusals of every kind).
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from biofeedback.errors import BiofeedbackError
from biofeedback.exposure import (
    AdjustThresholds,
    ArousalSample,
    CalibrationDone,
    CheckinCadence,
    ChooseGrounding,
    CompleteStep,
    Consent,
    Decline,
    EndSession,
    ExposureSession,
    GroundingTechnique,
    OfferStep,
    Pause,
    Role,
    SessionEvent,
    SessionInput,
    SessionOptions,
    SignalLost,
    SignalRestored,
    SudsAnswer,
    Tick,
)
from biofeedback.exposure.messages import ReadyToContinue, Recalibrate
from tests.exposure import test_transition_rows as rows
from tests.exposure.helpers import C, T, protocol
from tests.support import REPO_ROOT

GOLDEN = REPO_ROOT / "tests" / "exposure" / "data" / "event_log.jsonl"
SYS = Role.SYSTEM


def plain(x: Any) -> Any:
    """JSON-ready form: enums as values, dataclasses as dicts, tuples as lists, floats exact."""
    if isinstance(x, enum.Enum):
        return x.value
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return {f.name: plain(getattr(x, f.name)) for f in dataclasses.fields(x)}
    if isinstance(x, dict):
        return {str(k): plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [plain(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return repr(x)
    return x


def _event(e: SessionEvent) -> dict[str, Any]:
    out: dict[str, Any] = plain(e)
    return out


def flat(x: Any, prefix: str = "") -> dict[str, Any]:
    """{"a.b.0": leaf} for a plain() structure (so a change names the field that changed)."""
    if isinstance(x, dict):
        out: dict[str, Any] = {}
        for k, v in x.items():
            out.update(flat(v, f"{prefix}{k}."))
        return out
    if isinstance(x, list) and x:
        out = {}
        for i, v in enumerate(x):
            out.update(flat(v, f"{prefix}{i}."))
        return out
    return {prefix[:-1]: x}


class Recorder(ExposureSession):
    """An ExposureSession that keeps every input with its events and the snapshot fields it
    changed, or with its refusal."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.record: list[dict[str, Any]] = []
        self._seen = self._fields()

    def _fields(self) -> dict[str, Any]:
        snap = flat(plain(self.snapshot()))
        del snap["t"], snap["seq"]  # the events' t and seq say these
        return snap

    def handle(self, inp: SessionInput) -> list[SessionEvent]:
        entry: dict[str, Any] = {"input": type(inp).__name__, **plain(inp)}
        try:
            events = super().handle(inp)
        except BiofeedbackError as exc:
            entry["refused"] = f"{type(exc).__name__}: {exc}"
            self.record.append(entry)
            raise
        entry["events"] = [_event(e) for e in events]
        fields = self._fields()
        changed = {k: v for k, v in fields.items() if self._seen.get(k, "absent") != v}
        changed.update({k: "absent" for k in self._seen.keys() - fields.keys()})
        entry["snapshot"] = changed
        self._seen = fields
        self.record.append(entry)
        return events


@contextmanager
def recording() -> Iterator[None]:
    """The transition-row set-ups build Recorders instead of plain sessions."""
    saved = rows.ExposureSession
    rows.ExposureSession = Recorder  # type: ignore[misc]
    try:
        yield
    finally:
        rows.ExposureSession = saved  # type: ignore[misc]


def send(s: ExposureSession, *inputs: SessionInput) -> None:
    """Each input in turn; refusals are recorded and do not stop the story."""
    for inp in inputs:
        try:
            s.handle(inp)
        except BiofeedbackError:
            continue


def samples(t0: float, t1: float, value: float | None) -> list[SessionInput]:
    n = int(t1 - t0)
    return [ArousalSample(t0 + k, value) for k in range(n)]


def tail(s: ExposureSession) -> None:
    """The same inputs after every row: each role pausing, offering, consenting, completing..."""
    t = math.floor(s.t) + 1.0
    send(
        s,
        SudsAnswer(t, C, 30),
        Pause(t + 0.5, C, note="a moment"),
        Pause(t + 1.0, T),
        ReadyToContinue(t + 1.5, C),
        OfferStep(t + 2.0, T),
        ArousalSample(t + 2.5, 50.0),
        Consent(t + 3.0, C),
        *samples(t + 4.0, t + 11.0, 85.0),
        *samples(t + 11.0, t + 23.0, 25.0),
        AdjustThresholds(t + 23.0, T, upper=80, lower=30, dwell_s=3, recovery_s=4),
        OfferStep(t + 23.5, T),
        Consent(t + 24.0, C),
        *samples(t + 24.0, t + 30.0, 50.0),
        CompleteStep(t + 30.0, T),
        OfferStep(t + 30.5, T),
        Decline(t + 31.0, C),
        Recalibrate(t + 31.5, T, reason="calm now"),
        CalibrationDone(t + 32.0, ok=True, detail="tail"),
        EndSession(t + 33.0, T),
        EndSession(t + 34.0, T),
        Pause(t + 35.0, C),
    )


def _summary_and_snapshot(s: ExposureSession) -> dict[str, Any]:
    return {"snapshot": plain(s.snapshot()), "summary": plain(s.summary())}


# ---- stories the transition rows do not reach --------------------------------------------------


def _session(auto_offer: bool = False, auto_complete: bool = False, **th: float) -> Recorder:
    p = protocol(**th)
    p = replace(p, options=SessionOptions(auto_offer, auto_complete))
    return Recorder(p, t=0.0, client_id="c-1", needs_calibration=True)


def story_two_recoveries_and_declines() -> Recorder:
    s = _session(auto_offer=True)
    send(
        s,
        ArousalSample(0.0, 50.0),
        CalibrationDone(1.0, ok=True, detail="resting HR 62"),
        ArousalSample(1.5, 50.0),
        Decline(2.0, C),
        OfferStep(3.0, T),
        SudsAnswer(3.5, C, 40),
        Consent(4.0, C),
        *samples(5.0, 11.0, 80.0),
        *samples(11.0, 23.0, 20.0),
        Decline(23.5, C),
        Pause(24.0, C),
        Pause(24.5, C),
        OfferStep(25.0, T),
        Consent(25.5, C),
        *samples(26.0, 32.0, 90.0),
        *samples(32.0, 44.0, 10.0),
        Consent(44.5, C),
        CompleteStep(50.0, T),
        *samples(50.0, 52.0, 20.0),
        Consent(52.5, C),
        ChooseGrounding(53.0, C, GroundingTechnique.SELF_COMPASSION),
        CompleteStep(54.0, T),
        EndSession(55.0, T),
    )
    return s


def story_signal_and_calibration() -> Recorder:
    s = _session(auto_complete=True, max_step_s=20)
    s = replace_checkins(s, every_s=5.0)
    send(
        s,
        OfferStep(0.5, T),
        CalibrationDone(1.0, ok=False, detail="too many corrected beats"),
        CalibrationDone(1.5, ok=False),
        ArousalSample(2.0, None),
        OfferStep(2.5, T),
        Consent(3.0, C),
        ArousalSample(3.0, 50.0),
        Consent(3.5, C),
        *samples(4.0, 12.0, 50.0),
        SignalLost(12.0, "strap out of range"),
        ArousalSample(12.5, 50.0),
        SignalRestored(13.0, gap_s=1.0),
        SignalRestored(13.5),
        OfferStep(14.0, T),
        Consent(14.5, C),
        ArousalSample(15.0, 50.0),
        Consent(15.5, C),
        *samples(16.0, 40.0, 50.0),
        Tick(60.0),
        CalibrationDone(61.0, ok=True),
        OfferStep(62.0, T, 1),
        ArousalSample(62.0, 50.0),
        Consent(62.5, C),
        *samples(63.0, 130.0, 50.0),
    )
    return s


def replace_checkins(s: Recorder, every_s: float) -> Recorder:
    p = replace(s.protocol, checkins=CheckinCadence(every_s=every_s))
    return Recorder(p, t=0.0, client_id="c-2", needs_calibration=True)


def story_refusals() -> Recorder:
    s = _session()
    send(
        s,
        ArousalSample(0.0, 50.0),
        Consent(0.5, C),
        Decline(0.5, C),
        CompleteStep(0.5, T),
        OfferStep(0.5, T),
        Recalibrate(0.6, T, reason="x" * 501),
        CalibrationDone(1.0, ok=True),
        ChooseGrounding(1.0, C, GroundingTechnique.SENSORY_54321),  # nothing paused: guidance only
        OfferStep(1.0, T, 7),
        OfferStep(1.0, T, True),  # type: ignore[arg-type]
        OfferStep(1.0, C),
        AdjustThresholds(1.0, T),
        AdjustThresholds(1.0, T, upper="high"),  # type: ignore[arg-type]
        AdjustThresholds(1.0, T, lower=90),
        AdjustThresholds(1.0, T, dwell_s=-1),
        AdjustThresholds(1.0, T, upper=150, dwell_s=-1),  # two problems, both named
        SudsAnswer(1.0, C, 101),
        SudsAnswer(1.0, C, 2.5),  # type: ignore[arg-type]
        ChooseGrounding(1.0, C, "yoga"),  # type: ignore[arg-type]
        Consent(math.nan, C),
        Consent("soon", C),  # type: ignore[arg-type]
        Consent(1.0, "nurse"),  # type: ignore[arg-type]
        Pause(1.0, SYS),
        OfferStep(2.0, T),
        Recalibrate(2.5, T),
        *samples(3.0, 7.0, 75.0),  # at/above upper 3..6: 4 s of the 5 s dwell
        Consent(8.0, C),  # refused: the dwell is reached, the offer is being withdrawn
        ArousalSample(8.0, 50.0),
        OfferStep(8.0, T),
        Consent(8.0, C),
        OfferStep(3.5, T),
        Recalibrate(3.6, T),
        Pause(math.nan, C),
        Pause(1.0, T, note="late"),
        ChooseGrounding(4.0, C, GroundingTechnique.COGNITIVE_CHECK),
        Recalibrate(4.5, T),
        ArousalSample(5.0, 20.0, confidence=0.0),
        ArousalSample(6.0, 150.0),
        ArousalSample(7.0, -5.0),
        ArousalSample(3.0, 50.0),
        EndSession(8.0, T),
        OfferStep(8.5, T),
        Recalibrate(8.6, T),
        EndSession(9.0, T),
        OfferStep(10.0, T),
        Recalibrate(10.5, T),
        SudsAnswer(11.0, C, 10),
    )
    return s


def story_recalibrations() -> Recorder:
    s = _session(auto_offer=True)
    send(
        s,
        ArousalSample(0.0, 50.0),
        Recalibrate(0.5, T, reason="restart"),
        CalibrationDone(1.0, ok=True),
        Pause(1.5, C),
        Recalibrate(2.0, T, reason="while ready"),
        ArousalSample(2.5, 50.0),
        CalibrationDone(3.0, ok=False, detail="noisy"),
        Recalibrate(3.5, T),
        CalibrationDone(4.0, ok=True),
        ArousalSample(4.5, 20.0),
        OfferStep(5.0, T),
        Consent(5.5, C),
        Pause(6.0, T),
        Recalibrate(6.5, T),
        ArousalSample(7.0, 20.0),
        ChooseGrounding(7.5, C, GroundingTechnique.PACED_BREATHING),
        *samples(8.0, 20.0, 20.0),
        Recalibrate(20.0, T),
        CalibrationDone(21.0, ok=True),
        CompleteStep(22.0, T),
    )
    return s


def story_recalibration_cancelled() -> Recorder:
    s = _session(auto_offer=True)
    send(
        s,
        ArousalSample(0.0, 50.0),
        Recalibrate(0.5, T, reason="restart"),
        ChooseGrounding(1.0, C, GroundingTechnique.PACED_BREATHING),  # cancels it, calibrating
        CalibrationDone(2.0, ok=True),
        ArousalSample(2.5, 50.0),
        Consent(3.0, C),
        ArousalSample(4.0, 50.0),
        CompleteStep(4.5, T),  # the next offer waits for calm
        Recalibrate(5.0, T, reason="between steps"),
        ArousalSample(5.5, 20.0),  # calm: the system's offer is held back for the calibration
        ArousalSample(5.75, 20.0),  # still calm: held back once, not again
        ChooseGrounding(6.0, C, GroundingTechnique.SENSORY_54321),  # cancels it: offer released
        EndSession(7.0, T),
    )
    return s


def story_late_start() -> Recorder:
    """A session that starts at t=100 (clock times are session seconds, not from zero)."""
    p = replace(protocol(), options=SessionOptions(auto_offer=False, auto_complete=False))
    s = Recorder(p, t=100.0, client_id="c-3", needs_calibration=False)
    send(
        s,
        ArousalSample(100.0, 50.0),
        OfferStep(101.0, T),
        Consent(102.0, C),
        *samples(103.0, 110.0, 50.0),
        Pause(110.0, T),
        Recalibrate(111.0, T, reason="quiet minute"),
        OfferStep(112.0, T),  # refused: the fresh calibration runs
        ArousalSample(112.0, 50.0),
        CalibrationDone(113.0, ok=True),
        OfferStep(114.0, T),
        Consent(115.0, C),
        *samples(116.0, 120.0, 50.0),
        CompleteStep(120.0, T),
        OfferStep(121.0, T, 0),  # the same step again
        ArousalSample(121.0, 50.0),
        Consent(122.0, C),  # restarted
    )
    return s


def story_calibration_outcomes() -> Recorder:
    """Notes on a calibration that passed, fresh calibrations passing and failing."""
    s = _session()
    send(
        s,
        ArousalSample(0.0, 50.0),
        CalibrationDone(1.0, ok=False),  # no reason given, still calibrating
        OfferStep(2.0, T),  # explicitly, uncalibrated
        Consent(3.0, C),
        ArousalSample(3.0, 50.0),
        Consent(3.5, C),
        Pause(4.0, T),
        Recalibrate(4.5, T, reason="try again"),  # no baseline yet
        ArousalSample(5.0, 50.0),
        CalibrationDone(6.0, ok=True, notes=("HR trended down", "", "HR high for this client")),
        Recalibrate(7.0, T),
        ArousalSample(8.0, 50.0),
        CalibrationDone(9.0, ok=False, detail="too many corrected beats"),
        Recalibrate(10.0, T),
        ArousalSample(11.0, 50.0),
        CalibrationDone(12.0, ok=False),  # fresh, failed, no reason: the baseline stays
        CalibrationDone(13.0, ok=False, detail="late report"),  # none running: just logged
        CalibrationDone(14.0, ok=True, notes=("signal marginal",)),  # none running: updated
        Recalibrate(16.0, T, reason="y" * 500),  # at most 500 characters: accepted
        Recalibrate(30.0, T),  # refused: no sample for 19 s, monitoring is lost
    )
    return s


def story_deferred_offers() -> Recorder:
    """The system's offers held back while a fresh calibration runs, then made (or not)."""
    s = _session(auto_offer=True)
    send(
        s,
        ArousalSample(0.0, 50.0),
        CalibrationDone(1.0, ok=True),
        ArousalSample(1.5, 50.0),
        Consent(2.0, C),
        ArousalSample(3.0, 50.0),
        SignalLost(4.0, "strap off"),  # a system pause: the resume will be offered by the system
        SignalRestored(5.0, gap_s=1.0),
        ArousalSample(5.0, 20.0),
        Recalibrate(5.5, T, reason="while paused"),
        *samples(6.0, 17.0, 20.0),  # recovered at 15: the resume offer is held back
        CalibrationDone(17.0, ok=True),  # released: resume offered
        Pause(18.0, C),
        *samples(18.0, 20.0, 50.0),
        ArousalSample(20.0, 20.0),
        OfferStep(21.0, T),
        Consent(22.0, C),
        *samples(23.0, 40.0, 20.0),
        SignalLost(40.0),
        SignalRestored(41.0),
        ArousalSample(41.0, 20.0),
        Recalibrate(41.5, T),
        *samples(42.0, 53.0, 20.0),  # recovered at 51, resume held back ...
        Pause(53.0, T),  # ... and the session moves on: nothing is released,
        *samples(53.0, 65.0, 20.0),  # not even once recovered again (at 63) after that pause
        CalibrationDone(65.0, ok=True),
        OfferStep(68.0, T),
        ArousalSample(68.0, 20.0),
        Consent(69.0, C),
        ArousalSample(70.0, 50.0),
        CompleteStep(70.0, T),  # 50 is not calm: the next offer waits
        Recalibrate(71.0, T),
        ArousalSample(72.0, 20.0),  # calm, but held back for the calibration
        ArousalSample(73.0, 50.0),
        CalibrationDone(74.0, ok=True),  # released, not calm now: waits again
        ArousalSample(75.0, 50.0),
        ArousalSample(76.0, 20.0),  # calm: offered
    )
    return s


STORIES: dict[str, Callable[[], Recorder]] = {
    "two recoveries and declines": story_two_recoveries_and_declines,
    "signal, calibration, step length, auto-complete": story_signal_and_calibration,
    "refusals": story_refusals,
    "recalibrations": story_recalibrations,
    "recalibration cancelled": story_recalibration_cancelled,
    "late start": story_late_start,
    "calibration outcomes": story_calibration_outcomes,
    "deferred offers": story_deferred_offers,
}


def current() -> list[tuple[str, dict[str, Any]]]:
    """Every scenario's log, as the code now produces it: (scenario, entry) in order."""
    out: list[tuple[str, dict[str, Any]]] = []

    def add(name: str, s: Recorder) -> None:
        out.extend((name, entry) for entry in s.record)
        out.append((name, {"final": _summary_and_snapshot(s)}))

    with recording():
        for case in rows.CASES:
            tr, role = case.values
            s, _ = rows._scenario(tr, role)(role)  # type: ignore[arg-type]
            assert isinstance(s, Recorder)
            tail(s)
            add(f"row {case.id}", s)
    for name, story in STORIES.items():
        add(f"story {name}", story())
    return out


def _lines(log: list[tuple[str, dict[str, Any]]]) -> list[str]:
    return [json.dumps([name, entry], sort_keys=True) for name, entry in log]


def test_event_log_is_the_approved_one() -> None:
    assert GOLDEN.is_file(), (
        f"{GOLDEN} missing: run .venv/bin/python -m tests.exposure.test_event_log"
    )
    approved = GOLDEN.read_text().splitlines()
    now = _lines(current())
    for n, (want, got) in enumerate(zip(approved, now, strict=False), start=1):
        assert got == want, (
            f"line {n} of {GOLDEN.relative_to(REPO_ROOT)} differs (scenario "
            f"{json.loads(want)[0]!r}):\n approved: {want[:600]}\n now:      {got[:600]}\n"
            "if the change is intended, rewrite the file with "
            "`.venv/bin/python -m tests.exposure.test_event_log` and review the diff"
        )
    assert len(now) == len(approved), "scenarios added or removed: rewrite the golden file"


if __name__ == "__main__":
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    GOLDEN.write_text("\n".join(_lines(current())) + "\n")
    print(f"wrote {GOLDEN} ({GOLDEN.stat().st_size} bytes)", file=sys.stderr)
