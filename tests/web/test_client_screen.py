"""The client's screen keeps its promises in every state it can show (issue 12), in real Chromium.

The real path end to end: a real session (`SessionCore` + `SessionRunner`, the service's own
publishing code) on a real Mosquitto, the service's own command pump (`serve_commands`), the real
dashboard, and the client's page in headless Chromium. The client's presses go through the page,
the dashboard and the broker to the session; the therapist's actions and the strap's arousal are
fed to the session directly.

In every state the client can be in (calibrating, ready, a step offered, exposing, a check-in due,
paused by the client, the therapist, arousal or a lost signal, grounding, recovered, a resume
offered, step complete, debrief, ended; the numbers opted in), at 390x844, 768x1024, 1024x768
and 1366x900:
- every visible control can be pressed where it is drawn (`tests/web/invariants.py`);
- axe-core finds nothing at WCAG 2.2 AA;
and, where they apply: "Yes" and "Not yet" equal and both on screen, a check-in never beside a
consent prompt, the slider without a value until the client places it, the opted-in numbers fully
visible, "let's breathe together" only with a circle that paces at the service's schedule, no
stale "Paused" text after the end, and "I'm ready to continue" a request that resumes nothing.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from playwright.async_api import Error as PlaywrightError

from biofeedback.clock import wall_clock
from biofeedback.exposure import (
    ArousalSample,
    CalibrationDone,
    Command,
    CompleteStep,
    Consent,
    Decline,
    EndSession,
    OfferStep,
    Pause,
    ReadyToContinue,
    Role,
    SessionEvent,
    SessionState,
    SignalLost,
    SignalRestored,
    SudsAnswer,
    Tick,
    parse_protocol,
)
from biofeedback.service import payloads
from biofeedback.service.commands import serve_commands
from biofeedback.service.core import CoreOutput, SessionCore, SessionItem
from biofeedback.service.mqtt import MqttLink
from biofeedback.service.runner import SessionRunner
from biofeedback.service.topics import Topic
from biofeedback.signal import SignalConfig
from biofeedback.signal.measures import Arousal, ArousalBasis
from biofeedback.web import WebConfig, create_app
from biofeedback.web.app import client_url
from tests.brokers import mosquitto_plain
from tests.support import free_port, require_binary
from tests.web.conftest import LINK_SECRET, SECRET
from tests.web.invariants import (
    VIEWPORTS,
    assert_controls_pressable,
    assert_no_axe_violations,
    assert_pressable_at_sizes,
)

# the browser, the screenshots' folder, waiting for the page, a metrics payload: as the other
# browser tests have them
from tests.web.test_browser import CHROMIUM_ARGS, metrics, poll, shots

__all__ = ["shots"]  # the fixture, used by name (here and by the breathing-check test)

pytestmark = [pytest.mark.browser, pytest.mark.mosquitto, pytest.mark.slow]

CLIENT = "c-7f3a"
S = SessionState
T = Role.THERAPIST
PHONE = (390, 844)
LAPTOP = (1366, 900)
# The client's screen: what can be pressed there.
CONTROLS = "button, input, a[href], [tabindex]:not([tabindex='-1'])"

# Dwell and recovery of 0 s: one sample at or above `upper` pauses, one below `lower` recovers,
# so each state is reached at once and stays until the test moves on (no timers run out).
PROTOCOL = parse_protocol(
    """\
name = "Spiders (browser test)"
calibration_s = 180

[thresholds]
upper = 70
lower = 45
dwell_s = 0
recovery_s = 0
max_step_s = 3600
stale_s = 3600
signal_timeout_s = 3600

[guidance]
breathing = { inhale_s = 4, hold_in_s = 0, exhale_s = 6, hold_out_s = 0 }

[checkins]
at_step_start = true
at_step_end = true
after_recovery = true

[[steps]]
title = "Look at a drawing of a spider"
description = "A simple line drawing on paper, on the table in front of you."
planned_s = 120
suds_anchors = { 0 = "calm", 50 = "uneasy", 100 = "as scared as I get" }

