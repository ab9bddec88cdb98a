"""Malformed inputs get a clear CommandError/ParseError and change nothing; nothing else escapes."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from biofeedback.errors import CommandError, ParseError
from biofeedback.exposure import (
    AdjustThresholds,
    ArousalSample,
    CalibrationDone,
    ChooseGrounding,
    CompleteStep,
    Consent,
    Decline,
    EndSession,
    OfferStep,
    Pause,
    SignalLost,
    SignalRestored,
    SudsAnswer,
    Tick,
)
from tests.exposure.helpers import exposing

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from(["client", "therapist", "system", "paced_breathing", "yoga"]),
    st.lists(st.integers(), max_size=2),
)
INPUTS: list[tuple[type, tuple[str, ...]]] = [
    (Pause, ("t", "role", "note")),
    (Consent, ("t", "role")),
    (Decline, ("t", "role")),
    (OfferStep, ("t", "role", "step")),
    (CompleteStep, ("t", "role")),
    (EndSession, ("t", "role")),
    (AdjustThresholds, ("t", "role", "upper", "lower", "dwell_s", "recovery_s", "max_step_s")),
    (SudsAnswer, ("t", "role", "value")),
    (ChooseGrounding, ("t", "role", "technique")),
    (ArousalSample, ("t", "value", "confidence")),
    (Tick, ("t",)),
    (SignalLost, ("t", "detail")),
    (SignalRestored, ("t", "gap_s")),
    (CalibrationDone, ("t", "ok", "detail")),
]


@settings(max_examples=400, deadline=None)
@given(
    which=st.sampled_from(INPUTS),
    values=st.lists(junk, min_size=7, max_size=7),
    keep_time=st.booleans(),
)
def test_junk_inputs_fail_cleanly(
    which: tuple[type, tuple[str, ...]], values: list[Any], keep_time: bool
) -> None:
    cls, names = which
    kwargs = dict(zip(names, values, strict=False))
    if keep_time:
        kwargs["t"] = 30.0
    inp = cls(**kwargs)
    s = exposing()
    before = s.snapshot()
    try:
        events = s.handle(inp)
    except (CommandError, ParseError) as exc:
        message = str(exc)
    else:
        after = s.snapshot()
        assert after.t >= before.t
        assert math.isfinite(after.t)
        for e in events:
            assert math.isfinite(e.t)
        return
    assert message
    assert s.snapshot() == before


def test_not_an_input_at_all() -> None:
    s = exposing()
    with pytest.raises(ParseError, match="not a session input"):
        s.handle("pause please")  # type: ignore[arg-type]


def test_calibration_ok_must_be_a_bool() -> None:
    s = exposing()
    with pytest.raises(ParseError, match="true or false"):
        s.handle(CalibrationDone(5.0, "no"))  # type: ignore[arg-type]
