"""The therapist's pages keep their promises in a real browser (issue 12).

Real headless Chromium against a real Mosquitto, the test playing the service (payloads built with
the service's own encoders, from a real `ExposureSession` where the words must match what the
session will do):

- every visible control can be pressed, in every session state, at 390x844, 768x1024, 1024x768
  and 1366x900 (`tests/web/invariants.py`); on a tablet the controls, Pause among them, come
  before the charts, on the first screen;
- axe-core finds nothing at WCAG 2.2 AA on the overview and the client page; the controls work
  from the keyboard alone;
- the page says what comes next in every state, and the Offer button's label is what the session
  does with it (pressed, its command is applied to the real session and compared);
- the client's "I'm ready to continue" is shown prominently; a device error with its fix; the
  pause reasons stacked ("arousal, then client"); calibration progress with time left; no raw
  state ids; steps from 1; "done" notices clear; the newest events shown whole; round HR ticks.
"""

from __future__ import annotations

import itertools
import re
import time
from typing import Any

import pytest

from biofeedback.devices.readings import DeviceEvent, DeviceEventKind
from biofeedback.exposure import (
    ArousalSample,
    CalibrationDone,
    Consent,
    Decline,
    ExposureSession,
    OfferStep,
    Pause,
    ReadyToContinue,
    Role,
    SessionState,
)
from biofeedback.service import payloads
from biofeedback.service.topics import Topic
from tests.exposure.helpers import protocol
from tests.web.invariants import (
    CONTROLS,
    assert_controls_pressable,
    assert_no_axe_violations,
    assert_pressable_at_sizes,
)
from tests.web.test_browser import (
    CLIENT,
    Stack,
    metrics,
    poll,
    session,
    stack,
    therapist_page,
)

__all__ = ["stack"]  # the fixture, used by name

pytestmark = [pytest.mark.browser, pytest.mark.mosquitto]

C, T = Role.CLIENT, Role.THERAPIST
RAW_ID = re.compile(r"\b[a-z]+_[a-z_]+\b")  # step_offered, signal_lost, pause_reason, ...

# One payload per state, as the service would publish it (what the page draws from).
STATES: list[tuple[str, int | None, dict[str, Any]]] = [
    ("calibrating", None, {"calibration_s": 60.0}),
    ("ready", None, {}),
    ("step_offered", 1, {"offer": "step", "consent_needed": "Step 2 of 4: begin?"}),
    ("exposing", 1, {"dwell_progress": 0.4}),
    ("paused", 1, {"pause_reason": "client", "pause_reasons": ["client"]}),
    ("grounding", 1, {"pause_reason": "client", "pause_reasons": ["arousal", "client"]}),
    ("recovered", 1, {"pause_reason": "arousal", "pause_reasons": ["arousal"]}),
    ("resume_offered", 1, {"offer": "resume", "pause_reason": "arousal"}),
    ("step_complete", 1, {"checkin_due": "step_end"}),
    ("debrief", 1, {}),
    ("ended", 1, {}),
]


def timeline(t0: float, n: int) -> list[dict[str, Any]]:
    """n session events as the service publishes them (a realistic mix)."""
    out = []
    for i in range(n):
        kind, frm, to, reason, values = [
            ("transition", "step_offered", "exposing", "consent: client consented", {"step": 1}),
            ("checkin", "exposing", "exposing", "SUDS 40", {"suds": 40, "step": 1}),
            ("transition", "exposing", "paused", "arousal_high: arousal held", {"arousal": 72.0}),
            ("transition", "paused", "grounding", "start_grounding: paced_breathing", {}),
        ][i % 4]
        out.append(
            {
                "v": 1,
                "t": t0 + 10 * i,
                "client": CLIENT,
                "source": "session",
                "seq": i + 1,
                "kind": kind,
                "actor": "system" if "arousal" in reason else "client",
                "from_state": frm,
                "to_state": to,
                "reason": reason,
                "values": values,
            }
        )
    return out


async def show(stack: Stack, page: Any, state: str, step: int | None, **extra: Any) -> None:
    stack.publish(Topic.SESSION, session(time.time(), state, step, **extra))
    await page.wait_for_selector(f"#state[data-state='{state}']", timeout=3000)


async def detail_page(stack: Stack, events: int = 12) -> Any:
    t = time.time()
    stack.publish(Topic.STATUS, payloads.online_status(CLIENT, t, battery_pct=80, device="H10"))
    for e in timeline(t - 600, events):
        stack.publish(Topic.EVENT, e)
    for k in range(30):
        stack.publish(Topic.METRICS, metrics(t - 30 + k, 70 + k % 3, 40.0))
    stack.publish(Topic.SESSION, session(t, "ready", None, started_t=t - 900))
    await stack.service.drain()
    page = await therapist_page(stack, f"/t/{CLIENT}")
    await page.wait_for_selector("#state[data-state='ready']", timeout=3000)
    return page