[[steps]]
title = "Look at a photo of a spider"
description = "A colour photo of a house spider, on the screen."
planned_s = 180
suds_anchors = { 0 = "calm", 50 = "uneasy", 100 = "as scared as I get" }
""",
    source="test_client_screen.toml",
)
CALM, HIGH, LOW = 55.0, 90.0, 20.0


@dataclass
class Service:
    """The session service's side: a real SessionCore driven by a real SessionRunner."""

    runner: SessionRunner
    link: MqttLink
    events: list[SessionEvent] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)

    def state(self) -> SessionState:
        """The session's state now (a call, so type checkers do not narrow it across inputs)."""
        return self.runner.core.session.state

    def feed(self, item: SessionItem) -> CoreOutput:
        out = self.runner.process(item)
        self.events += out.events
        return out

    def submit(self, cmd: Command, reply: Callable[[dict[str, Any]], None]) -> None:
        """What the service does with a command from MQTT (serve_commands hands it here)."""
        self.commands.append(cmd)
        out = self.feed(cmd)
        if out.command is not None:
            reply(payloads.command_reply(CLIENT, out.t, out.command))

    def arousal(self, value: float) -> None:
        """The strap's arousal: to the session, and as the pipeline's payloads for the screens."""
        t = time.time()
        self.feed(ArousalSample(t, value, 1.0))
        a = Arousal(t, value, 0.9, value, value, ArousalBasis.HR_HRV)
        self.link.publish_kind(CLIENT, Topic.AROUSAL, payloads.arousal(CLIENT, a))
        self.link.publish_kind(CLIENT, Topic.METRICS, metrics(t, 64.0 + value * 0.4, 40.0))

    def therapist(self, cmd: Command) -> None:
        self.feed(cmd)

    def last_command(self) -> Command:
        return self.commands[-1]


@dataclass
class Room:
    app: web.Application
    svc: Service
    browser: Any
    shots: Path

    async def client_page(self, **options: Any) -> Any:
        width, height = PHONE
        page = await self.browser.new_page(
            viewport={"width": width, "height": height}, has_touch=True, **options
        )
        page.set_default_timeout(5000)
        await page.goto(client_url(self.app, CLIENT))
        await page.wait_for_selector("#conn[data-state='live']")
        return page


@pytest.fixture
async def room(shots: Path) -> AsyncIterator[Room]:
    chromium = require_binary("chromium", "chromium")
    from playwright.async_api import async_playwright

    port = free_port()
    async with mosquitto_plain() as broker, MqttLink(broker.settings(), "test-service") as link:
        core = SessionCore(
            client_id=CLIENT,
            protocol=PROTOCOL,
            signal_config=SignalConfig(),
            start_t=time.time(),
        )
        runner = SessionRunner(core=core, device=None, clock=wall_clock(), publisher=link)
        svc = Service(runner, link)
        link.publish_kind(
            CLIENT,
            Topic.STATUS,
            payloads.online_status(CLIENT, time.time(), battery_pct=80, device="Polar H10"),
        )
        svc.feed(Tick(time.time()))  # the first snapshot: calibrating
        cfg = WebConfig(
            port=port, mqtt=broker.settings(), therapist_secret=SECRET, link_secret=LINK_SECRET
        )
        app = create_app(cfg)
        site = web.AppRunner(app)
        await site.setup()
        await web.TCPSite(site, "127.0.0.1", port).start()
        try:
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
                async with asyncio.TaskGroup() as tg:
                    pump = tg.create_task(
                        serve_commands(link, CLIENT, now=time.time, submit=svc.submit)
                    )
                    try:
                        yield Room(app, svc, browser, shots)
                    finally:
                        pump.cancel()
                        await browser.close()
        finally:
            await site.cleanup()


# ---- waiting for the page ------------------------------------------------------------------------


async def until(cond: Callable[[], bool], what: str, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within} s")
        await asyncio.sleep(0.05)


async def shows(page: Any, state: SessionState, within: float = 5.0) -> None:
    """The page has drawn `state` (a page that does not say its state gets a second to draw)."""
    if await page.evaluate("document.body.dataset.state === undefined"):
        await asyncio.sleep(1.0)
        return
    await poll(page, f"document.body.dataset.state === {json.dumps(state.value)}", within)
    await page.evaluate("() => new Promise((r) => requestAnimationFrame(() => r(null)))")


async def press(page: Any, selector: str, svc: Service, kind: type) -> Command:
    """Press a control on the client's page; the command it sends reaches the session."""
    n = len(svc.commands)
    await page.click(selector, timeout=3000)
    await until(lambda: len(svc.commands) > n, f"{selector} sent no command")
    cmd = svc.commands[n]
    assert isinstance(cmd, kind), cmd
    assert cmd.role is Role.CLIENT
    return cmd


