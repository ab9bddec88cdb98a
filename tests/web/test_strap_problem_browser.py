"""The client's page says what to do about the clinic's strap problems, at phone, tablet and laptop
sizes (issue 14: `device_failed`, `adapter_link_limit`; words in biofeedback/web/next_action.py).

Real headless Chromium against a real Mosquitto; the events are what the real `SessionRunner`
publishes (a strap whose code raises, an adapter that refuses the link), read by the dashboard.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from biofeedback.clock import ScaledClock
from biofeedback.devices.readings import DeviceEvent, DeviceEventKind
from biofeedback.service import payloads
from biofeedback.service.runner import SessionRunner
from biofeedback.service.topics import Topic
from biofeedback.web import next_action
from tests.app.test_clinic_service import _core, refused_at_the_link_limit
from tests.app.test_runner import Collect
from tests.web.test_browser import CLIENT, Stack, session, stack, therapist_page

__all__ = ["stack"]  # the fixture, used by name

pytestmark = [pytest.mark.browser, pytest.mark.mosquitto]

SIZES = ((390, 844), (768, 1024), (1366, 900))


class _Strap:
    name = "Polar H10 A"


def strap_failed(exc: Exception) -> Collect:
    """What the real runner publishes when a strap's code raises (`SessionRunner._device_loop`
    hands the exception to `_device_failed`)."""
    now = time.time()
    pub = Collect()
    runner = SessionRunner(
        core=_core(now - 5, CLIENT), device=None, clock=ScaledClock(1.0, start=now), publisher=pub
    )
    runner._device_failed(_Strap(), exc)
    return pub


def publish(stack: Stack, pub: Collect) -> None:
    for kind, body in pub.sent:
        if kind in (Topic.EVENT, Topic.STATUS):
            stack.publish(kind, body)


async def next_text(page: Any, starts: str) -> str:
    await page.locator("#next-text").filter(has_text=starts).wait_for(timeout=3000)
    return str(await page.locator("#next-text").inner_text())


async def page_overflow(page: Any) -> int:
    return int(
        await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
    )


async def shown_at_every_size(page: Any, notice: Any, what: str) -> None:
    """The next line and the notice are visible and inside the window at every size."""
    for w, h in SIZES:
        await page.set_viewport_size({"width": w, "height": h})
        for box_of in (page.locator("#next"), notice):
            assert await box_of.is_visible(), (what, w)
            box = await box_of.bounding_box()
            assert box is not None, what
            assert box["x"] >= 0, (what, w, box)
            assert box["x"] + box["width"] <= w, (what, w, box)


async def overview_row(stack: Stack) -> tuple[Any, Any]:
    """The therapist's group overview and this client's row on it."""
    page = await therapist_page(stack, "/")
    row = page.locator(f"tr[data-client='{CLIENT}']")
    await row.wait_for(timeout=3000)
    return page, row


async def row_says(row: Any, next_words: str, attention_words: str) -> None:
    """The row's next cell and attention badge say these words (waiting for the frame)."""
    cell = row.locator("[data-field='next']").filter(has_text=next_words)
    await cell.wait_for(timeout=3000)
    assert await cell.inner_text() == next_words
    badge = row.locator("[data-field='attention']").filter(has_text=attention_words or "—")
    await badge.wait_for(timeout=3000)


async def row_shown_at_every_size(page: Any, row: Any, what: str) -> None:
    """The row's next cell and attention badge are visible and inside the window at every size,
    and the overview does not scroll sideways."""
    for w, h in SIZES:
        await page.set_viewport_size({"width": w, "height": h})
        for field in ("next", "attention"):
            cell = row.locator(f"[data-field='{field}']")
            assert await cell.is_visible(), (what, field, w)
            box = await cell.bounding_box()
            assert box is not None, (what, field)
            assert box["x"] >= 0, (what, field, w, box)
            assert box["x"] + box["width"] <= w, (what, field, w, box)
        assert await page_overflow(page) <= 0, (what, w, h)


