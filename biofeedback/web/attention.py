"""Who needs the therapist's attention first on the overview of a group.

Each client falls in one of four groups, in this order (docs/dashboard.md, "Overview"):

0. **paused**: the session is in a pause (paused, grounding, recovered, resume offered);
1. **arousal rising**: the arousal estimate climbed by at least `RISE_ENTER_PER_MIN` per minute over
   the last `TREND_WINDOW_S` seconds (least-squares slope) and is at or above the recovery
   threshold (`lower`; `DEFAULT_FLOOR` when the session has none), so it is drifting toward a
   pause; it leaves the group only when the slope falls below `RISE_LEAVE_PER_MIN` or the value
   below the floor, so a client near the edge does not flip back and forth;
2. **signal trouble**: the service is offline, the strap has a problem that lasts until it connects
   again (its software failed, the Bluetooth adapter is full, it cannot be reached:
   `next_action.strap_problem`), the strap lost contact or its connection, monitoring is not ok,
   or the signal quality is below `LOW_QUALITY`;
3. everyone else.

Within a group the overview keeps clients in id order, so cards move only when a client changes
group. Pure functions: time comes in as data.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping
from typing import Any

TREND_WINDOW_S = 30.0
TREND_EVERY_S = 2.0  # recomputed at most this often per client (session seconds)
MIN_TREND_SPAN_S = 10.0  # fewer seconds of data than this: no trend yet
MIN_TREND_POINTS = 4
RISE_ENTER_PER_MIN = 8.0  # arousal points (0-100 scale) per minute
RISE_LEAVE_PER_MIN = 3.0
LOW_QUALITY = 0.5
DEFAULT_FLOOR = 40.0  # when the session has no recovery threshold


class Attention(enum.IntEnum):
    """Overview groups, most urgent first (the number is the sort key)."""

    PAUSED = 0
    RISING = 1
    SIGNAL = 2
    CALM = 3


def arousal_slope_per_min(
    points: Iterable[Mapping[str, Any]], now_t: float, window_s: float = TREND_WINDOW_S
) -> float | None:
    """Least-squares slope of arousal (points per minute) over the last `window_s` seconds.

    `points` are chart points with `t` and, for arousal ones, `arousal` (None = a gap; points
    without the key are other series and are skipped), in any order. None when there is too
    little data.
    """
    return slope_per_min(((p["t"], p.get("arousal")) for p in points), now_t, window_s)


def slope_per_min(
    samples: Iterable[tuple[float, float | None]], now_t: float, window_s: float = TREND_WINDOW_S
) -> float | None:
    """`arousal_slope_per_min` over (t, arousal or None) pairs (the hub's flat history).

    One pass with sums (times taken relative to `now_t`, so they stay small): this runs for
    every client's arousal on the dashboard.
    """
    n = 0
    st = sv = stt = stv = 0.0
    earliest, latest = math.inf, -math.inf
    lo = now_t - window_s
    for t, v in samples:
        if v is None:
            continue
        if t < lo or t > now_t:
            continue
        x = t - now_t
        earliest = min(earliest, x)
        latest = max(latest, x)
        n += 1
        st += x
        sv += v
        stt += x * x
        stv += x * v
    if n < MIN_TREND_POINTS or latest - earliest < MIN_TREND_SPAN_S:
        return None
    var = stt - st * st / n
    if var <= 1e-12:
        return None
    return (stv - st * sv / n) / var * 60.0


def still_rising(
    was_rising: bool,
    slope_per_min: float | None,
    value: float | None = None,
    floor: float | None = None,
) -> bool:
    """The rising flag with hysteresis: enter at RISE_ENTER, leave below RISE_LEAVE.

    `value` is the newest arousal and `floor` the recovery threshold: below it a rise is not a
    concern yet (from 20 to 30 is still calm).
    """
    if slope_per_min is None or value is None:
        return False
    if value < (DEFAULT_FLOOR if floor is None else floor):
        return False
    if was_rising:
        return slope_per_min >= RISE_LEAVE_PER_MIN
    return slope_per_min >= RISE_ENTER_PER_MIN


def signal_trouble(summary: Mapping[str, Any]) -> str | None:
    """Why the signal is in trouble, in words, or None."""
    if summary.get("online") is False:
        return "Service offline"
    problem = summary.get("strap_problem")
    if isinstance(problem, str) and problem:
        return problem  # "Strap software failed", "Bluetooth adapter full" (next_action.py)
    if summary.get("device_connected") is False:
        return "Strap not connected"
    if summary.get("contact") is False:
        return "No skin contact"
    if summary.get("monitoring_ok") is False:
        return "Monitoring lost"
    quality = summary.get("quality")
    if isinstance(quality, int | float) and quality < LOW_QUALITY:
        return f"Signal {round(quality * 100)} %"
    return None


def attention(summary: Mapping[str, Any], rising: bool) -> tuple[Attention, str]:
    """(group, why in a few words) for one overview row."""
    if summary.get("paused"):
        return Attention.PAUSED, "Paused"
    if rising:
        return Attention.RISING, "Arousal rising"
    trouble = signal_trouble(summary)
    if trouble is not None:
        return Attention.SIGNAL, trouble
    return Attention.CALM, ""
