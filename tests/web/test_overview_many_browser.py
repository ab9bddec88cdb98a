"""The overview with many clients in a real browser: cheap rows keep every promise (issue 14).

With hundreds of clients the overview writes rows on screen first and draws sparklines only for
them, and each row is a grid box laid out on its own (a table was laid out whole for any change).
What a person or a screen reader reads must not suffer for it:

- rows off screen are written a few per frame, so every row's numbers stay true within seconds
  (for assistive technology and find-in-page); a row scrolled into view shows its sparkline at
  once, with the points that arrived while it was off screen;
- a client far down the list who pauses is announced and moves to the top, drawn;
- the order is still paused, rising, signal trouble, the rest (id order within a group);
- the table is still a table to assistive technology (Chromium's own accessibility tree);
- at phone, tablet and laptop sizes.

Real Mosquitto, real dashboard, real headless Chromium; the test plays 40 clients' services.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from typing import Any

import pytest

from biofeedback.service import payloads
from biofeedback.service.topics import Topic
from biofeedback.signal.measures import Arousal, ArousalBasis
from tests.web.invariants import VIEWPORTS
from tests.web.test_browser import SECRET, Stack, metrics, poll, session, shots, stack

__all__ = ["shots", "stack"]  # the fixtures, used by name

pytestmark = [pytest.mark.browser, pytest.mark.mosquitto]

N = 40
CLIENTS = [f"m-{i:02d}" for i in range(N)]
PAUSED = "m-07"  # paused from the start
LATE = "m-33"  # far down the list: off screen until scrolled to, or until it pauses
TROUBLE = "m-21"  # signal quality 30 %
PAUSER = "m-38"  # pauses during the test, never scrolled to


def arousal_of(client: str, t: float, value: float) -> dict[str, Any]:
    a = Arousal(t=t, value=value, confidence=0.9, fast=value, slow=value, basis=ArousalBasis.HR_HRV)
    return payloads.arousal(client, a)


def level(client: str, t: float) -> float:
    """Calm and level: nobody's arousal rises (the rising group is the standalone test's)."""
    return 25.0 + 0.5 * math.sin(t / 20.0 + CLIENTS.index(client))


def publish(stack: Stack, client: str, kind: Topic, body: dict[str, Any]) -> None:
    stack.publish(kind, {**body, "client": client}, client=client)


async def feed(stack: Stack, hr: dict[str, float], stop: asyncio.Event) -> None:
    """Every client's live samples once a second, as N services would publish them."""
    while not stop.is_set():
        t = time.time()
        for c in CLIENTS:
            quality = 0.3 if c == TROUBLE else 0.95
            publish(stack, c, Topic.METRICS, metrics(t, hr[c], 40.0, quality))
            publish(stack, c, Topic.AROUSAL, arousal_of(c, t, level(c, t)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)


async def open_group(stack: Stack, size: tuple[int, int]) -> tuple[Any, float]:
    """N clients with 20 s of history each, and the overview open at `size`."""
    t0 = time.time()
    for c in CLIENTS:
        publish(stack, c, Topic.STATUS, payloads.online_status(c, t0 - 30, battery_pct=80))
        extra: dict[str, Any] = {}
        if c == PAUSED:
            extra.update(pause_reason="arousal", pause_reasons=["arousal"])
        publish(
            stack,
            c,
            Topic.SESSION,
            session(t0 - 30, "grounding" if c == PAUSED else "exposing", 1, **extra),
        )
        for k in range(10):
            t = t0 - 20 + 2 * k
            publish(stack, c, Topic.AROUSAL, arousal_of(c, t, level(c, t)))
    page = await stack.browser.new_page(viewport={"width": size[0], "height": size[1]})
    await page.goto(f"{stack.base}/?token={SECRET}")
    await page.wait_for_selector("#conn[data-state='live']")
    await poll(page, f"document.querySelectorAll('#clients tbody tr').length === {N}", within=30)
    return page, t0


def spark(client: str) -> str:
    return f"document.querySelector(\"tr[data-client='{client}'] canvas.spark\")"


async def on_screen(page: Any, client: str) -> bool:
    return bool(
        await page.evaluate(
            f"""() => {{
                 const r = document.querySelector("tr[data-client='{client}']")
                   .getBoundingClientRect();
                 return r.bottom > 0 && r.top < innerHeight;
               }}"""
        )
    )


async def row_order(page: Any) -> list[str]:
    return list(
        await page.evaluate(
            "() => [...document.querySelectorAll('#clients tbody tr')].map(r => r.dataset.client)"
        )
    )


@pytest.mark.parametrize("size", VIEWPORTS, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_rows_off_screen_stay_true_and_catch_up_when_scrolled_into_view(
    stack: Stack, size: tuple[int, int]
) -> None:
    hr = {c: 60.0 + i for i, c in enumerate(CLIENTS)}
    page, _ = await open_group(stack, size)
    stop = asyncio.Event()
    feeder = asyncio.create_task(feed(stack, hr, stop))
    try:
        # paused first, signal trouble next, then the rest in id order
        rest = [c for c in CLIENTS if c not in (PAUSED, TROUBLE)]
        assert not await on_screen(page, PAUSER)
        assert await page.evaluate(f"{spark(PAUSER)}.dataset.points === undefined")
        await poll(
            page,
            f"document.querySelector('#clients tbody tr').dataset.client === '{PAUSED}'",
            within=30,
        )
        deadline = time.monotonic() + 30
        while (got := await row_order(page)) != [PAUSED, TROUBLE, *rest]:
            assert time.monotonic() < deadline, got
            await asyncio.sleep(0.1)
        assert not await on_screen(page, LATE), "the test needs a row off screen"
        # on screen: drawn, with the 20 s of history and the live points
        await poll(page, f"Number({spark(PAUSED)}.dataset.points) >= 10", within=30)
        # the arousal bar says what the number beside it says; its mark is the pause threshold
        bar = await page.evaluate(
            f"""() => {{
                 const row = document.querySelector("tr[data-client='{PAUSED}']");
                 const style = getComputedStyle(row.querySelector('.meter'));
                 return [style.getPropertyValue('--a').trim(), style.getPropertyValue('--u').trim(),
                         row.querySelector("[data-field='arousal']").textContent];
               }}"""
        )
        assert bar[1] == "70%", bar  # the session's upper threshold
        assert round(float(bar[0].rstrip("%"))) == int(bar[2]), bar
        # off screen: its numbers are written all the same, within seconds ...
        late = page.locator(f"tr[data-client='{LATE}'] [data-field='hr']")
        assert await late.text_content() != "123 bpm"  # read before the feeder can send it
        hr[LATE] = 123.0
        hr_cell = f"document.querySelector(\"tr[data-client='{LATE}'] [data-field='hr']\")"
        await poll(page, f"{hr_cell}.textContent === '123 bpm'", within=30)
        assert await late.text_content() == "123 bpm"
        # ... but its sparkline is not drawn while nobody can see it
        assert await page.evaluate(f"{spark(LATE)}.dataset.points === undefined")
        # scrolled into view: drawn at once, with every point that came while it was away
        await page.locator(f"tr[data-client='{LATE}'] td.who a").scroll_into_view_if_needed()
        await poll(page, f"Number({spark(LATE)}.dataset.points) >= 12", within=30)
        drawn = await page.evaluate(
            f"""() => {{
                 const c = {spark(LATE)};
                 const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                 let ink = 0;
                 for (let i = 3; i < px.length; i += 4) if (px[i] > 0) ink++;
                 return ink;
               }}"""
        )
        assert drawn > 100, drawn  # a line, not an empty canvas
        box = await page.locator(f"tr[data-client='{LATE}'] canvas.spark").bounding_box()
        assert box is not None
        assert box["height"] == 56
        assert 200 <= box["width"] <= 240
        await page.evaluate("window.scrollTo(0, 0)")
        await poll(page, "window.scrollY === 0", within=30)

        # a client far down the list pauses: announced, moved up into the paused group, drawn
        publish(
            stack,
            PAUSER,
            Topic.SESSION,
            session(time.time(), "paused", 1, pause_reason="client", pause_reasons=["client"]),
        )
        item = page.locator(f"#alert-list li[data-client='{PAUSER}']")
        await item.wait_for(timeout=30_000)
        assert f"{PAUSER} paused (client)" in await item.inner_text()
        # into the paused group, after m-07 (id order within a group): the second row
        expected = [PAUSED, PAUSER, TROUBLE, *[c for c in rest if c != PAUSER]]
        deadline = time.monotonic() + 30
        while (got := await row_order(page)) != expected:
            assert time.monotonic() < deadline, got
            await asyncio.sleep(0.05)
        assert await on_screen(page, PAUSER)
        row = page.locator(f"tr[data-client='{PAUSER}']")
        assert "alerted" in (await row.get_attribute("class") or "")
        assert await row.locator("[data-field='attention']").inner_text() == "Paused"
        assert (await page.title()).startswith("(2 paused)")
        await poll(page, f"Number({spark(PAUSER)}.dataset.points) >= 10", within=30)
        # it resumes: back down to its place in id order (a row moved down the list)
        publish(stack, PAUSER, Topic.SESSION, session(time.time(), "exposing", 1))
        deadline = time.monotonic() + 30
        while (got := await row_order(page)) != [PAUSED, TROUBLE, *rest]:
            assert time.monotonic() < deadline, got
            await asyncio.sleep(0.05)
        assert (await page.title()).startswith("(1 paused)")
    finally:
        stop.set()
        await feeder
        await page.close()


async def test_the_overview_is_still_a_table_to_assistive_technology(stack: Stack) -> None:
    """Rows drawn as grid boxes keep the table's roles in Chromium's accessibility tree."""
    page, _ = await open_group(stack, (1366, 900))
    try:
        cdp = await page.context.new_cdp_session(page)
        tree = await cdp.send("Accessibility.getFullAXTree")
        roles: dict[str, int] = {}
        headers: list[str] = []
        for node in tree["nodes"]:
            role = (node.get("role") or {}).get("value", "")
            roles[role] = roles.get(role, 0) + 1
            if role == "columnheader":
                headers.append((node.get("name") or {}).get("value", ""))
        assert roles.get("table") == 1, roles
        assert roles.get("row") == N + 1, roles  # the header row and one per client
        assert roles.get("cell") == 12 * N, roles  # every row's cells, on screen or not
        assert headers[:3] == ["Needs attention", "Client", "Session"], headers
        assert len(headers) == 12, headers
    finally:
        await page.close()
