"""`[session] movement_pauses` at the edges, from docs/session.md "Movement".

With `movement_pauses = false` "a sample taken while moving starts no dwell above `upper` and ends a
running one; a value below `lower` while moving still counts towards recovery"; with the default
(`true`) "nothing changes". The times below are written from those sentences and the protocol's
thresholds (upper 70, lower 40, dwell_s 5, recovery_s 10), not read from the session.
"""

from __future__ import annotations

from biofeedback.exposure import ArousalSample, ExposureSession, SessionState
from tests.exposure.helpers import exposing, now, protocol, transitions

S = SessionState
NO_MOVEMENT_PAUSES = "\n[session]\nmovement_pauses = false\n"
UPPER, LOWER, DWELL_S, RECOVERY_S = 70.0, 40.0, 5.0, 10.0


def sample(s: ExposureSession, t: float, value: float, *, moving: bool) -> list[tuple[str, str]]:
    return transitions(s.handle(ArousalSample(t, value, 0.5, moving)))


def grounding_after_an_arousal_pause(extra: str) -> tuple[ExposureSession, float]:
    """Exposing, then still arousal at upper from t=3 until the dwell pauses it: (session, t)."""
    s = exposing(protocol(extra))
    t = 3.0
    while now(s) is S.EXPOSING:
        sample(s, t, 90.0, moving=False)
        t += 1.0
    assert now(s) is S.GROUNDING
    return s, t


def test_a_moving_sample_ends_a_running_dwell_which_restarts_at_the_next_still_one() -> None:
    s = exposing(protocol(NO_MOVEMENT_PAUSES))
    for t in (3.0, 4.0, 5.0, 6.0):  # still, at upper: a dwell runs from 3 (held 3 s at 6)
        assert sample(s, t, UPPER, moving=False) == []
    assert sample(s, 7.0, UPPER, moving=True) == []  # ends it
    for t in (8.0, 9.0, 10.0, 11.0, 12.0):  # a new run from 8: held 4 s at 12
        assert sample(s, t, UPPER, moving=False) == [], t
    # 13 - 8 = dwell_s exactly: paused (without the moving sample, it would have paused at 8)
    assert sample(s, 13.0, UPPER, moving=False) == [("exposing", "paused"), ("paused", "grounding")]


def test_moving_calm_values_count_towards_recovery() -> None:
    s, t0 = grounding_after_an_arousal_pause(NO_MOVEMENT_PAUSES)
    # below lower, moving, one a second from t0: recovery_s held exactly at t0 + 10
    for k in range(int(RECOVERY_S)):
        assert sample(s, t0 + k, LOWER - 10.0, moving=True) == [], k
    assert sample(s, t0 + RECOVERY_S, LOWER - 10.0, moving=True)[:1] == [("grounding", "recovered")]


def test_a_moving_value_at_lower_still_is_not_below_it() -> None:
    s, t0 = grounding_after_an_arousal_pause(NO_MOVEMENT_PAUSES)
    for k in range(int(RECOVERY_S) + 5):
        assert sample(s, t0 + k, LOWER, moving=True) == [], k
    assert now(s) is S.GROUNDING


def test_moving_high_values_withdraw_no_offer_while_still_ones_do() -> None:
    s, t0 = grounding_after_an_arousal_pause(NO_MOVEMENT_PAUSES)
    t = t0
    while now(s) is S.GROUNDING:
        sample(s, t, 20.0, moving=False)
        t += 1.0
    held = now(s)
    assert held in (S.RECOVERED, S.RESUME_OFFERED), held
    for k in range(3 * int(DWELL_S)):  # moving, far above upper, three dwells long
        assert sample(s, t + k, 95.0, moving=True) == [], k
    assert now(s) is held
    t += 3 * DWELL_S
    for k in range(int(DWELL_S)):  # still: a run from t, not yet dwell_s
        assert sample(s, t + k, 95.0, moving=False) == [], k
    assert sample(s, t + DWELL_S, 95.0, moving=False)[:1] == [(held.value, "paused")]


def test_by_default_moving_at_exactly_upper_for_exactly_dwell_pauses() -> None:
    s = exposing(protocol())
    for t in (3.0, 4.0, 5.0, 6.0, 7.0):
        assert sample(s, t, UPPER, moving=True) == [], t
    assert sample(s, 3.0 + DWELL_S, UPPER, moving=True) == [
        ("exposing", "paused"),
        ("paused", "grounding"),
    ]


def test_by_default_a_moving_sample_does_not_end_a_running_dwell() -> None:
    s = exposing(protocol())
    for t in (3.0, 4.0, 5.0):
        assert sample(s, t, 90.0, moving=False) == []
    for t in (6.0, 7.0):
        assert sample(s, t, 90.0, moving=True) == []
    assert sample(s, 8.0, 90.0, moving=False)[:1] == [("exposing", "paused")]
