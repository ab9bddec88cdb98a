"""Both views in a real headless Chromium, fed by real payloads through a real Mosquitto.

The test plays the session service: it publishes v1 payloads (built with the service's own
encoders) and reads the commands the pages send from the broker.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from biofeedback.exposure.messages import BreathingPattern, GroundingTechnique, Guidance
from biofeedback.service import payloads
from biofeedback.service.mqtt import IncomingMessage, MqttLink
from biofeedback.service.topics import Topic, topic
from biofeedback.signal.measures import Arousal, ArousalBasis
from biofeedback.web import WebConfig, create_app
from biofeedback.web.app import CONFIG_KEY, client_url
from tests.brokers import mosquitto_plain
from tests.support import REPO_ROOT, free_port, require_binary
from tests.web.conftest import LINK_SECRET, SECRET

pytestmark = [pytest.mark.browser, pytest.mark.mosquitto]

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Screenshots go to a temporary folder unless BIOFEEDBACK_UPDATE_SCREENSHOTS=1 asks for the
# documentation's copies to be refreshed (so a test run leaves the checkout clean).
UPDATE_DOCS = os.environ.get("BIOFEEDBACK_UPDATE_SCREENSHOTS") == "1"


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = REPO_ROOT / "docs" / "screenshots" if UPDATE_DOCS else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


CLIENT = "c-7f3a"


@dataclass
class Stack:
    base: str
    app: web.Application
    runner: web.AppRunner
    service: MqttLink
    browser: Any
    commands: asyncio.Queue[IncomingMessage] = field(default_factory=asyncio.Queue)

    def publish(self, kind: Topic, body: dict[str, Any], client: str = CLIENT) -> None:
        payloads.validate(str(kind), body)
        self.service.publish_kind(client, kind, body)

    async def next_command(self, within: float = 3.0) -> tuple[IncomingMessage, dict[str, Any]]:
        async with asyncio.timeout(within):
            msg = await self.commands.get()
        body = json.loads(msg.payload)
        payloads.validate("command", body)
        return msg, body


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    chromium = require_binary("chromium", "chromium")
    from playwright.async_api import async_playwright

    port = free_port()
    async with mosquitto_plain() as broker, MqttLink(broker.settings(), "test-service") as service:
        await service.subscribe(topic(CLIENT, Topic.CMD), qos=1)
        cfg = WebConfig(
            port=port, mqtt=broker.settings(), therapist_secret=SECRET, link_secret=LINK_SECRET
        )
        app = create_app(cfg)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        s: Stack | None = None
        try:
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
                s = Stack(f"http://127.0.0.1:{port}", app, runner, service, browser)

                async def collect() -> None:
                    async for msg in service.messages():
                        if msg.topic == topic(CLIENT, Topic.CMD):
                            await s.commands.put(msg)

                async with asyncio.TaskGroup() as tg:
                    collector = tg.create_task(collect())
                    try:
                        yield s
                    finally:
                        collector.cancel()
                        await browser.close()
        finally:
            # the test may have replaced the runner (a dashboard restart)
            await (s.runner if s is not None else runner).cleanup()


# ---- payloads the service would publish -------------------------------------------------------

STEPS = [
    ("Look at a drawing of a spider", 120.0),
    ("Look at a photo of a spider", 180.0),
    ("Watch a short spider video", 240.0),
    ("Stand near a spider in a closed jar", 300.0),
]


def session(t: float, state: str, step: int | None, **extra: Any) -> dict[str, Any]:
    steps = []
    for i, (title, planned) in enumerate(STEPS):
        status = "completed" if step is not None and i < step else "pending"
        if i == step:
            status = {"exposing": "exposing", "step_offered": "offered"}.get(state, "paused")
        steps.append(
            {
                "index": i,
                "title": title,
                "description": "",
                "planned_s": planned,
                "suds_anchors": [[0, "calm"], [50, "uneasy"], [100, "as scared as I get"]],
                "status": status,
            }
        )
    body = {
        "v": 1,
        "t": t,
        "client": CLIENT,
        "state": state,
        "step_index": step,
        "steps": steps,
        "pause_reason": extra.pop("pause_reason", None),
        "thresholds": {"upper": 70.0, "lower": 45.0, "dwell_s": 10.0, "recovery_s": 60.0},
        "consent_needed": extra.pop("consent_needed", None),
        "checkin_due": extra.pop("checkin_due", None),
        "offer": extra.pop("offer", None),
        "monitoring_ok": True,
        "suds": extra.pop("suds", []),
    }
    body.update(extra)
    return body


def metrics(t: float, hr: float, rmssd: float, quality: float = 0.95) -> dict[str, Any]:
    return {
        "v": 1,
        "t": t,
        "client": CLIENT,
        "hr_bpm": hr,
        "short": {
            "window_s": 30.0,
            "n": 30,
            "mean_nn_ms": 60000.0 / hr,
            "hr_bpm": hr,
            "rmssd_ms": rmssd,
            "sdnn_ms": rmssd * 1.2,
            "pnn50_pct": 10.0,
        },
        "long": None,
        "frequency": None,
        "quality": {
            "score": quality,
            "corrected_share": 0.0,
            "rejected_share": 0.0,
            "contact": True,
            "hrv_available": True,
            "reason": None,
        },
    }


def arousal(t: float, value: float | None) -> dict[str, Any]:
    a = Arousal(
        t=t,
        value=value,
        confidence=0.9 if value is not None else 0.0,
        fast=value,
        slow=value,
        basis=ArousalBasis.HR_HRV if value is not None else ArousalBasis.UNKNOWN,
        reason=None if value is not None else "no signal",
    )
    return payloads.arousal(CLIENT, a)


def guidance(t: float, start_t: float) -> dict[str, Any]:
    g = Guidance(
        start_t=start_t,
        technique=GroundingTechnique.PACED_BREATHING,
        breathing=BreathingPattern(4.0, 0.0, 6.0, 0.0),
        prompt="Breathe slowly with the circle. You are safe here.",
    )
    return payloads.guidance(CLIENT, t, g)


async def poll(page: Any, expression: str, within: float = 5.0) -> None:
    """Wait until a JS expression is true (the pages' CSP forbids eval, so no wait_for_function)."""
    deadline = time.monotonic() + within
    while not await page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"{expression} still false after {within} s")
        await asyncio.sleep(0.05)