# ---- every control can be pressed; the controls come first on a tablet ----------------------


async def test_every_therapist_control_can_be_pressed_in_every_state_at_every_size(
    stack: Stack,
) -> None:
    page = await detail_page(stack)
    for state, step, extra in STATES:
        await show(stack, page, state, step, **extra)
        await assert_pressable_at_sizes(
            page, CONTROLS, what=f"client page, {state}", min_controls=10
        )
    await page.close()
    overview = await therapist_page(stack)
    await overview.wait_for_selector(f"tr[data-client='{CLIENT}']")
    await assert_pressable_at_sizes(overview, CONTROLS, what="overview", min_controls=2)
    await overview.close()


@pytest.mark.parametrize("size", [(768, 1024), (390, 844)])
async def test_controls_and_pause_come_before_the_charts(
    stack: Stack, size: tuple[int, int]
) -> None:
    """At 768 px the controls, Pause among them, sat about 1000 px below the charts."""
    page = await detail_page(stack)
    await show(stack, page, "exposing", 1)
    await page.set_viewport_size({"width": size[0], "height": size[1]})
    await page.evaluate("window.scrollTo(0, 0)")
    pause = await page.locator("#b-pause").bounding_box()
    charts = await page.locator("#charts-card").bounding_box()
    assert pause is not None
    assert charts is not None
    assert pause["y"] + pause["height"] < charts["y"]  # above the charts ...
    if size == (768, 1024):
        assert pause["y"] + pause["height"] <= size[1]  # ... and on the first screen
    await assert_controls_pressable(page, "#controls-card button", min_controls=4)
    await page.close()


# ---- accessibility --------------------------------------------------------------------------


async def test_axe_finds_nothing_on_the_therapist_pages(stack: Stack) -> None:
    page = await detail_page(stack)
    stack.publish(
        Topic.EVENT,
        payloads.device_event(
            CLIENT,
            DeviceEvent(
                time.time(), "H10", DeviceEventKind.ERROR, "strap not found", hint="wet it"
            ),
        ),
    )
    for state, step, extra in (STATES[0], STATES[5], STATES[7]):
        await show(stack, page, state, step, **extra)
        for width, height in ((1366, 900), (390, 844)):
            await page.set_viewport_size({"width": width, "height": height})
            await assert_no_axe_violations(page, what=f"client page, {state}")
    await page.click("#b-more-events")
    await assert_no_axe_violations(page, what="client page, all events")
    await page.close()
    overview = await therapist_page(stack)
    await overview.wait_for_selector(f"tr[data-client='{CLIENT}']")
    for width, height in ((1366, 900), (390, 844)):
        await overview.set_viewport_size({"width": width, "height": height})
        await assert_no_axe_violations(overview, what="overview")
    await overview.close()


async def tab_to(page: Any, element_id: str, most: int = 80) -> None:
    """Press Tab until the element has the keyboard focus (as a keyboard-only user would)."""
    for _ in range(most):
        if await page.evaluate("document.activeElement && document.activeElement.id") == element_id:
            return
        await page.keyboard.press("Tab")
    raise AssertionError(f"#{element_id} never got the keyboard focus in {most} Tabs")


async def test_the_controls_work_from_the_keyboard_alone(stack: Stack) -> None:
    page = await detail_page(stack)
    await show(stack, page, "paused", 1, pause_reason="client", pause_reasons=["client"])
    await tab_to(page, "b-offer")
    await page.keyboard.press("Enter")
    _, body = await stack.next_command()
    assert (body["cmd"], body["args"]) == ("offer_step", {"step": 1})
    await show(stack, page, "exposing", 1)
    await page.evaluate("document.activeElement.blur()")
    await tab_to(page, "b-pause")
    await page.keyboard.press("Space")
    _, body = await stack.next_command()
    assert (body["cmd"], body["role"]) == ("pause", "therapist")
    await tab_to(page, "b-complete")
    await page.keyboard.press("Enter")
    _, body = await stack.next_command()
    assert body["cmd"] == "complete_step"
    page.once("dialog", lambda d: d.accept())
    await tab_to(page, "b-end")
    await page.keyboard.press("Enter")
    _, body = await stack.next_command()
    assert body["cmd"] == "end"
    # the focus is visible where it is
    outline = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"
    await page.close()


# ---- what comes next, and a button that does what it says ------------------------------------


