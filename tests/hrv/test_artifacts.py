"""The rolling artifact detector: labels, replacement values and robustness on odd buffers."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from biofeedback.signal import SignalPipeline
from biofeedback.signal.artifacts import detect, interpolate
from tests.hrv.test_bad_input import anything, assert_sane, times


def test_premature_beat_is_labelled_and_interpolated() -> None:
    rng = np.random.default_rng(0)
    rr = (800_000 + rng.integers(-15_000, 15_000, 64)).tolist()
    rr[30] = 480_000  # premature
    rr[31] = 1_120_000  # compensatory pause
    labels = detect(rr)
    assert labels[30] is not None
    flagged = [i for i, lab in enumerate(labels) if lab is not None]
    assert set(flagged) <= {29, 30, 31, 32}
    v = interpolate(rr, labels, 30)
    assert 770_000 <= v <= 830_000


@pytest.mark.parametrize(
    "rr",
    [
        [800_000] * 64,
        [250_000] * 16,
        [250_000, 2_500_000] * 32,
        list(range(250_000, 250_064)),
        [800_000] * 63 + [2_500_000],
    ],
)
def test_degenerate_buffers_do_not_raise_or_warn(rr: list[int]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        labels = detect(rr)
    assert len(labels) == len(rr)
    for i, lab in enumerate(labels):
        if lab is not None:
            assert 250_000 <= interpolate(rr, labels, i) <= 2_500_000


def test_interpolate_edges() -> None:
    assert interpolate([1, 2, 3], [None, "ectopic", None], 1) == 2
    assert interpolate([5, 9], ["missed", None], 0) == 9
    assert interpolate([5, 9], [None, "extra"], 1) == 5
    assert interpolate([5, 9], ["extra", "extra"], 0) == 5


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(times, anything), min_size=20, max_size=90))
def test_random_inputs_with_correction_never_raise(items: list[tuple[float, float]]) -> None:
    p = SignalPipeline()
    for t, v in items:
        assert_sane(p.push_rr(t, v))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(min_value=250, max_value=2500), min_size=20, max_size=90))
def test_random_plausible_beats_with_correction(rr: list[float]) -> None:
    p = SignalPipeline()
    t = 0.0
    for v in rr:
        t += v / 1000.0
        u = p.push_rr(t, v)
        assert_sane(u)
        for b in u.revised:
            assert 250.0 <= b.rr_ms <= 2500.0