async def therapist_page(stack: Stack, path: str = "/") -> Any:
    page = await stack.browser.new_page(viewport={"width": 1400, "height": 1000})
    await page.goto(f"{stack.base}{path}?token={SECRET}")
    await page.wait_for_selector("#conn[data-state='live']")
    return page


async def client_page(stack: Stack) -> Any:
    page = await stack.browser.new_page(viewport={"width": 1024, "height": 768}, has_touch=True)
    await page.goto(client_url(stack.app, CLIENT))
    await page.wait_for_selector("#conn[data-state='live']")
    return page


# ---- tests -------------------------------------------------------------------------------------


async def test_request_without_secret_is_refused(stack: Stack) -> None:
    page = await stack.browser.new_page()
    resp = await page.goto(f"{stack.base}/")
    assert page.url.startswith(f"{stack.base}/login")
    assert resp.status == 200  # the login form, nothing else
    assert await page.locator("#clients").count() == 0
    resp = await page.goto(f"{stack.base}/api/overview")
    assert resp.status == 401
    resp = await page.goto(f"{stack.base}/t/{CLIENT}?token=wrong-secret")
    assert page.url.startswith(f"{stack.base}/login")
    # a WebSocket opened by a page from another origin (localhost vs 127.0.0.1) is refused
    other = stack.base.replace("127.0.0.1", "localhost")
    await page.goto(f"{other}/healthz")
    ws_url = client_url(stack.app, CLIENT).replace("http://", "ws://") + "/ws"
    opened = await page.evaluate(
        """(url) => new Promise((resolve) => {
             const ws = new WebSocket(url);
             ws.onopen = () => resolve(true);
             ws.onerror = () => resolve(false);
           })""",
        ws_url,
    )
    assert opened is False
    await page.close()


async def test_therapist_sees_live_values(stack: Stack) -> None:
    """Live values reach the therapist's row. How fast (publish to page) is measured under
    bench/bench_web.py, not timed here: a wall-time limit in a test fails on a loaded machine."""
    t = time.time()
    stack.publish(Topic.STATUS, payloads.online_status(CLIENT, t, battery_pct=81, device="H10"))
    stack.publish(Topic.SESSION, session(t, "exposing", 1))
    page = await therapist_page(stack)
    await page.wait_for_selector(f"tr[data-client='{CLIENT}']")
    t = time.time()
    stack.publish(Topic.METRICS, metrics(t, 88.0, 31.0))
    stack.publish(Topic.AROUSAL, arousal(t, 63.0))
    row = page.locator(f"tr[data-client='{CLIENT}']")
    await row.locator("[data-field='arousal']").filter(has_text="63").wait_for(timeout=30_000)
    await row.locator("[data-field='hr']").filter(has_text="88 bpm").wait_for(timeout=30_000)
    assert await row.locator("[data-field='battery']").inner_text() == "81 %"
    assert await row.locator("[data-field='state']").inner_text() == "Exposing: step 2"
    await page.close()