async def box(page: Any, selector: str) -> dict[str, float]:
    b = await page.locator(selector).bounding_box()
    assert b is not None, f"{selector} is not drawn"
    return b  # type: ignore[no-any-return]


async def at_sizes(page: Any, check: Callable[[int, int], Awaitable[None]]) -> list[str]:
    """Run `check(width, height)` at each viewport size; the failures, one line per size."""
    original = page.viewport_size
    failures = []
    try:
        for width, height in VIEWPORTS:
            await page.set_viewport_size({"width": width, "height": height})
            try:
                await check(width, height)
            except AssertionError as exc:
                failures.append(f"{width}x{height}: {exc}")
    finally:
        await page.set_viewport_size(original)
    return failures


# ---- what every state must pass, and what some must --------------------------------------------


@dataclass
class Checks:
    """Runs the checks of one test in every state and keeps every failure (not just the first)."""

    pressable: bool = True
    axe: bool = False
    failures: list[str] = field(default_factory=list)
    states: list[str] = field(default_factory=list)

    async def state(self, page: Any, what: str) -> None:
        self.states.append(what)
        if self.pressable:
            try:
                await assert_pressable_at_sizes(page, CONTROLS, what=what)
            except AssertionError as exc:
                self.failures.append(str(exc))
        if self.axe:
            original = page.viewport_size
            for width, height in (PHONE, LAPTOP):
                await page.set_viewport_size({"width": width, "height": height})
                try:
                    await assert_no_axe_violations(page, what=what)
                except AssertionError as exc:
                    self.failures.append(str(exc))
            await page.set_viewport_size(original)

    def expect(self, ok: bool, message: str) -> None:
        if not ok:
            self.failures.append(message)

    async def run(self, what: str, check: Awaitable[None]) -> None:
        try:
            await check
        except AssertionError as exc:
            self.failures.append(f"{what}: {exc}")

    def verdict(self) -> None:
        assert not self.failures, (
            f"{len(self.failures)} failure(s) over {len(self.states)} states:\n\n"
            + "\n\n".join(self.failures)
        )


async def answers_equal_and_on_screen(
    page: Any, yes_id: str = "b-consent", no_id: str = "b-decline", no_name: str = "Not yet"
) -> None:
    """Both answers drawn the same, side by side, fully on screen without scrolling (a step's
    "Yes" / "Not yet"; the breathing check's "Yes" / "Not now" by their ids)."""

    async def check(width: int, height: int) -> None:
        yes, no = await box(page, f"#{yes_id}"), await box(page, f"#{no_id}")
        for name, b in (("Yes", yes), (no_name, no)):
            assert b["y"] >= 0, f"{name} above the screen"
            assert b["y"] + b["height"] <= height, f"{name} below the screen: {b}"
            assert b["x"] >= 0, f"{name} left of the screen"
            assert b["x"] + b["width"] <= width, f"{name} right of the screen"
        assert abs(yes["width"] - no["width"]) <= 1, f"widths differ: {yes} vs {no}"
        assert abs(yes["height"] - no["height"]) <= 1, f"heights differ: {yes} vs {no}"
        styles = await page.evaluate(
            """(ids) => ids.map((id) => {
                 const c = getComputedStyle(document.getElementById(id));
                 return [c.backgroundColor, c.color, c.borderTopWidth, c.borderTopColor,
                         c.fontSize, c.fontWeight];
               })""",
            [yes_id, no_id],
        )
        assert styles[0] == styles[1], f"Yes and {no_name} look different: {styles}"
        scrolled = await page.evaluate("document.getElementById('main').scrollTop")
        assert scrolled == 0, "the screen had to scroll to show them"

    failures = await at_sizes(page, check)
    assert not failures, "\n".join(failures)


