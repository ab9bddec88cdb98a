"""Lab Streaming Layer outlets (the optional extra biofeedback[lsl], which ./dev installs).

Skipped where pylsl or its native liblsl is missing, a failure in CI (tests.support.require).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from biofeedback.exposure.messages import Role, SessionEvent, SessionState
from tests.recording.helpers import START_T, steps
from tests.support import require_module

# pylsl's x86_64 wheel (manylinux_2_35) carries liblsl; elsewhere pip takes its pure-Python wheel,
# which raises RuntimeError on import, and no Debian package provides liblsl.
LSL_HOW = (
    "install the extra biofeedback[lsl] (.venv/bin/python -m pip install -e '.[lsl]'; ./dev does "
    "it on a new .venv); its liblsl comes only in pylsl's x86_64 glibc>=2.35 wheel, elsewhere "
    "set PYLSL_LIB to a liblsl.so"
)

LSL_CFG = """
[ports]
IPv6 = disable
[multicast]
ResolveScope = machine
ListenAddress = 127.0.0.1
[lab]
KnownPeers = {127.0.0.1}
"""


def test_outlets_stream_beats_arousal_and_markers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "lsl_api.cfg"
    cfg.write_text(LSL_CFG)
    monkeypatch.setenv("LSLAPICFG", str(cfg))  # loopback only, read when liblsl first needs it
    pylsl = require_module("pylsl", LSL_HOW, errors=(ImportError, RuntimeError))
    from biofeedback.recording.lsl import LslOutlet

    ups = [u for s in steps(30, seed=4) for u in s.updates][:10]
    ev = SessionEvent(
        1,
        START_T + 5,
        "transition",
        Role.SYSTEM,
        SessionState.EXPOSING,
        SessionState.PAUSED,
        "arousal",
        {"arousal": 71.5},
    )
    with LslOutlet("lsl-test", time_offset=-START_T + 1000.0) as out:
        inlets = {}
        for kind in ("cardiac", "arousal", "markers"):
            (info,) = pylsl.resolve_byprop("source_id", f"biofeedback-lsl-test-{kind}", 1, 10.0)
            inlets[kind] = pylsl.StreamInlet(info)
            inlets[kind].open_stream(10.0)
        assert inlets["cardiac"].info().channel_count() == 3
        for u in ups:
            out.update(u)
        out.events([ev])
        got = [inlets["cardiac"].pull_sample(timeout=10.0) for _ in ups]
        ar = [inlets["arousal"].pull_sample(timeout=10.0) for _ in ups]
        marker, mts = inlets["markers"].pull_sample(timeout=10.0)
        for inlet in inlets.values():
            inlet.close_stream()
    for (sample, ts), u in zip(got, ups, strict=True):
        assert u.beat is not None
        assert sample[0] == u.beat.rr_ms
        assert ts == pytest.approx(u.t - START_T + 1000.0)
    assert [s[0] for s, _ in ar] == [u.arousal.value for u in ups]
    assert all(math.isnan(s[2]) or s[2] > 0 for s, _ in ar)
    m = json.loads(marker[0])
    assert (m["kind"], m["to"], m["values"]) == ("transition", "paused", {"arousal": 71.5})
    assert mts == pytest.approx(1005.0)


def test_missing_pylsl_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from biofeedback.errors import RecordingError
    from biofeedback.recording.lsl import LslOutlet

    monkeypatch.setitem(sys.modules, "pylsl", None)  # as if the extra were not installed
    with pytest.raises(RecordingError, match=r"pip install 'biofeedback\[lsl\]'"):
        LslOutlet("x")
