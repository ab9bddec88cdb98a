"""The paper's ectopic boundaries in the live detector, exactly on them and 1 µs past them.

Written for the mutation run's survivors of the per-beat helpers (`_ectopic`, `_before_pause`,
`_ls_class`, `_quantiles`, `_smooth`, `_between`; docs/mutation/artifacts-per-beat-windows.md).
Each case is a rhythm a strap can send (a flat 800 ms rhythm: its |dRR| are 0, so Th1 sits at
the 30 ms floor and an edge falls on a whole number of µs), checked on what the user gets: the
per-beat detector's judgements (the live stream) equal `reference_stream`, the module
docstring's rules recomputed at every judgement, and `judge_segment` (the offline form) labels
and values the same beats.
"""

from __future__ import annotations

from biofeedback.signal.artifacts import C1, C2, FLOOR_US, LABELS, UNJUDGED, judge_segment
from tests.hrv.test_artifacts_details import detector_stream, reference_stream

N = 80  # beats of the series
J = 40  # the beat on the edge


def _flat_with(before: int, beat: int, after: int) -> list[int]:
    """A flat 800 ms rhythm with beats J-1, J, J+1 set (µs)."""
    x = [800_000] * N
    x[J - 1], x[J], x[J + 1] = before, beat, after
    return x


def _artifacts(x: list[int]) -> list[tuple[int, int, str]]:
    """(beat, value, label) of every artifact, in both forms, checked against the reference."""
    stream = detector_stream(x)
    assert stream == reference_stream(x)
    live = [(k, v, lab) for _, k, v, lab in stream if lab is not None]
    seg = judge_segment(x)
    offline = [
        (k, int(seg.values[k]), LABELS[int(c)])
        for k, c in enumerate(seg.labels.tolist())
        if c not in (0, UNJUDGED)
    ]
    assert offline == live
    return live


def test_a_shortening_exactly_on_the_ectopic_boundary_is_not_ectopic() -> None:
    """S11 = dRR(j) / Th1 < -1: ectopic only when S12, the smaller of the neighbours' steps, is
    past -0.13 S11 + 0.17 (strictly). Beat 40 is 31 ms shorter than beat 39; the steps into
    beat 39 and out of beat 40 are both 9.13 ms: exactly on the boundary."""
    assert C1 * (31_000 / 30_000) + C2 == 9_130 / FLOOR_US
    assert _artifacts(_flat_with(809_130, 778_130, 787_260)) == []
    # both neighbours' steps 1 µs past it (9.131 ms): beat 40 is ectopic, and gets the value
    # between its normal neighbours
    assert _artifacts(_flat_with(809_131, 778_131, 787_262)) == [(40, 798_196, "ectopic")]


def test_a_pause_exactly_on_the_ectopic_boundary_has_no_premature_beat() -> None:
    """The pause rule: beat 40 lengthens by 31 ms (S11 = 31 / 30 > 1); the premature beat before
    it and the step after it shorten by 9.13 ms, so S12 is exactly -0.13 S11 - 0.17, which is
    not below it: no ectopic pattern, no artifact. 1 µs more and beat 39 is the premature beat
    of the pause (`_before_pause`), labelled ectopic."""
    assert -C1 * (31_000 / 30_000) - C2 == -9_130 / FLOOR_US
    assert _artifacts(_flat_with(790_870, 821_870, 812_740)) == []
    assert _artifacts(_flat_with(790_869, 821_869, 812_738)) == [(39, 810_934, "ectopic")]