async def fully_visible(page: Any, selector: str) -> None:
    """`selector` and every part of it drawn on screen, nothing over it, at every size."""

    async def check(width: int, height: int) -> None:
        result = await page.evaluate(
            """(sel) => {
                 const root = document.querySelector(sel);
                 if (!root || !root.checkVisibility()) return ["not shown"];
                 const bad = [];
                 for (const el of [root, ...root.querySelectorAll("*")]) {
                   const r = el.getBoundingClientRect();
                   if (r.width < 1 || r.height < 1) continue;
                   if (r.top < 0 || r.left < 0 || r.bottom > innerHeight || r.right > innerWidth)
                     bad.push(el.tagName + " " + el.textContent.trim() + " is off screen");
                   const x = r.left + r.width / 2, y = r.top + r.height / 2;
                   const hit = document.elementFromPoint(x, y);
                   if (!hit || !(hit === el || el.contains(hit) || hit.contains(el)))
                     bad.push(el.tagName + " " + el.textContent.trim() + " is covered by " +
                              (hit ? hit.tagName + "#" + hit.id : "nothing"));
                 }
                 return bad;
               }""",
            selector,
        )
        assert not result, "; ".join(result)

    failures = await at_sizes(page, check)
    assert not failures, "\n".join(failures)


async def pacer_follows_the_schedule(page: Any, svc: Service) -> None:
    """The circle paces at the guidance schedule's rate, in step with the service's phases."""
    g = svc.runner.core.session.guidance
    assert g is not None, "no guidance is running"
    assert g.breathing is not None, "the guidance is not paced breathing"
    b = g.breathing
    phases = [("inhale", b.inhale_s), ("exhale", b.exhale_s)]
    period = b.period_s
    await page.wait_for_selector("#pacer:not([data-phase='idle'])", timeout=5000)
    scales = set()
    checked = 0
    for _ in range(8):
        asked = time.time()
        sample = await page.evaluate(
            "() => { const d = document.getElementById('pacer').dataset;"
            " return {phase: d.phase, elapsed: Number(d.elapsed), now: Number(d.now),"
            " scale: d.scale}; }"
        )
        answered = time.time()
        # the page's session clock: read between asking and answering, however slow that was
        assert asked - 0.5 < sample["now"] < answered + 0.5, (sample, asked, answered)
        pos = (sample["now"] - g.start_t) % period
        name, left = phases[-1][0], pos
        for phase, dur in phases:
            if left < dur:
                name = phase
                break
            left -= dur
        dur = dict(phases)[name]
        if min(left, dur - left) > 0.05:
            assert sample["phase"] == name, (sample, name, left)
            assert abs(sample["elapsed"] - left) < 0.05, (sample, left)
            checked += 1
        scales.add(sample["scale"])
        await asyncio.sleep(0.3)
    assert checked >= 6
    assert len(scales) > 4, f"the circle does not move: {scales}"


# ---- the walk through every state ---------------------------------------------------------------