async def test_pressing_pause_sends_a_pause_command(stack: Stack) -> None:
    t = time.time()
    stack.publish(Topic.SESSION, session(t, "exposing", 1))
    page = await therapist_page(stack, f"/t/{CLIENT}")
    await page.locator("#state").filter(has_text="exposing").wait_for(timeout=3000)
    await page.click("#b-pause")
    msg, body = await stack.next_command()
    assert (body["cmd"], body["role"]) == ("pause", "therapist")
    stack.service.reply(msg, CLIENT, payloads.reply(CLIENT, time.time(), body["id"], True, None))
    stack.publish(Topic.SESSION, session(time.time(), "paused", 1, pause_reason="therapist"))
    await page.locator("#replies .ok").filter(has_text="Pause: done").wait_for(timeout=3000)
    await page.locator("#state").filter(has_text="paused").wait_for(timeout=3000)
    await page.close()


async def test_client_consent_prompt_and_consent_command(stack: Stack, shots: Path) -> None:
    t = time.time()
    text = "Step 2 of 4: Look at a photo of a spider (about 3 min). Would you like to begin?"
    stack.publish(Topic.SESSION, session(t, "step_offered", 1, consent_needed=text, offer="step"))
    page = await client_page(stack)
    consent = page.locator("#consent")
    await consent.wait_for(state="visible", timeout=3000)
    assert "Look at a photo of a spider" in await page.locator("#consent-text").inner_text()
    assert await page.locator("#b-pause").is_visible()
    assert await page.locator("#numbers").is_hidden()  # numbers only when the client asks
    await page.screenshot(path=str(shots / "client-consent.png"))
    # a tablet held upright: the question, both answers and Pause fit without scrolling, and
    # every button is a comfortable touch target
    await page.set_viewport_size({"width": 768, "height": 1024})
    for selector in ("#consent-text", "#b-consent", "#b-decline", "#b-pause"):
        box = await page.locator(selector).bounding_box()
        assert box is not None
        assert box["y"] >= 0
        assert box["y"] + box["height"] <= 1024, selector
        if selector.startswith("#b-"):
            assert box["height"] >= 44, selector
    await page.screenshot(path=str(shots / "client-tablet.png"))
    await page.click("#b-consent")
    msg, body = await stack.next_command()
    assert (body["cmd"], body["role"]) == ("consent", "client")
    stack.service.reply(msg, CLIENT, payloads.reply(CLIENT, time.time(), body["id"], True, None))
    stack.publish(Topic.SESSION, session(time.time(), "exposing", 1))
    await consent.wait_for(state="hidden", timeout=3000)
    assert "Look at a photo of a spider" in await page.locator("#step").inner_text()
    # the pause button is always there and sends a client pause
    await page.click("#b-pause")
    _, body = await stack.next_command()
    assert (body["cmd"], body["role"]) == ("pause", "client")
    await page.close()


async def test_suds_slider_when_a_checkin_is_due(stack: Stack) -> None:
    stack.publish(Topic.SESSION, session(time.time(), "exposing", 1, checkin_due="step_start"))
    page = await client_page(stack)
    panel = page.locator("#checkin")
    await panel.wait_for(state="visible", timeout=3000)
    assert await page.locator("#suds-high").inner_text() == "100 as scared as I get"
    assert await page.locator("#suds-anchors").inner_text() == "50 uneasy"
    await page.locator("#suds").fill("40")
    assert await page.locator("#suds-value").inner_text() == "40"
    await page.click("#b-suds")
    msg, body = await stack.next_command()
    assert (body["cmd"], body["role"], body["args"]) == ("suds", "client", {"value": 40})
    stack.service.reply(msg, CLIENT, payloads.reply(CLIENT, time.time(), body["id"], True, None))
    await panel.wait_for(state="hidden", timeout=3000)
    # the service clears the prompt; a later prompt shows the slider again
    stack.publish(Topic.SESSION, session(time.time(), "exposing", 1))
    stack.publish(Topic.SESSION, session(time.time(), "exposing", 1, checkin_due="step_end"))
    await panel.wait_for(state="visible", timeout=3000)
    await page.close()


def expected_phase(start_t: float, now: float) -> tuple[str, float]:
    period = 10.0  # 4 s in, 6 s out
    pos = (now - start_t) % period
    return ("inhale", pos) if pos < 4.0 else ("exhale", pos - 4.0)


