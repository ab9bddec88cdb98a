"""Lab Streaming Layer outlets (optional extra `biofeedback[lsl]`, pylsl imported lazily).

Labs record LSL streams beside EEG, eye tracking or VR with their usual tools (LabRecorder): each
session offers three streams, named after the client pseudonym:

* `biofeedback-<client>-cardiac` (type `RR`, irregular rate): `rr_ms`, `raw_rr_ms`, `hr_bpm`,
  one sample per beat (rejected inputs are not sent);
* `biofeedback-<client>-arousal` (type `Arousal`, irregular rate): `arousal`, `confidence`,
  `rmssd_ms`, `quality`, one sample per pipeline update (NaN when unknown);
* `biofeedback-<client>-markers` (type `Markers`, string): one JSON object per session event
  (`kind`, `from`, `to`, `actor`, `reason`, `values`).

Timestamps are the session times mapped onto LSL's clock (`pylsl.local_clock`) by a fixed offset
taken when the outlets open: right for a real strap, whose session clock is Unix time. LSL's own
network settings (which interfaces, multicast scope) come from its config file (`LSLAPICFG`).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterable
from types import TracebackType
from typing import Any, Self

from biofeedback.errors import RecordingError
from biofeedback.exposure.messages import SessionEvent
from biofeedback.recording.schema import jsonable
from biofeedback.signal.measures import BeatUpdate

log = logging.getLogger(__name__)


def _pylsl() -> Any:
    try:
        import pylsl
    except ImportError as exc:  # includes a pylsl without its liblsl binary
        raise RecordingError(
            f"Lab Streaming Layer output needs pylsl: pip install 'biofeedback[lsl]' ({exc})"
        ) from exc
    return pylsl


def _f(v: float | None) -> float:
    return math.nan if v is None else float(v)


class LslOutlet:
    """The three LSL streams of one session; call `update` and `events` like the recorder."""

    def __init__(self, client_id: str, *, time_offset: float | None = None) -> None:
        pylsl = _pylsl()
        self._pylsl = pylsl
        self.client_id = client_id
        # session time + offset = LSL time (session clock = Unix time for a real strap)
        self.time_offset = (
            time_offset if time_offset is not None else pylsl.local_clock() - time.time()
        )
        base = f"biofeedback-{client_id}"

        def outlet(kind: str, type_: str, channels: list[str], fmt: Any, units: str) -> Any:
            info = pylsl.StreamInfo(
                f"{base}-{kind}",
                type_,
                len(channels),
                pylsl.IRREGULAR_RATE,
                fmt,
                f"{base}-{kind}",
            )
            chans = info.desc().append_child("channels")
            for name in channels:
                ch = chans.append_child("channel")
                ch.append_child_value("label", name)
                ch.append_child_value("unit", units if name != "quality" else "")
            info.desc().append_child_value("manufacturer", "biofeedback")
            return pylsl.StreamOutlet(info)

        self.cardiac = outlet(
            "cardiac", "RR", ["rr_ms", "raw_rr_ms", "hr_bpm"], pylsl.cf_double64, "ms"
        )
        self.arousal = outlet(
            "arousal",
            "Arousal",
            ["arousal", "confidence", "rmssd_ms", "quality"],
            pylsl.cf_double64,
            "",
        )
        self.markers = outlet("markers", "Markers", ["event"], pylsl.cf_string, "")
        self._closed = False
        log.info("LSL outlets open for %s", client_id)

    def update(self, u: BeatUpdate) -> None:
        """Send one pipeline update (a beat sample when there is a beat, an arousal sample)."""
        ts = u.t + self.time_offset
        b = u.beat
        if b is not None:
            self.cardiac.push_sample([b.rr_ms, b.raw_rr_ms, _f(u.hr_bpm)], ts)
        a = u.arousal
        rmssd = u.short.rmssd_ms if u.short is not None else None
        self.arousal.push_sample([_f(a.value), a.confidence, _f(rmssd), u.quality.score], ts)

    def events(self, evs: Iterable[SessionEvent]) -> None:
        """Send each session event as a JSON marker."""
        for ev in evs:
            marker = {
                "kind": ev.kind,
                "from": ev.from_state.value,
                "to": ev.to_state.value,
                "actor": ev.actor.value,
                "reason": ev.reason,
                "values": jsonable(dict(ev.values)),
            }
            self.markers.push_sample([json.dumps(marker, sort_keys=True)], ev.t + self.time_offset)

    def close(self) -> None:
        """Withdraw the streams (LSL recorders see them end)."""
        if self._closed:
            return
        self._closed = True
        self.cardiac = self.arousal = self.markers = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