async def walk(room: Room, checks: Checks) -> None:
    """Drive the session through every state the client can be in, checking each on the page."""
    svc = room.svc
    page = await room.client_page()
    shots = room.shots

    # calibrating
    await shows(page, S.CALIBRATING)
    await checks.state(page, "calibrating")

    # ready
    svc.feed(CalibrationDone(time.time(), True, "baseline ready"))
    svc.arousal(CALM)
    await shows(page, S.READY)
    await checks.state(page, "ready")

    # a step offered: the consent prompt (a step_start check-in is due too, and must wait)
    svc.therapist(OfferStep(time.time(), T))
    assert svc.state() is S.STEP_OFFERED
    assert svc.runner.core.snapshot.checkin_due == "step_start"
    await shows(page, S.STEP_OFFERED)
    await checks.state(page, "step offered (consent prompt)")
    await checks.run("step offered", answers_equal_and_on_screen(page))
    checks.expect(
        await page.locator("#checkin").is_hidden(),
        "step offered: the check-in shares the screen with the consent prompt",
    )
    for width, height in VIEWPORTS:
        await page.set_viewport_size({"width": width, "height": height})
        await page.screenshot(path=str(shots / f"client-consent-{width}x{height}.png"))
    await page.set_viewport_size({"width": PHONE[0], "height": PHONE[1]})

    # "Not yet": back to ready; offered again, "Yes": exposing, and now the check-in
    await press(page, "#b-decline", svc, Decline)
    assert svc.state() is S.READY
    svc.therapist(OfferStep(time.time(), T))
    await shows(page, S.STEP_OFFERED)
    await press(page, "#b-consent", svc, Consent)
    assert svc.state() is S.EXPOSING
    await shows(page, S.EXPOSING)
    await page.locator("#checkin").wait_for(state="visible", timeout=3000)
    await checks.state(page, "exposing, check-in due")
    checks.expect(
        await page.locator("#b-suds").is_disabled(), "check-in: Send enabled before a value"
    )
    checks.expect(
        await page.evaluate("document.getElementById('suds').classList.contains('unset')"),
        "check-in: the slider shows a value before the client placed it",
    )
    checks.expect(
        (await page.locator("#suds-value").inner_text()).strip() in ("–", "-", ""),
        "check-in: a value is shown before the client placed it",
    )
    await page.screenshot(path=str(shots / "client-checkin-390x844.png"))
    # the client places the marker (a touch at 40 % of the line) and sends
    slider = await box(page, "#suds")
    await page.mouse.click(slider["x"] + slider["width"] * 0.4, slider["y"] + slider["height"] / 2)
    value = int(await page.locator("#suds").input_value())
    shown = await page.evaluate(
        """(v) => [...document.querySelectorAll("#checkin *")]
             .filter((e) => e.checkVisibility() && e.children.length === 0
                       && e.textContent.trim() === String(v)).length""",
        value,
    )
    checks.expect(shown == 1, f"check-in: the value {value} is shown {shown} times, not once")
    answer = await press(page, "#b-suds", svc, SudsAnswer)
    assert isinstance(answer, SudsAnswer)
    assert answer.value == value
    await page.locator("#checkin").wait_for(state="hidden", timeout=3000)

    # exposing, the numbers opted in (they stay on for the rest of the walk)
    await page.click("#show-numbers")
    svc.arousal(CALM)
    await page.locator("#n-hr").filter(has_text="bpm").wait_for(timeout=3000)
    await checks.state(page, "exposing, numbers on")
    await checks.run("numbers on", fully_visible(page, "#numbers"))
    await page.screenshot(path=str(shots / "client-numbers-390x844.png"))

    # paused by the client: no pacer, so no "breathe together"; "I'm ready to continue"
    await press(page, "#b-pause", svc, Pause)
    assert svc.state() is S.PAUSED
    await shows(page, S.PAUSED)
    await checks.state(page, "paused by the client")
    step = await page.locator("#step").inner_text()
    checks.expect(
        "breathe together" not in step or not await page.locator("#pacer-wrap").is_hidden(),
        f"paused by the client: {step!r} with no pacer running",
    )
    await page.screenshot(path=str(shots / "client-paused-390x844.png"))
    if await page.locator("#b-ready").count() == 0:
        checks.expect(False, "paused: there is no way to say 'I'm ready to continue'")
    else:
        seq = len(svc.events)
        await press(page, "#b-ready", svc, ReadyToContinue)
        told = [e.kind for e in svc.events[seq:]]
        assert told == ["client_ready"], told  # a request: told, nothing else happened
        assert svc.state() is S.PAUSED
        await poll(page, "document.body.dataset.clientReady === 'true'")
        await checks.state(page, "paused, the client said ready")

    # a resume offered (the therapist's offer after the request): the consent prompt again
    svc.therapist(OfferStep(time.time(), T))
    assert svc.state() is S.RESUME_OFFERED
    await shows(page, S.RESUME_OFFERED)
    await checks.state(page, "resume offered (consent prompt)")
    await checks.run("resume offered", answers_equal_and_on_screen(page))
    await press(page, "#b-consent", svc, Consent)
    await shows(page, S.EXPOSING)

    # paused by arousal: paced breathing starts; the heading and a real pacer
    svc.arousal(HIGH)
    assert svc.state() is S.GROUNDING
    await shows(page, S.GROUNDING)
    await page.wait_for_selector("#pacer:not([data-phase='idle'])", timeout=5000)
    await checks.state(page, "paused by arousal, paced breathing")
    await checks.run("paced breathing", pacer_follows_the_schedule(page, svc))
    step = await page.locator("#step").inner_text()
    checks.expect("breathe together" in step, f"paced breathing: the heading says {step!r}")
    await page.screenshot(path=str(shots / "client-breathing-390x844.png"))
    # with prefers-reduced-motion the circle stays still; the phase is told in words and a bar
    still = await room.client_page(reduced_motion="reduce")
    await still.wait_for_selector("#pacer:not([data-phase='idle'])", timeout=5000)
    await still.wait_for_selector(".phase-bar", state="visible", timeout=3000)
    transform = await still.evaluate("getComputedStyle(document.getElementById('ring')).transform")
    checks.expect(transform == "none", f"reduced motion: the circle moves ({transform})")
    await checks.state(still, "paced breathing, reduced motion")
    await still.close()

    # recovered (an after-recovery check-in is due)
    svc.arousal(LOW)
    assert svc.state() is S.RECOVERED
    await shows(page, S.RECOVERED)
    await checks.state(page, "recovered, check-in due")

    # resumed; paused by the therapist; the client chooses 5-4-3-2-1 (no circle, no "breathe")
    svc.therapist(OfferStep(time.time(), T))
    await shows(page, S.RESUME_OFFERED)
    checks.expect(
        await page.locator("#checkin").is_hidden(),
        "resume offered: the check-in shares the screen with the consent prompt",
    )
    await press(page, "#b-consent", svc, Consent)
    await shows(page, S.EXPOSING)
    svc.arousal(CALM)
    svc.therapist(Pause(time.time(), T))
    await shows(page, S.PAUSED)
    await checks.state(page, "paused by the therapist")
    await page.click("[data-technique='sensory_5_4_3_2_1']")
    await until(lambda: svc.state() is S.GROUNDING, "the client's grounding choice")
    await shows(page, S.GROUNDING)
    await checks.state(page, "grounding the client chose, 5-4-3-2-1")
    step = await page.locator("#step").inner_text()
    checks.expect(
        "breathe together" not in step, f"grounding 5-4-3-2-1 says {step!r} with no pacer"
    )

    # paused on a lost signal
    svc.therapist(OfferStep(time.time(), T))
    await shows(page, S.RESUME_OFFERED)
    await press(page, "#b-consent", svc, Consent)
    await shows(page, S.EXPOSING)
    svc.arousal(CALM)
    svc.feed(SignalLost(time.time(), "strap connection lost"))
    assert svc.state() is S.PAUSED
    await shows(page, S.PAUSED)
    await page.locator("#signal").wait_for(state="visible", timeout=3000)
    await checks.state(page, "paused, signal lost")
    svc.feed(SignalRestored(time.time(), 2.0))
    svc.arousal(CALM)

    # step complete (a step_end check-in is due), debrief, ended
    svc.therapist(CompleteStep(time.time(), T))
    await shows(page, S.STEP_COMPLETE)
    await checks.state(page, "step complete, check-in due")
    # the client's pause just before the end: its "Paused" message must not outlive the session
    await press(page, "#b-pause", svc, Pause)
    await page.locator("#feedback").filter(has_text="Paused").wait_for(timeout=3000)
    svc.therapist(EndSession(time.time(), T))
    await shows(page, S.DEBRIEF)
    await checks.state(page, "debrief")
    svc.therapist(EndSession(time.time(), T))
    assert svc.state() is S.ENDED
    await shows(page, S.ENDED)
    await checks.state(page, "ended")
    text = await page.locator("main").inner_text()
    checks.expect("Paused" not in text, f"ended: stale text on the screen: {text!r}")
    await page.close()


