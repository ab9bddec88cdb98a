"""Measured progress per step and per session, and the trend across one client's sessions."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import replace

import pytest

from biofeedback.errors import BiofeedbackError, ParseError
from biofeedback.exposure import (
    CompleteStep,
    Consent,
    EndSession,
    OfferStep,
    Pause,
    SessionSummary,
    SudsAnswer,
    summary_from_dict,
    trend,
)
from tests.exposure.helpers import C, T, exposing, feed


def _session(peak: float, calm_after: float, start: float = 0.0) -> SessionSummary:
    """Step 0 with one arousal pause (peak `peak`) recovering after `calm_after` s, then done."""
    s = exposing(t=start)
    s.handle(SudsAnswer(start + 2.5, C, 60))
    feed(s, start + 3, start + 9, peak)  # pause at +8 (dwell 5 s)
    feed(s, start + 9, start + 9 + calm_after, 55.0)  # between lower and upper: not yet calm
    feed(s, start + 9 + calm_after, start + 40 + calm_after, 20.0)  # recovers after 10 s below
    t = start + 40 + calm_after
    s.handle(OfferStep(t, T))
    s.handle(Consent(t + 1, C))
    feed(s, t + 1, t + 11, 50.0)
    s.handle(CompleteStep(t + 11, T))
    s.handle(SudsAnswer(t + 12, C, 30))
    s.handle(EndSession(t + 13, T))
    s.handle(EndSession(t + 14, T))
    return s.summary()


def test_per_step_progress() -> None:
    summary = _session(peak=85.0, calm_after=5.0)
    p = summary.steps[0]
    assert p.started
    assert p.completed
    assert p.pauses == 1
    assert p.pause_reasons == ("arousal",)
    assert p.peak_arousal == 85.0
    # paused at 8; below lower from 14; recovered at 24
    (took,) = p.recovery_times_s
    assert took == pytest.approx(16.0)
    # exposed 2..8 (6 s) and 46..56 (10 s)
    assert p.exposed_s == pytest.approx(16.0)
    assert (p.suds_before, p.suds_after) == (60, 30)
    assert summary.steps[1].started is False


def test_session_summary() -> None:
    summary = _session(peak=85.0, calm_after=5.0)
    assert summary.client_id == "c-1"
    assert summary.final_state == "ended"
    assert summary.total_pauses == 1
    assert summary.pauses_by_reason == (("arousal", 1),)
    assert summary.mean_recovery_s == pytest.approx(16.0)
    assert summary.completed_steps == 1
    assert [r.value for r in summary.suds] == [60, 30]
    assert summary.total_exposed_s == pytest.approx(16.0)


def test_running_segment_counts_in_progress() -> None:
    s = exposing()
    feed(s, 3, 13, 50.0)
    assert s.progress()[0].exposed_s == pytest.approx(10.0)
    s.handle(Pause(13.0, C))
    feed(s, 13, 20, 50.0)
    assert s.progress()[0].exposed_s == pytest.approx(11.0)


def test_trend_sees_faster_recovery_and_falling_peaks() -> None:
    sessions = [
        _session(peak=90.0, calm_after=20.0, start=0.0),
        _session(peak=85.0, calm_after=10.0, start=1000.0),
        _session(peak=78.0, calm_after=2.0, start=2000.0),
    ]
    tr = trend(list(reversed(sessions)))  # any order
    assert tr.client_id == "c-1"
    assert tr.sessions == 3
    step = tr.steps[0]
    assert step.title == "One"
    assert [p.peak_arousal for p in step.points] == [90.0, 85.0, 78.0]
    assert step.peak_falling is True
    assert step.recovery_faster is True
    assert step.peak_slope == pytest.approx(-6.0)
    assert step.recovery_slope == pytest.approx(-9.0)


def test_trend_sees_worsening_too() -> None:
    tr = trend([_session(70.0, 2.0, 0.0), _session(95.0, 30.0, 500.0)])
    assert tr.steps[0].peak_falling is False
    assert tr.steps[0].recovery_faster is False


def test_trend_with_one_session_or_missing_values() -> None:
    tr = trend([_session(80.0, 5.0)])
    assert tr.steps[0].peak_falling is None
    assert tr.steps[0].recovery_faster is None


def test_trend_needs_one_client() -> None:
    a = _session(80.0, 5.0)
    with pytest.raises(BiofeedbackError, match="per client"):
        trend([a, replace(a, client_id="c-2")])
    with pytest.raises(BiofeedbackError, match="at least one"):
        trend([])


def test_summary_json_round_trip() -> None:
    a = _session(80.0, 5.0)
    text = json.dumps(dataclasses.asdict(a))
    b = summary_from_dict(json.loads(text))
    assert b == a
    assert trend([a, replace(b, started_t=5000.0)]).sessions == 2


@pytest.mark.parametrize(
    ("path", "bad"),
    [
        (("client_id",), 3),
        (("started_t",), "yesterday"),
        (("steps", 0, "title"), None),
        (("steps", 0, "recovery_times_s"), ["x"]),
        (("steps", 0, "started"), "yes"),
        (("suds", 0, "value"), 4.5),
        (("pauses_by_reason",), [["arousal"]]),
        (("mean_recovery_s",), float("nan")),
    ],
)
def test_summary_from_dict_names_the_bad_field(path: tuple[object, ...], bad: object) -> None:
    d = json.loads(json.dumps(dataclasses.asdict(_session(80.0, 5.0))))
    target = d
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = bad
    with pytest.raises(ParseError, match="session summary"):
        summary_from_dict(d)
