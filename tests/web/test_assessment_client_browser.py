"""The breathing-rate check (resonance assessment) on the client's screen, in a real Chromium,
against a real SessionCore and SessionRunner over a real Mosquitto (the `room` of
test_client_screen.py): asked like a step with "Yes" and "Not now" drawn alike and both on screen
at every size; only "Yes" starts it; the circle paces at the block's rate; "Stop" (never disabled)
stops it at once keeping what was measured; the client's own pace wins over the measured one."""

from __future__ import annotations

import time
from typing import Any

import pytest

from biofeedback.exposure.assessment import AssessmentState
from biofeedback.exposure.messages import (
    AssessmentConsent,
    AssessmentDecline,
    AssessmentOffer,
    AssessmentStop,
    CalibrationDone,
    ChooseBreathingRate,
    Consent,
    OfferStep,
    Role,
    SessionState,
)
from tests.web.invariants import CONTROLS, assert_no_axe_violations, assert_pressable_at_sizes
from tests.web.test_client_screen import (
    CALM,
    Room,
    answers_equal_and_on_screen,
    poll,
    press,
    room,
    shots,
    shows,
)

__all__ = ["room", "shots"]  # the fixtures, used by name

pytestmark = [pytest.mark.browser, pytest.mark.mosquitto]

T = Role.THERAPIST


async def answers_alike_and_on_screen(page: Any) -> None:
    """Asked like a step: "Yes" and "Not now" drawn alike, both on screen at every size."""
    await answers_equal_and_on_screen(page, "b-a-consent", "b-a-decline", "Not now")


async def test_consent_pacing_stop_and_own_pace(room: Room) -> None:
    svc = room.svc
    page = await room.client_page()
    svc.feed(CalibrationDone(time.time(), True, "baseline ready"))
    svc.arousal(CALM)
    await shows(page, SessionState.READY)
    host = svc.runner.core.assessment

    # offered: asked like a step; the two answers alike, both on screen at every size
    svc.therapist(AssessmentOffer(time.time(), T, "offer-1"))
    await poll(page, "!document.getElementById('a-consent').hidden")
    text = await page.locator("#a-consent-text").inner_text()
    assert "stop at any moment" in text
    await answers_alike_and_on_screen(page)
    await assert_pressable_at_sizes(page, CONTROLS, what="breathing-rate check offered")
    await assert_no_axe_violations(page, what="breathing-rate check offered")
    assert host.session.state is AssessmentState.OFFERED  # nothing runs before the answer

    # "Not now": nothing ran; offered again, "Yes": it runs and the circle paces at 6.5/min
    await press(page, "#b-a-decline", svc, AssessmentDecline)
    assert host.session.state is AssessmentState.READY
    await poll(page, "document.getElementById('a-consent').hidden")
    svc.therapist(AssessmentOffer(time.time(), T, "offer-2"))
    await poll(page, "!document.getElementById('a-consent').hidden")
    await press(page, "#b-a-consent", svc, AssessmentConsent)
    assert host.session.state is AssessmentState.RUNNING
    await poll(page, "!document.getElementById('a-running').hidden")
    await poll(page, "!document.getElementById('pacer-wrap').hidden")
    assert "6.5 breaths a minute" in await page.locator("#a-running-text").inner_text()
    assert "6.5 breaths a minute" in await page.locator("#prompt").inner_text()
    g = svc.runner.core.snapshot.guidance
    assert g is not None
    assert g.breathing is not None
    assert g.breathing.rate_bpm == pytest.approx(6.5)
    assert await page.locator("#rate").is_hidden()  # no other pace during the check
    await assert_pressable_at_sizes(page, CONTROLS, what="breathing-rate check running")
    await assert_no_axe_violations(page, what="breathing-rate check running")

    # "Stop": at once, never refused; the page goes back to the session
    await press(page, "#b-a-stop", svc, AssessmentStop)
    assert host.session.state is AssessmentState.STOPPED
    assert host.session.result is not None
    assert not host.session.result.complete
    await poll(page, "document.getElementById('a-running').hidden")
    await poll(page, "document.getElementById('pacer-wrap').hidden")

    # the client's own pace, while the session paces them after a pause
    svc.therapist(OfferStep(time.time(), T))
    await shows(page, SessionState.STEP_OFFERED)
    await press(page, "#b-consent", svc, Consent)
    await shows(page, SessionState.EXPOSING)
    await page.click("#b-pause")
    await shows(page, SessionState.PAUSED)
    await page.click("[data-technique='paced_breathing']")  # the client chooses breathing
    await poll(page, "!document.getElementById('rate').hidden")
    await page.select_option("#rate-choice", "5")
    await poll(page, "document.getElementById('feedback').textContent.includes('5 breaths')")
    cmd = svc.commands[-1]
    assert isinstance(cmd, ChooseBreathingRate)
    assert cmd.rate_bpm == 5.0
    g = svc.runner.core.snapshot.guidance
    assert g is not None
    assert g.breathing is not None
    assert g.breathing.rate_bpm == pytest.approx(5.0)
    await assert_pressable_at_sizes(page, CONTROLS, what="own pace while paused")
    await page.close()