# ---- the tests ---------------------------------------------------------------------------------


async def walk_every_state(room: Room, checks: Checks) -> None:
    """The walk with these checks in each state; a walk that stops early is a failure too."""
    try:
        await walk(room, checks)
    except (AssertionError, TimeoutError, PlaywrightError) as exc:
        checks.failures.append(f"the walk stopped after {checks.states[-1:]}: {exc}")
    checks.verdict()
    assert len(checks.states) >= 16, checks.states


async def test_every_control_can_be_pressed_in_every_state_at_every_size(room: Room) -> None:
    await walk_every_state(room, Checks(pressable=True))


async def test_no_axe_violations_in_any_state(room: Room) -> None:
    await walk_every_state(room, Checks(pressable=False, axe=True))


async def test_pause_yes_and_not_yet_work_from_the_keyboard(room: Room) -> None:
    svc = room.svc
    page = await room.client_page()
    svc.feed(CalibrationDone(time.time(), True, "baseline ready"))
    svc.arousal(CALM)
    svc.therapist(OfferStep(time.time(), T))
    await shows(page, S.STEP_OFFERED)

    async def tab_to(target: str) -> list[str]:
        """Tab from the top of the page until `target` has the focus; the ids passed on the way."""
        await page.evaluate("document.activeElement && document.activeElement.blur()")
        seen: list[str] = []
        for _ in range(20):
            await page.keyboard.press("Tab")
            focus = await page.evaluate(
                """() => { const e = document.activeElement;
                     const c = getComputedStyle(e);
                     return {id: e.id, visible: e.matches(':focus-visible'),
                             outline: c.outlineStyle, width: parseFloat(c.outlineWidth)}; }"""
            )
            seen.append(focus["id"])
            if focus["id"] == target:
                # the focus can be seen: a solid outline of at least 2 px
                assert focus["visible"], focus
                assert focus["outline"] != "none", focus
                assert focus["width"] >= 2, focus
                return seen
        raise AssertionError(f"Tab never reached #{target}: {seen}")

    order = await tab_to("b-pause")
    assert order.index("b-consent") < order.index("b-decline") < order.index("b-pause"), order
    await tab_to("b-decline")
    n = len(svc.commands)
    await page.keyboard.press("Enter")
    await until(lambda: len(svc.commands) > n, "Enter on Not yet sent nothing")
    assert isinstance(svc.last_command(), Decline)
    await shows(page, S.READY)
    svc.therapist(OfferStep(time.time(), T))
    await shows(page, S.STEP_OFFERED)
    await tab_to("b-consent")
    n = len(svc.commands)
    await page.keyboard.press(" ")
    await until(lambda: len(svc.commands) > n, "Space on Yes sent nothing")
    assert isinstance(svc.last_command(), Consent)
    await shows(page, S.EXPOSING)
    await tab_to("b-pause")
    n = len(svc.commands)
    await page.keyboard.press("Enter")
    await until(lambda: len(svc.commands) > n, "Enter on Pause sent nothing")
    pause = svc.last_command()
    assert isinstance(pause, Pause)
    assert pause.role is Role.CLIENT
    await shows(page, S.PAUSED)
    # the check-in slider from the keyboard: the first key places the marker, visibly
    await page.locator("#checkin").wait_for(state="visible", timeout=3000)
    await tab_to("suds")
    assert await page.locator("#b-suds").is_disabled()
    await page.keyboard.press("ArrowRight")
    first = await page.locator("#suds-value").inner_text()
    await page.keyboard.press("ArrowLeft")
    assert (first, await page.locator("#suds-value").inner_text()) == ("50", "45")
    assert await page.locator("#b-suds").is_enabled()
    await assert_controls_pressable(page, CONTROLS, what="keyboard walk")
    await page.close()


