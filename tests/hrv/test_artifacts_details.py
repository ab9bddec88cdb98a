"""Details of the native detector that the mutation run (docs/testing.md) found untested.

Also a fixed, fast form of the per-beat = vectorised check: the hypothesis test in
test_native_artifacts.py explores more, this one runs the same cases every time (and is the one
the artifacts mutants are tested against: tools/mutate.sh MUTATE_TESTS=artifacts).
"""

from __future__ import annotations

import numpy as np
import pytest

from biofeedback.signal.artifacts import MIN_LAG
from tests.hrv.test_native_artifacts import assert_same, calm


def walk(n: int, seed: int, step: int, share: float, bigeminy: bool) -> np.ndarray:
    """The hypothesis strategy's random walk with odd beats, for a fixed seed."""
    rng = np.random.default_rng(seed)
    x = 800_000 + np.cumsum(rng.normal(0, step, n))
    odd = rng.random(n) < share
    x[odd] *= rng.uniform(0.4, 2.1, int(odd.sum()))
    if bigeminy:
        a = int(rng.integers(0, n))
        x[a : a + 60 : 2] *= 0.6
    return np.clip(np.rint(x), 250_000, 2_500_000).astype(np.int64)


FIXED = [
    (400, 1, 3_000, 0.02, False, MIN_LAG),
    (400, 2, 15_000, 0.1, True, MIN_LAG),
    (300, 3, 40_000, 0.3, False, 8),
    (350, 4, 15_000, 0.02, True, 12),
    (250, 5, 3_000, 0.1, True, 7),
    (500, 6, 40_000, 0.0, False, MIN_LAG),
    (120, 7, 15_000, 0.3, True, MIN_LAG),
    (60, 8, 3_000, 0.1, False, MIN_LAG),
    (1500, 9, 15_000, 0.3, True, MIN_LAG),
    (1200, 10, 3_000, 0.05, True, 9),
]


@pytest.mark.parametrize(("n", "seed", "step", "share", "bigeminy", "lag"), FIXED)
def test_per_beat_and_vectorised_forms_agree_on_fixed_series(
    n: int, seed: int, step: int, share: float, bigeminy: bool, lag: int
) -> None:
    assert_same(walk(n, seed, step, share, bigeminy), lag)


def test_frequent_premature_beats_agree_in_both_forms() -> None:
    x = calm(1500, seed=3)
    at = np.arange(100, len(x) - 1, 9)
    x[at + 1] += x[at] * 38 // 100
    x[at] = x[at] * 62 // 100
    assert_same(x)
