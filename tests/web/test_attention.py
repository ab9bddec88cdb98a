"""Who needs attention first on the overview (biofeedback/web/attention.py), and the hub's rows."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from biofeedback.web import attention
from biofeedback.web.attention import Attention, arousal_slope_per_min, still_rising
from biofeedback.web.hub import Hub


def line(slope_per_min: float, start: float = 50.0, n: int = 16, dt: float = 2.0) -> list[dict]:
    return [{"t": i * dt, "arousal": start + slope_per_min * i * dt / 60.0} for i in range(n)]


@given(
    st.floats(-100, 100, allow_nan=False),
    st.floats(0, 100, allow_nan=False),
    st.integers(4, 40),
)
def test_slope_of_a_straight_line_is_its_slope(slope: float, start: float, n: int) -> None:
    pts = line(slope, start, n, dt=1.0)
    got = arousal_slope_per_min(pts, now_t=pts[-1]["t"])
    if pts[-1]["t"] - pts[0]["t"] < attention.MIN_TREND_SPAN_S:
        assert got is None
    else:
        assert got is not None
        assert abs(got - slope) < 1e-6 * max(1.0, abs(slope))


def test_slope_ignores_old_points_gaps_and_other_series() -> None:
    pts = [{"t": 0.0, "arousal": 100.0}]  # older than the window: left out
    pts += line(12.0, start=50.0, n=16, dt=2.0)
    for p in pts[1:]:
        p["t"] += 40.0
    pts.insert(5, {"t": 48.5, "arousal": None})  # a gap
    pts.insert(7, {"t": 50.5, "hr": 80.0})  # a metrics point
    got = arousal_slope_per_min(pts, now_t=pts[-1]["t"])
    assert got is not None
    assert abs(got - 12.0) < 1e-9


def test_too_little_data_has_no_trend() -> None:
    assert arousal_slope_per_min(line(30.0, n=3), now_t=4.0) is None
    assert arousal_slope_per_min(line(30.0, n=5, dt=1.0), now_t=4.0) is None  # 4 s span
    assert arousal_slope_per_min([], now_t=0.0) is None


def test_rising_has_hysteresis_and_a_floor() -> None:
    assert not still_rising(False, 7.9, 60.0, 45.0)
    assert still_rising(False, 8.0, 60.0, 45.0)
    assert still_rising(True, 3.0, 60.0, 45.0)  # stays while the slope is above the leave mark
    assert not still_rising(True, 2.9, 60.0, 45.0)
    assert not still_rising(False, 30.0, 30.0, 45.0)  # below the recovery threshold: calm yet
    assert not still_rising(True, 30.0, 44.0, 45.0)
    assert still_rising(False, 30.0, 40.0, None)  # no thresholds: the default floor
    assert not still_rising(False, 30.0, 39.0, None)
    assert not still_rising(True, None, 60.0, 45.0)
    assert not still_rising(True, 30.0, None, 45.0)


def test_groups_in_order() -> None:
    calm = {"online": True, "quality": 0.9, "contact": True}
    assert attention.attention({**calm, "paused": True}, rising=True) == (
        Attention.PAUSED,
        "Paused",
    )
    assert attention.attention(calm, rising=True) == (Attention.RISING, "Arousal rising")
    assert attention.attention({**calm, "quality": 0.3}, False) == (Attention.SIGNAL, "Signal 30 %")
    assert attention.attention({**calm, "online": False}, False)[1] == "Service offline"
    assert attention.attention({**calm, "contact": False}, False)[1] == "No skin contact"
    assert attention.attention({**calm, "monitoring_ok": False}, False)[1] == "Monitoring lost"
    assert attention.attention({**calm, "device_connected": False}, False)[1] == (
        "Strap not connected"
    )
    assert attention.attention(calm, False) == (Attention.CALM, "")
    assert attention.attention({}, False) == (Attention.CALM, "")  # nothing known yet


def _arousal(client: str, t: float, value: float) -> bytes:
    return json.dumps({"v": 1, "t": t, "client": client, "value": value}).encode()


def test_hub_rows_carry_the_group_and_a_trail() -> None:
    hub = Hub(wall=lambda: 1000.0)
    session = {"v": 1, "t": 0.0, "state": "exposing", "thresholds": {"upper": 70, "lower": 45}}
    hub.ingest("biofeedback/v1/c-01/session", json.dumps(session).encode())
    for i in range(16):
        hub.ingest("biofeedback/v1/c-01/arousal", _arousal("c-01", 2.0 * i, 50.0 + 0.5 * i))
    row = hub.client("c-01").summary()  # type: ignore[union-attr]
    assert row["trend"] == 15.0
    assert row["rising"] is True
    assert (row["attention"], row["attention_why"]) == (1, "Arousal rising")
    paused = {**session, "state": "paused"}
    hub.ingest("biofeedback/v1/c-01/session", json.dumps(paused).encode())
    row = hub.client("c-01").summary()  # type: ignore[union-attr]
    assert (row["attention"], row["attention_why"]) == (0, "Paused")
    (over,) = hub.overview()
    assert len(over["trail"]) == 16
    assert over["trail"][0] == [0.0, 50.0]
    # a long history is thinned to at most max_trail points, newest kept in order
    (thin,) = hub.overview(trail_s=120.0, max_trail=5)
    assert 1 <= len(thin["trail"]) <= 5
    assert [p[0] for p in thin["trail"]] == sorted(p[0] for p in thin["trail"])


def _event(seq: int, t: float, kind: str = "transition") -> bytes:
    return json.dumps(
        {"v": 1, "t": t, "client": "c-01", "source": "session", "seq": seq, "kind": kind}
    ).encode()


def test_hub_timeline_drops_redelivered_events_and_orders_late_ones() -> None:
    """A bridge that drops mid-acknowledgement delivers an event twice, and sends its backlog
    after newer messages: the timeline shows each event once, in time order."""
    hub = Hub(wall=lambda: 1000.0)
    topic_name = "biofeedback/v1/c-01/event"
    for seq, t in ((1, 10.0), (2, 20.0), (2, 20.0), (4, 40.0), (3, 30.0)):
        hub.ingest(topic_name, _event(seq, t))
    state = hub.client("c-01")
    assert state is not None
    assert [e["seq"] for e in state.events] == [1, 2, 3, 4]
    # a new session starts again at seq 1: a different event, kept
    hub.ingest(topic_name, _event(1, 50.0))
    assert [(e["seq"], e["t"]) for e in state.events][-1] == (1, 50.0)


def test_slope_does_not_depend_on_the_order_of_points() -> None:
    pts = line(12.0, start=50.0, n=16, dt=2.0)
    forward = arousal_slope_per_min(pts, now_t=pts[-1]["t"])
    backward = arousal_slope_per_min(list(reversed(pts)), now_t=pts[-1]["t"])
    assert forward is not None
    assert backward is not None
    assert abs(forward - 12.0) < 1e-9
    assert abs(backward - 12.0) < 1e-9
