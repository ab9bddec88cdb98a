"""The hub's flat chart history against the deque of dicts it replaced (hypothesis), and its
refusals."""

from __future__ import annotations

from collections import deque
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from biofeedback.web.history import FIELDS, PointHistory

values = st.one_of(st.none(), st.floats(0.0, 3000.0, allow_nan=False))
points = st.builds(
    lambda t, fields: {"t": t, **fields},
    st.floats(1.7e9, 1.8e9, allow_nan=False),
    st.dictionaries(st.sampled_from(FIELDS), values, max_size=4),
)
# ("append", point) or ("pop", None)
ops = st.lists(
    st.one_of(st.tuples(st.just("append"), points), st.tuples(st.just("pop"), st.none())),
    max_size=700,
)


@settings(max_examples=150, deadline=None)
@given(ops)
def test_the_flat_history_behaves_as_a_deque_of_dicts(steps: list[tuple[str, Any]]) -> None:
    model: deque[dict[str, Any]] = deque()
    history = PointHistory()
    for op, point in steps:
        if op == "append":
            model.append(point)
            history.append(point)
        elif model:
            model.popleft()
            history.popleft()
        else:
            with pytest.raises(IndexError):
                history.popleft()
        assert len(history) == len(model)
    assert list(history) == list(model)
    assert list(reversed(history)) == list(reversed(model))
    if model:
        assert history[0] == model[0]
        assert history[-1] == model[-1]
        assert history.first_t() == model[0]["t"]
        lo = model[len(model) // 2]["t"]
        # the arousal points from the newest back to the first one older than `lo`
        expect = []
        for p in reversed(model):
            if p["t"] < lo:
                break
            if "arousal" in p:
                expect.append((p["t"], p["arousal"]))
        assert history.arousal_since(lo) == expect[::-1]


def test_a_gap_is_kept_apart_from_a_missing_field() -> None:
    history = PointHistory()
    history.append({"t": 1.0, "hr": None, "rmssd": None, "arousal": None})
    history.append({"t": 2.0, "hr": 70.0, "rmssd": 40.0, "quality": None})
    assert list(history) == [
        {"t": 1.0, "hr": None, "rmssd": None, "arousal": None},
        {"t": 2.0, "hr": 70.0, "rmssd": 40.0, "quality": None},
    ]
    assert history.arousal_since(0.0) == [(1.0, None)]


def test_refusals() -> None:
    history = PointHistory()
    with pytest.raises(IndexError):
        history.first_t()
    with pytest.raises(IndexError):
        history[0]
    with pytest.raises(ValueError, match="'confidence' is not one of"):
        history.append({"t": 1.0, "arousal": 40.0, "confidence": 0.9})
    assert len(history) == 0


def test_dropping_many_from_the_front_keeps_the_rest() -> None:
    history = PointHistory()
    for k in range(1000):
        history.append({"t": float(k), "arousal": float(k % 100)})
        if k >= 300:
            history.popleft()  # a window of 300 sliding along: the storage is compacted
    assert len(history) == 300
    assert [p["t"] for p in history] == [float(k) for k in range(700, 1000)]
    assert history[0] == {"t": 700.0, "arousal": 0.0}
    assert len(history._masks) < 1000  # compacted, not grown with every point
