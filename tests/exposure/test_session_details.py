"""Details of the session's behaviour that mutation testing found untested (docs/testing.md).

Each test names what it pins; together with the stateful test, the threshold edges, the
transition rows and the golden event log they leave no unexplained surviving mutant in
biofeedback/exposure/session.py.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from biofeedback.errors import CommandError
from biofeedback.exposure import (
    ChooseGrounding,
    GroundingTechnique,
    GuidancePrefs,
    Pause,
)
from biofeedback.exposure.messages import ReadyToContinue
from tests.exposure.helpers import C, T, exposing, protocol

SESSION_LOG = "biofeedback.exposure.session"


def test_a_technique_not_on_the_clients_menu_is_refused() -> None:
    menu = (GroundingTechnique.PACED_BREATHING, GroundingTechnique.SENSORY_54321)
    s = exposing(replace(protocol(), guidance=GuidancePrefs(grounding=menu)))
    before = s.snapshot()
    with pytest.raises(
        CommandError, match=r"is not on this client's menu \(paced_breathing, sensory"
    ):
        s.handle(ChooseGrounding(5.0, C, GroundingTechnique.SELF_COMPASSION))
    assert s.snapshot() == before
    s.handle(ChooseGrounding(5.0, C, GroundingTechnique.SENSORY_54321))
    assert s.guidance is not None
    assert s.guidance.technique is GroundingTechnique.SENSORY_54321


def test_requests_that_change_nothing_are_logged_not_recorded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A repeated pause or ready request adds no event (docs/session.md); the debug log still
    # says it came, for whoever reads the service log.
    caplog.set_level(logging.DEBUG, logger=SESSION_LOG)
    s = exposing()
    s.handle(Pause(3.0, C))
    caplog.clear()
    assert s.handle(Pause(4.0, C)) == []
    s.handle(ReadyToContinue(5.0, C))
    assert s.handle(ReadyToContinue(6.0, C)) == []
    messages = [r.getMessage() for r in caplog.records if r.name == SESSION_LOG]
    assert "session c-1: repeated client pause in paused, no event" in messages
    assert "session c-1: repeated ready request, no event" in messages
    assert not [r for r in caplog.records if r.levelno > logging.DEBUG]


def test_every_event_is_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=SESSION_LOG)
    s = exposing()
    events = s.handle(Pause(3.0, T))
    logged = [r.getMessage() for r in caplog.records if r.name == SESSION_LOG]
    assert f"session c-1 event {events[-1]}" in logged