class Live:
    """A real session published as the service would: every event, then the snapshot."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.t = time.time() - 120.0
        self.s = ExposureSession(protocol(), t=self.t, client_id=CLIENT, needs_calibration=True)

    def feed(self, *inputs: Any) -> None:
        for inp in inputs:
            for ev in self.s.handle(inp):
                self.stack.publish(Topic.EVENT, payloads.session_event(CLIENT, ev))
        self.stack.publish(Topic.SESSION, payloads.session_snapshot(CLIENT, self.s.snapshot()))

    def at(self, dt: float = 1.0) -> float:
        self.t += dt
        return self.t


async def next_text(page: Any, expected: str) -> None:
    await page.locator("#next-text").filter(has_text=expected).wait_for(timeout=3000)
    assert await page.locator("#next-text").inner_text() == expected


async def press_offer_and_apply(live: Live, page: Any, label: str) -> None:
    """Press Offer (labelled `label`) and apply the command it sent to the real session."""
    offer = page.locator("#b-offer")
    await offer.filter(has_text=label).wait_for(timeout=3000)
    assert await offer.inner_text() == label
    await offer.click()
    msg, body = await live.stack.next_command()
    assert body["cmd"] == "offer_step"
    live.stack.service.reply(
        msg, CLIENT, payloads.reply(CLIENT, time.time(), body["id"], True, None)
    )
    live.feed(OfferStep(live.at(), T, step=body["args"].get("step")))


async def test_next_line_and_offer_button_follow_the_real_session(stack: Stack) -> None:
    live = Live(stack)
    live.feed(ArousalSample(live.at(), 30.0), CalibrationDone(live.at(0.1), True))
    page = await therapist_page(stack, f"/t/{CLIENT}")
    await next_text(page, "When the client is ready, offer: Offer step 1")
    await press_offer_and_apply(live, page, "Offer step 1")
    assert live.s.state is SessionState.STEP_OFFERED
    assert live.s.snapshot().step_index == 0
    await next_text(page, "Waiting for the client's answer to: step 1")
    assert await page.locator("#b-offer").is_disabled()  # while the client answers
    # the client says not yet
    live.feed(Decline(live.at(), C))
    await next_text(page, "Client said not yet. Offer again when they're ready: Offer step 1")
    await press_offer_and_apply(live, page, "Offer step 1")
    live.feed(ArousalSample(live.at(), 30.0), Consent(live.at(0.1), C))
    assert live.s.state is SessionState.EXPOSING
    await next_text(page, "Step 1 is running. When it is done: Step complete. To stop: Pause.")
    # the client pauses: the therapist re-offers, and the button offers to resume step 1
    live.feed(Pause(live.at(), C))
    await next_text(
        page, "Client paused. When they're calm, offer to resume: Offer to resume step 1"
    )
    # the client says "I'm ready to continue": shown prominently; still only a request
    live.feed(ReadyToContinue(live.at(), C))
    await next_text(
        page,
        "The client says they're ready to continue. If you agree, offer: Offer to resume step 1",
    )
    assert await page.locator("#next.ready").is_visible()
    note = page.locator("#next-note")
    assert "Resuming still needs your offer and the client's yes" in await note.inner_text()
    await page.locator("#events tr.ready").filter(has_text="Client is ready to continue").wait_for()
    assert live.s.state is SessionState.PAUSED  # nothing resumed by itself
    await press_offer_and_apply(live, page, "Offer to resume step 1")
    assert live.s.state is SessionState.RESUME_OFFERED  # what the label said
    await next_text(page, "Waiting for the client's answer to: resume step 1")
    assert await note.is_hidden()  # the offer answered the request
    assert not await page.locator("#next.ready").count()
    # no raw state ids, steps from 1, anywhere on the page
    body = await page.locator("main").inner_text()
    assert not RAW_ID.findall(body), RAW_ID.findall(body)
    assert "Step 1 offered" in body
    await page.close()


async def test_pause_reasons_stack_and_states_read_as_words(stack: Stack) -> None:
    page = await detail_page(stack)
    await show(stack, page, *STATES[5][:2], **STATES[5][2])
    badge = page.locator("#state")
    assert await badge.inner_text() == "Grounding — paused: arousal, then client"
    overview = await therapist_page(stack)
    row = overview.locator(f"tr[data-client='{CLIENT}']")
    await row.locator("[data-field='state']").filter(has_text="arousal, then client").wait_for()
    assert await row.locator("[data-field='next']").inner_text() == "You: Offer to resume step 2"
    for state, step, extra in STATES:
        await show(stack, page, state, step, **extra)
        text = await page.locator("body").inner_text()
        assert not RAW_ID.findall(text), (state, RAW_ID.findall(text))
        assert await page.locator("#next-text").inner_text()
    await overview.close()
    await page.close()


async def test_calibration_progress_with_time_left(stack: Stack) -> None:
    page = await detail_page(stack)
    now = time.time()
    await show(stack, page, "calibrating", None, calibration_s=60.0, calibration_started_t=now - 30)
    progress = page.locator("#progress")
    await progress.filter(has_text="Calibrating").wait_for(timeout=3000)
    text = await progress.inner_text()
    match = re.fullmatch(r"Calibrating: (\d+) % done, 0:(\d\d) left", text)
    assert match, text
    assert 45 <= int(match[1]) <= 60
    assert 24 <= int(match[2]) <= 31
    await show(stack, page, "ready", None)
    assert await progress.is_hidden()
    await page.close()


async def test_a_device_error_is_shown_with_its_fix(stack: Stack) -> None:
    """With no Bluetooth the page showed only "Monitoring lost" and empty charts."""
    page = await detail_page(stack)
    await show(stack, page, "calibrating", None, monitoring_ok=False)
    problem = DeviceEvent(
        time.time(),
        "Polar H10",
        DeviceEventKind.ERROR,
        "Bluetooth is not available: bluetoothd (BlueZ) is not running",
        hint="start it with `sudo systemctl start bluetooth`",
    )
    stack.publish(Topic.EVENT, payloads.device_event(CLIENT, problem))
    tracker = payloads.StatusTracker(CLIENT)
    stack.publish(Topic.STATUS, tracker.update(problem))
    notice = page.locator(".notice.bad").filter(has_text="Strap problem")
    await notice.wait_for(timeout=3000)
    assert "bluetoothd (BlueZ) is not running" in await notice.inner_text()
    assert "Fix: start it with `sudo systemctl start bluetooth`" in await notice.inner_text()
    row = page.locator("#events tr.problem").first
    assert "Strap problem" in await row.inner_text()
    assert "Fix: start it with" in await row.inner_text()
    # connected: the problem is gone
    stack.publish(
        Topic.STATUS,
        tracker.update(DeviceEvent(time.time(), "Polar H10", DeviceEventKind.CONNECTED)),
    )
    await notice.wait_for(state="detached", timeout=3000)
    await page.close()


# ---- what the page shows stays true and whole -----------------------------------------------


async def test_a_done_notice_clears(stack: Stack) -> None:
    page = await detail_page(stack)
    await show(stack, page, "exposing", 1)
    await page.click("#b-pause")
    msg, body = await stack.next_command()
    stack.service.reply(msg, CLIENT, payloads.reply(CLIENT, time.time(), body["id"], True, None))
    done = page.locator("#replies .ok").filter(has_text="Pause: done")
    await done.wait_for(timeout=3000)
    await done.wait_for(state="detached", timeout=8000)  # never stale
    await page.close()


async def test_the_newest_events_are_shown_whole(stack: Stack) -> None:
    page = await detail_page(stack, events=25)
    await show(stack, page, "grounding", 1, pause_reason="arousal")
    rows = page.locator("#events tbody tr")
    assert await rows.count() == 10
    for size in ((1366, 900), (768, 1024), (390, 844)):
        await page.set_viewport_size({"width": size[0], "height": size[1]})
        clipped = await page.evaluate(
            """() => {
              const box = document.querySelector('#events-card').getBoundingClientRect();
              const rows = [...document.querySelectorAll('#events tbody tr')];
              const t = document.querySelector('.timeline');
              const out = rows.filter((r) => {
                const b = r.getBoundingClientRect();
                return b.top < box.top || b.bottom > box.bottom;
              }).length;
              return {out, inner: t.scrollHeight > t.clientHeight + 1};
            }"""
        )
        assert clipped == {"out": 0, "inner": False}, (size, clipped)
    await page.click("#b-more-events")
    assert await rows.count() == 25
    await page.close()


async def test_heart_rate_ticks_are_round_numbers(stack: Stack) -> None:
    """The HR axis read 66.3 / 68.8 / 71.4."""
    page = await detail_page(stack)
    t = time.time()
    for k in range(60):
        hr = 66.3 + (71.4 - 66.3) * (k % 20) / 19
        stack.publish(Topic.METRICS, metrics(t - 60 + k, hr, 40.0))
    await poll(page, "Number(document.getElementById('c-hr').dataset.points) > 50")
    await poll(page, "document.getElementById('c-hr').dataset.ticks.length > 0")
    ticks = [
        float(v)
        for v in (await page.evaluate("document.getElementById('c-hr').dataset.ticks")).split(",")
    ]
    assert len(ticks) >= 3
    steps = {round(b - a, 6) for a, b in itertools.pairwise(ticks)}
    assert len(steps) == 1, ticks
    (step,) = steps
    assert step in (0.5, 1.0, 2.0, 5.0, 10.0), ticks
    assert all(abs(v / step - round(v / step)) < 1e-6 for v in ticks), ticks
    assert ticks[0] <= 66.3
    assert ticks[-1] >= 71.4
    arousal = await page.evaluate("document.getElementById('c-arousal').dataset.ticks")
    assert arousal.split(",") == ["0", "20", "40", "60", "80", "100"]
    await page.close()