async def test_pacer_phase_follows_the_guidance_schedule(stack: Stack) -> None:
    t = time.time()
    stack.publish(Topic.SESSION, session(t, "grounding", 1, pause_reason="arousal"))
    stack.publish(Topic.AROUSAL, arousal(t, 72.0))
    page = await client_page(stack)
    # the schedule began 23.2 s ago (3.2 s into a breath-in): the page cannot be right by
    # starting a timer of its own, and the samples below straddle the change to breathing out
    t = time.time()
    start_t = t - 23.2
    stack.publish(Topic.GUIDANCE, guidance(t, start_t))
    await page.wait_for_selector("#pacer:not([data-phase='idle'])")
    checked = 0
    phases_seen = set()
    for _ in range(10):
        asked = time.time()
        sample = await page.evaluate(
            "() => { const d = document.getElementById('pacer').dataset;"
            " return {phase: d.phase, elapsed: Number(d.elapsed), now: Number(d.now)}; }"
        )
        answered = time.time()
        # the page's idea of session time agrees with the service clock (here: wall time): it
        # read its clock between our asking and its answer (however long a loaded machine took)
        assert asked - 0.5 < sample["now"] < answered + 0.5, (sample, asked, answered)
        phase, elapsed = expected_phase(start_t, sample["now"])
        if min(elapsed, 4.0 - elapsed if phase == "inhale" else 6.0 - elapsed) > 0.05:
            assert sample["phase"] == phase, (sample, phase, elapsed)
            assert abs(sample["elapsed"] - elapsed) < 0.05, (sample, elapsed)
            checked += 1
            phases_seen.add(phase)
        await asyncio.sleep(0.27)
    assert checked >= 7
    assert phases_seen == {"inhale", "exhale"}  # the samples straddle a phase change
    await page.close()

    # with prefers-reduced-motion the circle stays still; the phase is told in words and a bar
    page = await stack.browser.new_page(reduced_motion="reduce")
    await page.goto(client_url(stack.app, CLIENT))
    await page.wait_for_selector("#pacer:not([data-phase='idle'])")
    await page.wait_for_selector(".phase-bar", state="visible")
    transform = await page.evaluate("getComputedStyle(document.getElementById('ring')).transform")
    assert transform == "none"
    word = await page.locator("#phase-word").inner_text()
    phase = await page.evaluate("document.getElementById('pacer').dataset.phase")
    assert word == {"inhale": "Breathe in", "exhale": "Breathe out"}[phase]
    await page.close()


async def test_connection_loss_is_shown_honestly(stack: Stack) -> None:
    stack.publish(Topic.SESSION, session(time.time(), "exposing", 0))
    page = await client_page(stack)
    await stack.runner.cleanup()  # the dashboard goes away under the page
    await page.wait_for_selector("#conn[data-state='lost']", timeout=15000)
    assert "Connection lost" in await page.locator("#conn").inner_text()
    # it comes back (same secrets, same port): the page reconnects by itself and is live again
    cfg = stack.app[CONFIG_KEY]
    stack.app = create_app(cfg)
    stack.runner = web.AppRunner(stack.app)
    await stack.runner.setup()
    await web.TCPSite(stack.runner, "127.0.0.1", cfg.port).start()
    await page.wait_for_selector("#conn[data-state='live']", timeout=15000)
    await page.locator("#step").filter(has_text="Your step").wait_for(timeout=5000)
    await page.close()


