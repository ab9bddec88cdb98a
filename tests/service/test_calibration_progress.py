"""The session payload says how far the calibration is (issue 12: the therapist saw no progress):
its length and when the running one began, from the strap's first beat, not from start-up."""

from __future__ import annotations

from biofeedback.exposure import Recalibrate, Role, SessionState
from biofeedback.service import payloads
from biofeedback.web import views
from tests.service.test_recalibrate_core import OLD, core, strap


def test_the_first_calibration_runs_from_the_first_beat() -> None:
    c = core(baseline=None)
    snap = c.snapshot
    assert snap.state is SessionState.CALIBRATING
    assert (snap.calibration_s, snap.calibration_started_t) == (120.0, None)  # no beat yet
    items = strap(200.0)
    first = items[0]
    c.feed(first)  # type: ignore[arg-type]
    view = views.session_view(payloads.session_snapshot("c-1", c.snapshot))
    assert view["calibration_started_t"] == first.t  # type: ignore[attr-defined]
    assert view["calibration_s"] == 120.0
    for item in items[1:]:
        c.feed(item)  # type: ignore[arg-type]
        if c.snapshot.state is not SessionState.CALIBRATING:
            break
    assert c.snapshot.state is SessionState.READY
    assert c.snapshot.calibration_started_t is None  # none running


def test_a_recalibration_runs_from_the_command() -> None:
    c = core(OLD)
    for item in strap(30.0):
        c.feed(item)  # type: ignore[arg-type]
    t = c.last_t
    c.feed(Recalibrate(t, Role.THERAPIST, "calm now"))
    snap = c.snapshot
    assert snap.recalibrating
    assert (snap.calibration_started_t, snap.calibration_s) == (t, 120.0)