async def test_a_ready_request_resumes_nothing_until_the_client_consents(room: Room) -> None:
    """After a pause the client says "I'm ready to continue": the therapist is told (an event
    with type client_ready on MQTT, client_ready in the session); nothing resumes until the
    therapist offers and the client says yes."""
    svc = room.svc
    page = await room.client_page()
    svc.feed(CalibrationDone(time.time(), True, "baseline ready"))
    svc.arousal(CALM)
    svc.therapist(OfferStep(time.time(), T))
    await shows(page, S.STEP_OFFERED)
    await press(page, "#b-consent", svc, Consent)
    await shows(page, S.EXPOSING)
    await press(page, "#b-pause", svc, Pause)
    await shows(page, S.PAUSED)
    seq = len(svc.events)
    await press(page, "#b-ready", svc, ReadyToContinue)
    (told,) = svc.events[seq:]
    assert (told.kind, told.actor, told.from_state, told.to_state) == (
        "client_ready",
        Role.CLIENT,
        S.PAUSED,
        S.PAUSED,
    )
    payloads.validate("event", payloads.session_event(CLIENT, told))
    await poll(page, "document.body.dataset.clientReady === 'true'")
    await page.locator("#ready-text").filter(has_text="knows you're ready").wait_for(timeout=3000)
    assert await page.locator("#b-ready").is_hidden()
    # time passes, the client is calm: still paused, nothing offered
    svc.arousal(CALM)
    svc.feed(Tick(time.time()))
    assert svc.state() is S.PAUSED
    assert svc.runner.core.snapshot.offer is None
    assert await page.locator("#consent").is_hidden()
    # the therapist offers; only the client's yes resumes
    svc.therapist(OfferStep(time.time(), T))
    await shows(page, S.RESUME_OFFERED)
    assert svc.state() is S.RESUME_OFFERED
    await press(page, "#b-consent", svc, Consent)
    assert svc.state() is S.EXPOSING
    await page.close()