async def test_a_failed_strap_says_check_the_strap_until_beats_return(stack: Stack) -> None:
    t = time.time()
    stack.publish(Topic.STATUS, payloads.online_status(CLIENT, t, battery_pct=80, device="H10"))
    stack.publish(Topic.SESSION, session(t, "ready", None))
    page = await therapist_page(stack, f"/t/{CLIENT}")
    await next_text(page, "When the client is ready, offer: Offer step 1")

    publish(stack, strap_failed(RuntimeError("parser crashed on byte 3")))
    stack.publish(Topic.SESSION, session(time.time(), "ready", None, monitoring_ok=False))
    lead, _, short = next_action.PROBLEMS["device_failed"]
    text = await next_text(page, lead)
    assert "Check the strap: check it is worn snugly" in text
    assert await page.locator("#next").get_attribute("data-who") == "therapist"
    notice = page.locator(".notice.bad").filter(has_text="Strap problem")
    await notice.wait_for(timeout=3000)
    assert "parser crashed on byte 3" in await notice.inner_text()
    assert "Fix: Check the strap" in await notice.inner_text()
    row = page.locator("#events tr.problem").filter(has_text="Strap software failed")
    await row.wait_for(timeout=3000)
    await shown_at_every_size(page, notice, "strap failed")
    for w, h in SIZES:
        await page.set_viewport_size({"width": w, "height": h})
        assert await page_overflow(page) <= 0, (w, h)
    # the overview row says the same problem, with the page's whole line as its title
    overview, row = await overview_row(stack)
    await row_says(row, f"Strap software failed. {short}", "Strap software failed")
    assert await row.locator("[data-field='next']").get_attribute("title") == text
    await row_shown_at_every_size(overview, row, "strap failed")

    # the fresh strap's first beat: the runner says signal restored, the session has its signal
    back = DeviceEvent(time.time(), "Polar H10 A", DeviceEventKind.SIGNAL_RESTORED, gap_s=3.0)
    stack.publish(Topic.EVENT, payloads.device_event(CLIENT, back))
    stack.publish(Topic.STATUS, payloads.StatusTracker(CLIENT).update(back))
    stack.publish(Topic.SESSION, session(time.time(), "ready", None, monitoring_ok=True))
    await next_text(page, "When the client is ready, offer: Offer step 1")
    await notice.wait_for(state="detached", timeout=3000)
    await row_says(row, "You: Offer step 1", "")
    await page.close()
    await overview.close()


async def test_an_adapter_at_its_limit_says_move_the_client(stack: Stack) -> None:
    t = time.time()
    stack.publish(Topic.STATUS, payloads.online_status(CLIENT, t, device="Polar H10 6"))
    stack.publish(Topic.SESSION, session(t, "calibrating", None, monitoring_ok=False))
    page = await therapist_page(stack, f"/t/{CLIENT}")
    await page.wait_for_selector("#state[data-state='calibrating']", timeout=3000)

    hint = "move the other clients to a second service"
    # the session began 5 s ago and the refusal came 1 s later: before the link frees below
    publish(stack, refused_at_the_link_limit(hint, CLIENT, time.time() - 5))
    lead, _, short = next_action.PROBLEMS["adapter_link_limit"]
    text = await next_text(page, lead)
    assert "Move the client to another adapter or another service" in text
    notice = page.locator(".notice.bad").filter(has_text="Strap problem")
    await notice.wait_for(timeout=3000)
    assert "'Polar H10 6'" in await notice.inner_text()
    row = page.locator("#events tr.problem").filter(has_text="Bluetooth adapter full")
    await row.wait_for(timeout=3000)
    assert "Fix: Move the client" in await row.inner_text()
    await shown_at_every_size(page, notice, "adapter full")
    overview, row = await overview_row(stack)
    await row_says(row, f"Bluetooth adapter full. {short}", "Bluetooth adapter full")
    assert await row.locator("[data-field='next']").get_attribute("title") == text
    await row_shown_at_every_size(overview, row, "adapter full")

    # a link became free: the strap connects, and the session's own line is back
    connected = DeviceEvent(time.time(), "Polar H10 6", DeviceEventKind.CONNECTED)
    stack.publish(Topic.EVENT, payloads.device_event(CLIENT, connected))
    stack.publish(Topic.STATUS, payloads.StatusTracker(CLIENT).update(connected))
    await next_text(page, "Measuring the client's resting rhythm")
    await notice.wait_for(state="detached", timeout=3000)
    # the row's next words are the session's again (calibrating: the system acts)
    await row_says(row, "Calibrating", "Monitoring lost")
    await overview.close()
    await page.set_viewport_size({"width": 390, "height": 844})
    over = await page_overflow(page)
    await page.close()
    # BlueZ's error id (le-connection-concurrent-connection-limit) is one long word: the
    # timeline's cells must break it (overflow-wrap: anywhere), or the phone scrolls sideways
    assert over <= 0, f"the timeline is {over} px wider than a phone with BlueZ's long error id"
