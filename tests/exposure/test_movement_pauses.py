"""`[session] movement_pauses`: whether arousal while the client moves may pause a step."""

from __future__ import annotations

import pytest

from biofeedback.errors import ConfigError
from biofeedback.exposure.messages import ArousalSample, SessionState
from tests.exposure.helpers import exposing, protocol


def _feed_moving(s, t0: float, t1: float, value: float, moving: bool) -> None:  # type: ignore[no-untyped-def]
    t = t0
    while t < t1:
        s.handle(ArousalSample(t, value, 0.5, moving))
        t += 1.0


def test_default_is_to_pause_on_arousal_while_moving() -> None:
    p = protocol()
    assert p.options.movement_pauses is True
    s = exposing(p)
    _feed_moving(s, 3.0, 3.0 + 5 + 2, 90.0, True)  # dwell_s = 5
    assert s.state is SessionState.GROUNDING  # the arousal pause starts grounding


def test_movement_pauses_false_keeps_exposing_while_moving() -> None:
    p = protocol("\n[session]\nmovement_pauses = false\n")
    assert p.options.movement_pauses is False
    s = exposing(p)
    _feed_moving(s, 3.0, 60.0, 90.0, True)
    assert s.state is SessionState.EXPOSING
    # the same arousal once the client is still pauses after the usual dwell
    _feed_moving(s, 60.0, 60.0 + 4, 90.0, False)
    assert s.state is SessionState.EXPOSING
    _feed_moving(s, 64.0, 67.0, 90.0, False)
    assert s.state is SessionState.GROUNDING  # the arousal pause starts grounding


def test_a_still_sample_in_between_does_not_join_two_moving_runs() -> None:
    p = protocol("\n[session]\nmovement_pauses = false\n")
    s = exposing(p)
    for k in range(20):  # alternate moving and still: the dwell restarts at each still sample
        s.handle(ArousalSample(3.0 + k, 90.0, 0.5, k % 3 != 0))
    assert s.state is SessionState.EXPOSING


def test_movement_pauses_must_be_a_boolean() -> None:
    with pytest.raises(ConfigError, match="movement_pauses"):
        protocol('\n[session]\nmovement_pauses = "no"\n')
