"""The paced-breathing schedule: every screen derives the same phases from start and pattern."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from biofeedback.exposure import (
    BreathingPattern,
    GroundingTechnique,
    make_guidance,
    phase_at,
    phases,
)

G = make_guidance(GroundingTechnique.PACED_BREATHING, 100.0, BreathingPattern())


def test_default_pattern_is_six_breaths_per_minute() -> None:
    assert BreathingPattern().rate_bpm == pytest.approx(6.0)
    assert G.breathing == BreathingPattern(4.0, 0.0, 6.0, 0.0)
    assert "in for 4" in G.prompt
    assert "out for 6" in G.prompt


def test_phases_from_the_start() -> None:
    assert phases(G, 100.0, 120.0) == [
        (100.0, "inhale", 4.0),
        (104.0, "exhale", 6.0),
        (110.0, "inhale", 4.0),
        (114.0, "exhale", 6.0),
    ]


def test_phase_in_progress_is_included_and_nothing_before_start() -> None:
    assert phases(G, 106.0, 111.0) == [(104.0, "exhale", 6.0), (110.0, "inhale", 4.0)]
    assert phases(G, 50.0, 101.0) == [(100.0, "inhale", 4.0)]
    assert phases(G, 50.0, 100.0) == []


def test_holds_are_phases_and_zero_holds_are_not() -> None:
    g = make_guidance(GroundingTechnique.PACED_BREATHING, 0.0, BreathingPattern(4, 2, 6, 1))
    names = [p[1] for p in phases(g, 0.0, 13.0)]
    assert names == ["inhale", "hold_in", "exhale", "hold_out"]
    assert [p[0] for p in phases(g, 0.0, 13.0)] == [0.0, 4.0, 6.0, 12.0]


def test_other_techniques_have_no_schedule() -> None:
    for tech in GroundingTechnique:
        g = make_guidance(tech, 0.0, BreathingPattern())
        assert g.prompt
        if tech is not GroundingTechnique.PACED_BREATHING:
            assert g.breathing is None
            assert phases(g, 0.0, 60.0) == []
    assert phases(None, 0.0, 60.0) == []


def test_phase_at() -> None:
    assert phase_at(G, 101.0) == ("inhale", 100.0, 0.25)
    assert phase_at(G, 107.0) == ("exhale", 104.0, 0.5)
    assert phase_at(G, 99.0) is None


def test_limit_bounds_the_output() -> None:
    assert len(phases(G, 100.0, 1e9, limit=50)) == 50


def test_late_cycles_do_not_drift() -> None:
    # After a day of breathing the phases are still on the exact multiples of the period.
    t = 100.0 + 8640 * 10.0
    assert phases(G, t, t + 1.0) == [(t, "inhale", 4.0)]


@settings(max_examples=200, deadline=None)
@given(
    pattern=st.tuples(st.floats(0.5, 10), st.floats(0, 5), st.floats(0.5, 10), st.floats(0, 5)).map(
        lambda p: BreathingPattern(*p)
    ),
    start=st.floats(0, 1e6),
    offset=st.floats(0, 1000),
    span=st.floats(0.01, 120),
)
def test_two_screens_agree_and_phases_tile_time(
    pattern: BreathingPattern, start: float, offset: float, span: float
) -> None:
    g = make_guidance(GroundingTechnique.PACED_BREATHING, start, pattern)
    a = start + offset
    whole = phases(g, a, a + span)
    # a screen that joins halfway sees the same phases from then on
    half = phases(g, a + span / 2, a + span)
    assert half
    assert half[0] in whole
    assert whole[whole.index(half[0]) :] == half
    # consecutive phases touch: no gaps, no overlaps
    for (t0, _, d0), (t1, _, _) in itertools.pairwise(whole):
        assert t1 == pytest.approx(t0 + d0, abs=1e-6)
    assert whole[0][0] <= a + 1e-6 < whole[0][0] + whole[0][2] + 1e-6