async def test_screenshots_of_both_views(stack: Stack, shots: Path) -> None:
    """A realistic last five minutes: exposure, an arousal pause with grounding, a signal gap."""
    now = time.time()
    t0 = now - 300.0
    stack.publish(
        Topic.STATUS, payloads.online_status(CLIENT, now, battery_pct=84, device="Polar H10")
    )
    spans = [
        (t0, "exposing", None),
        (t0 + 150, "paused", "arousal"),
        (t0 + 152, "grounding", "arousal"),
    ]
    for i, (ts, state, reason) in enumerate(spans):
        stack.publish(
            Topic.EVENT,
            {
                "v": 1,
                "t": ts,
                "client": CLIENT,
                "source": "session",
                "seq": i + 10,
                "kind": "transition",
                "actor": "system" if reason else "client",
                "from_state": "step_offered" if i == 0 else spans[i - 1][1],
                "to_state": state,
                # as the session words them: the trigger, then why (docs/session.md)
                "reason": {
                    None: "consent: client consented; step started",
                    "arousal": "arousal_high: arousal at or above 70 for 10 s"
                    if state == "paused"
                    else "start_grounding: grounding: paced_breathing",
                }[reason],
                "values": {"arousal": 74.2, "upper": 70.0, "step": 1}
                if state == "paused"
                else {"step": 1},
            },
        )
    # the overview is open while the data flows, so its two-minute arousal traces fill in
    overview = await therapist_page(stack)
    others = (("c-19bd", "exposing", 48.0, 81.0, 62), ("c-a02e", "ready", 22.0, 66.0, 15))
    for other, state, _, _, battery in others:
        stack.publish(
            Topic.STATUS,
            payloads.online_status(other, now, battery_pct=battery, device="H10"),
            other,
        )
        stack.publish(
            Topic.SESSION,
            {**session(now, state, 0 if state == "exposing" else None), "client": other},
            other,
        )
    for k in range(300):
        ts = t0 + k
        for n, (other, _, value, hr_other, _) in enumerate(others):
            wobble = value + 5 * math.sin(k / (6.0 + 3 * n)) + 0.02 * k * (1 - 2 * n)
            stack.publish(Topic.METRICS, {**metrics(ts, hr_other, 40.0), "client": other}, other)
            stack.publish(Topic.AROUSAL, {**arousal(ts, wobble), "client": other}, other)
        if 200 <= k < 215:  # strap lost contact: nothing arrives, the charts must show a gap
            continue
        x = k / 300.0
        level = 40 + 36 * math.exp(-(((k - 148) / 40.0) ** 2)) + 6 * math.sin(k / 9.0)
        if k > 160:
            level -= 14 * (k - 160) / 140
        hr = 72 + 0.35 * (level - 40) + 3 * math.sin(k / 5.0)
        rmssd = 48 - 0.4 * (level - 40) + 4 * math.sin(k / 7.0) + 2 * x
        stack.publish(Topic.METRICS, metrics(ts, hr, rmssd, 0.93))
        stack.publish(Topic.AROUSAL, arousal(ts, max(0.0, min(100.0, level))))
    # the client said "I'm ready to continue" while grounding: a request the therapist sees
    stack.publish(
        Topic.EVENT,
        {
            "v": 1,
            "t": now - 8,
            "client": CLIENT,
            "source": "session",
            "seq": 14,
            "kind": "client_ready",
            "actor": "client",
            "from_state": "grounding",
            "to_state": "grounding",
            "reason": "client is ready to continue step 2: the therapist may offer to resume",
            "values": {"step": 1, "pause_reason": "arousal"},
        },
    )
    stack.publish(
        Topic.SESSION,
        session(
            now,
            "grounding",
            1,
            pause_reason="arousal",
            pause_reasons=["arousal"],
            client_ready=True,
            client_ready_t=now - 8,
            started_t=t0 - 420,
            suds=[
                {"t": t0 - 60, "value": 35, "prompts": ["step_start"], "step_index": 1},
                {"t": t0 + 170, "value": 60, "prompts": ["after_pause"], "step_index": 1},
            ],
        ),
    )
    stack.publish(Topic.GUIDANCE, guidance(now, t0 + 152))
    stack.publish(Topic.STATUS, payloads.offline_status("c-a02e", now), "c-a02e")
    await stack.service.drain()

    page = await therapist_page(stack, f"/t/{CLIENT}")
    await page.locator("#state").filter(has_text="grounding").wait_for(timeout=5000)
    await poll(page, "Number(document.getElementById('c-hr').dataset.points) > 250")
    # the 15 s without data is drawn as a break in each line, never bridged
    runs = await page.evaluate("Number(document.getElementById('c-hr').dataset.runs)")
    assert runs == 2
    # a laptop (the whole page) and a tablet held upright (its first screen: what comes next,
    # the numbers and the controls, Pause among them, before the charts)
    await page.set_viewport_size({"width": 1366, "height": 900})
    await page.wait_for_timeout(600)  # a chart redraw at the new size
    await page.screenshot(path=str(shots / "therapist.png"), full_page=True)
    await page.set_viewport_size({"width": 768, "height": 1024})
    await page.wait_for_timeout(600)
    await page.screenshot(path=str(shots / "therapist-tablet.png"))
    await page.close()

    overview.set_default_timeout(5000)
    await overview.set_viewport_size({"width": 1366, "height": 330})
    await overview.wait_for_selector("tr[data-client='c-a02e']")
    await overview.screenshot(path=str(shots / "overview.png"))
    await overview.close()

    page = await client_page(stack)
    await page.wait_for_selector("#pacer:not([data-phase='idle'])")
    await page.wait_for_timeout(600)
    await page.screenshot(path=str(shots / "client.png"))
    await page.close()
    for name in ("therapist.png", "therapist-tablet.png", "client.png", "overview.png"):
        assert (shots / name).stat().st_size > 10_000
