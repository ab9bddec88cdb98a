"""A client's chart history (the last 5 minutes of points) in flat arrays, not small dicts.

With 300 clients the hub holds ~216,000 chart points. As dicts they cost ~200 bytes each plus
their floats, and every full run of Python's cyclic garbage collector walked all of them (the
deques that held them are containers it must traverse): 35 ms with the loop stopped, measured
on this machine with 300 five-minute histories. Here a point is five doubles and a byte saying
which of its fields it has, in `array`s the collector never looks into; dicts are made again
only when a page asks for the history (its snapshot) or a test looks at a point.

A point has `t` and any of `hr`, `rmssd`, `quality`, `arousal`; a field may be None (a gap), which
is kept apart from a field the point does not have (a metrics point has no `arousal`).
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterator, Mapping
from typing import Any

from biofeedback.web.views import JsonDict

#: the fields a chart point may have besides `t`, in storage order
FIELDS = ("hr", "rmssd", "quality", "arousal")
_WIDTH = 1 + len(FIELDS)
_AROUSAL = 1 << FIELDS.index("arousal")
_NONE = math.nan  # a field that is there but None; real values are never NaN (views.num)


class PointHistory:
    """Chart points, oldest first: append at the end, drop from the front."""

    __slots__ = ("_masks", "_start", "_values")

    def __init__(self) -> None:
        self._values = array("d")  # _WIDTH doubles a point: t, then FIELDS
        self._masks = array("B")  # which FIELDS the point has (bit i: FIELDS[i])
        self._start = 0  # index of the oldest point kept (the ones before it are dropped)

    def __len__(self) -> int:
        return len(self._masks) - self._start

    def append(self, point: Mapping[str, Any]) -> None:
        """Add a point (`t` plus any of FIELDS; ValueError for any other field)."""
        mask = 0
        row = [float(point["t"]), _NONE, _NONE, _NONE, _NONE]
        for key, value in point.items():
            if key == "t":
                continue
            try:
                i = FIELDS.index(key)
            except ValueError:
                raise ValueError(f"chart point field {key!r} is not one of t, {FIELDS}") from None
            mask |= 1 << i
            if value is not None:
                row[1 + i] = float(value)
        self._values.extend(row)
        self._masks.append(mask)

    def first_t(self) -> float:
        """Time of the oldest point (IndexError when empty)."""
        if not len(self):
            raise IndexError("the history is empty")
        return self._values[self._start * _WIDTH]

    def popleft(self) -> None:
        """Drop the oldest point."""
        if not len(self):
            raise IndexError("the history is empty")
        self._start += 1
        # compact now and then: memory stays bounded, and the copy is amortised over many points
        if self._start >= 256 and self._start * 2 >= len(self._masks):
            del self._values[: self._start * _WIDTH]
            del self._masks[: self._start]
            self._start = 0

    def _point(self, i: int) -> JsonDict:
        values, mask = self._values, self._masks[i]
        base = i * _WIDTH
        point: JsonDict = {"t": values[base]}
        for j, key in enumerate(FIELDS):
            if mask >> j & 1:
                v = values[base + 1 + j]
                point[key] = None if v != v else v  # NaN: None
        return point

    def __getitem__(self, index: int) -> JsonDict:
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError("chart point index out of range")
        return self._point(self._start + index)

    def __iter__(self) -> Iterator[JsonDict]:
        for i in range(self._start, len(self._masks)):
            yield self._point(i)

    def __reversed__(self) -> Iterator[JsonDict]:
        for i in range(len(self._masks) - 1, self._start - 1, -1):
            yield self._point(i)

    def arousal_since(self, lo: float) -> list[tuple[float, float | None]]:
        """(t, arousal or None) of the arousal points at or after `lo`, oldest first (the newest
        points are looked at first, so this costs the window, not the history)."""
        values, masks = self._values, self._masks
        out: list[tuple[float, float | None]] = []
        for i in range(len(masks) - 1, self._start - 1, -1):
            base = i * _WIDTH
            t = values[base]
            if t < lo:
                break
            if masks[i] & _AROUSAL:
                v = values[base + 4]
                out.append((t, None if v != v else v))
        out.reverse()
        return out
