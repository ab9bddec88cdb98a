"""Recalibration on both screens (real Chromium, real Mosquitto): the therapist's "Recalibrate now"
sends the command with its reason, the client's screen says it is a quiet minute, and an unusual
calibration shows as a notice on the therapist's page."""

from __future__ import annotations

import time

import pytest

from biofeedback.errors import CommandError
from biofeedback.service import payloads
from biofeedback.service.topics import Topic
from biofeedback.web.hub import validate_command
from biofeedback.web.views import session_view
from tests.web.test_browser import (
    CLIENT,
    Stack,
    client_page,
    session,
    stack,
    therapist_page,
)

__all__ = ["stack"]  # the fixture, used by name

QUIET = "Taking a quiet minute to measure your resting rhythm"


def test_dashboard_checks_the_recalibrate_command() -> None:
    assert validate_command("therapist", "recalibrate", {"reason": "calm now"}) == {
        "reason": "calm now"
    }
    assert validate_command("therapist", "recalibrate", {}) == {}
    with pytest.raises(CommandError, match="not allowed for role 'client'"):
        validate_command("client", "recalibrate", {})
    with pytest.raises(CommandError, match="at most 200"):
        validate_command("therapist", "recalibrate", {"reason": "x" * 201})
    with pytest.raises(CommandError, match="unknown argument"):
        validate_command("therapist", "recalibrate", {"why": "x"})


def test_session_view_carries_recalibration_and_notes() -> None:
    v = session_view(
        session(
            1.0,
            "paused",
            1,
            recalibrating=True,
            calibration_reason="calm",
            calibration_notes=["heart rate fell 9 bpm", 3, "x" * 400],
        )
    )
    assert v["recalibrating"] is True
    assert v["calibration_reason"] == "calm"
    assert v["calibration_notes"] == ["heart rate fell 9 bpm", "x" * 300]
    old = session_view(session(1.0, "paused", 1))  # a payload from before: nothing running
    assert (old["recalibrating"], old["calibration_notes"]) == (False, [])


@pytest.mark.browser
@pytest.mark.mosquitto
async def test_client_is_told_it_is_a_quiet_minute(stack: Stack) -> None:
    stack.publish(Topic.SESSION, session(time.time(), "paused", 1, pause_reason="therapist"))
    page = await client_page(stack)
    step = page.locator("#step")
    await step.filter(has_text="Paused").wait_for(timeout=3000)
    running = session(time.time(), "paused", 1, pause_reason="therapist", recalibrating=True)
    stack.publish(Topic.SESSION, running)
    await step.filter(has_text=QUIET).wait_for(timeout=3000)
    stack.publish(Topic.SESSION, session(time.time(), "paused", 1, pause_reason="therapist"))
    await step.filter(has_text="Paused").wait_for(timeout=3000)
    await page.close()


@pytest.mark.browser
@pytest.mark.mosquitto
async def test_therapist_recalibrates_and_sees_an_unusual_calibration(stack: Stack) -> None:
    stack.publish(Topic.SESSION, session(time.time(), "recovered", 1, pause_reason="client"))
    page = await therapist_page(stack, f"/t/{CLIENT}")
    await page.locator("#state").filter(has_text="recovered").wait_for(timeout=3000)
    await page.fill("#recal-reason", "calm now, first one was after the stairs")
    await page.click("#b-recal")
    msg, body = await stack.next_command()
    assert (body["cmd"], body["role"]) == ("recalibrate", "therapist")
    assert body["args"] == {"reason": "calm now, first one was after the stairs"}
    stack.service.reply(msg, CLIENT, payloads.reply(CLIENT, time.time(), body["id"], True, None))
    await page.locator("#replies .ok").filter(has_text="Recalibrate: done").wait_for(timeout=3000)
    stack.publish(
        Topic.SESSION,
        session(time.time(), "recovered", 1, recalibrating=True, calibration_reason="calm now"),
    )
    notices = page.locator("#notices")
    await notices.filter(has_text="Fresh calibration running").wait_for(timeout=3000)
    note = "heart rate fell 9 bpm across the calibration (80 -> 71 bpm)"
    stack.publish(Topic.SESSION, session(time.time(), "recovered", 1, calibration_notes=[note]))
    await notices.filter(has_text="Calibration looked unusual: " + note).wait_for(timeout=3000)
    # refused in exposure: the therapist reads why
    stack.publish(Topic.SESSION, session(time.time(), "exposing", 1))
    await page.click("#b-recal")
    msg, body = await stack.next_command()
    why = "cannot recalibrate now (state exposing): a step is in progress"
    stack.service.reply(msg, CLIENT, payloads.reply(CLIENT, time.time(), body["id"], False, why))
    await page.locator("#replies .bad").filter(has_text=why).wait_for(timeout=3000)
    await page.close()
