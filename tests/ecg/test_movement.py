"""Movement from chest acceleration (biofeedback/signal/movement.py) and what it does to the
arousal estimate: the reason "movement" and a lower confidence, the value unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from biofeedback.signal import Baseline, SignalPipeline
from biofeedback.signal.arousal import MOVEMENT_CONFIDENCE, MOVEMENT_REASON
from biofeedback.signal.movement import (
    HOLD_S,
    MovementLevel,
    MovementMeter,
    movement_index,
)
from biofeedback.signal.synthetic import rr_series
from tests.ecg.synthetic_acc import breathing_trace, chest_acc

FS = 50.0


def test_breathing_at_rest_is_still_and_bursts_are_moving() -> None:
    t, trace, _ = breathing_trace(6.0, 120.0, FS)
    acc = chest_acc(t, trace, tilt_mg=15.0, bursts=((60.0, 5.0),))
    m = movement_index(t, acc, FS)
    quiet = [s for s in m if s.t < 58.0]
    burst = [s for s in m if 61.5 <= s.t <= 65.0]
    assert all(s.level is MovementLevel.STILL for s in quiet)
    assert max(s.index_mg for s in quiet) < 6.0  # deep breathing and 2 mg noise
    assert all(s.level is MovementLevel.MOVING for s in burst)
    after = [s for s in m if s.t > 67.0]
    assert all(s.level is MovementLevel.STILL for s in after)
    assert all(s.moving for s in after if s.t <= 65.0 + HOLD_S - 1.0)  # held
    assert not any(s.moving for s in after if s.t > 66.0 + HOLD_S)


@pytest.mark.parametrize("rate", [25.0, 50.0, 100.0, 200.0])
def test_one_index_per_second_at_every_h10_rate(rate: float) -> None:
    t, trace, _ = breathing_trace(10.0, 30.0, rate)
    m = movement_index(t, chest_acc(t, trace), rate)
    assert len(m) == pytest.approx(29, abs=1)
    assert np.allclose(np.diff([s.t for s in m]), 1.0, atol=1.5 / rate)


def test_light_movement() -> None:
    t, trace, _ = breathing_trace(10.0, 30.0, FS)
    rng = np.random.default_rng(2)
    acc = chest_acc(t, trace) + 25.0 * rng.standard_normal((t.size, 3))
    m = movement_index(t, acc, FS)
    assert {s.level for s in m} == {MovementLevel.LIGHT}
    assert not any(s.moving for s in m)


def test_chunking_gives_the_same_index() -> None:
    t, trace, _ = breathing_trace(10.0, 40.0, FS)
    acc = chest_acc(t, trace, bursts=((20.0, 3.0),))
    whole = movement_index(t, acc, FS)
    meter = MovementMeter(FS)
    parts = []
    for i in range(0, t.size, 37):
        parts += meter.push(t[i : i + 37], acc[i : i + 37])
    assert [s.t for s in parts] == [s.t for s in whole]
    assert np.allclose([s.index_mg for s in parts], [s.index_mg for s in whole])


def test_bad_input_and_gaps() -> None:
    meter = MovementMeter(FS)
    with pytest.raises(ValueError, match="n x 3"):
        meter.push(np.arange(4.0), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="pair up"):
        meter.push(np.arange(4.0), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="sampling rate"):
        MovementMeter(float("inf"))
    t, trace, _ = breathing_trace(10.0, 20.0, FS)
    acc = chest_acc(t, trace)
    acc[400] = np.nan
    m = meter.push(t, acc)
    # no window (1 s plus the 0.25 s the high-pass reaches either side) spans the gap
    assert not any(s.t - 1.25 <= t[400] <= s.t + 0.25 for s in m)


def pipeline_with_baseline() -> tuple[SignalPipeline, np.ndarray, np.ndarray]:
    t, rr = rr_series(200.0, hr_bpm=70.0, seed=4)
    base = Baseline("c-1", 0.0, 120.0, 140, 0.0, 60.0, 4.0, 3.8, 0.2, None)
    return SignalPipeline(baseline=base), t, rr


def test_arousal_while_moving_says_movement_with_lower_confidence() -> None:
    p, t, rr = pipeline_with_baseline()
    q, _, _ = pipeline_with_baseline()
    for ti, ri in zip(t.tolist(), rr.tolist(), strict=True):
        if 100.0 + t[0] <= ti <= 130.0 + t[0]:
            p.set_movement(ti, True)  # the meter's report, once a second in the service
        a = p.push_rr(ti, ri).arousal
        b = q.push_rr(ti, ri).arousal
        assert a.value == b.value  # movement never changes the value: the protocol decides
        moving = 100.0 + t[0] <= ti <= 130.0 + t[0]
        if moving and b.value is not None:
            assert a.reason is not None
            assert a.reason.startswith(MOVEMENT_REASON)
            assert a.confidence == pytest.approx(b.confidence * MOVEMENT_CONFIDENCE)
        elif ti > 136.0 + t[0]:  # reports stop: stale after 5 s
            assert a == b


def test_a_still_report_ends_movement_at_once() -> None:
    p, t, rr = pipeline_with_baseline()
    for ti, ri in zip(t[:150].tolist(), rr[:150].tolist(), strict=True):
        p.push_rr(ti, ri)
    p.set_movement(float(t[150]), True)
    assert (p.push_rr(float(t[150]), float(rr[150])).arousal.reason or "").startswith("movement")
    p.set_movement(float(t[151]), False)
    assert not (p.push_rr(float(t[151]), float(rr[151])).arousal.reason or "").startswith(
        "movement"
    )
