"""The overview's WebSocket is read in a worker, off the page's main thread (issue 14).

With hundreds of clients the page spends 10-30 ms in each of its frames; a socket on the main
thread had every message that arrived then wait for the frame. The feed worker
(`static/overview-feed.js`) reads and parses the socket as messages come, and hands the rows on in
batches: at once when someone pauses or resumes, otherwise at most every 50 ms. What that must not
change, checked here in a real Chromium against a real Mosquitto and dashboard:

- every row the hub sends reaches the page, in order: a batch of several rows of one client keeps
  every arousal point (the sparkline's trail), none merged away;
- the page's main thread being busy does not lose anything, and a pause still comes through;
- a browser without workers, or a worker that cannot start, leaves the page reading the socket
  itself, with the same behaviour.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import pytest

from biofeedback.service import payloads
from biofeedback.service.topics import Topic
from tests.web.test_browser import SECRET, Stack, poll, session, shots, stack
from tests.web.test_overview_many_browser import arousal_of, publish, spark

__all__ = ["shots", "stack"]  # the fixtures, used by name

pytestmark = [pytest.mark.browser, pytest.mark.mosquitto]

WHO = "f-01"
OTHER = "f-02"
FEED = "/static/overview-feed.js"


def points(client: str) -> str:
    return f"Number({spark(client)}.dataset.points)"


async def open_overview(stack: Stack, *, workers: str = "worker") -> Any:
    t0 = time.time()
    for c in (WHO, OTHER):
        publish(stack, c, Topic.STATUS, payloads.online_status(c, t0 - 10, battery_pct=80))
        publish(stack, c, Topic.SESSION, session(t0 - 10, "exposing", 1))
        publish(stack, c, Topic.AROUSAL, arousal_of(c, t0 - 5, 30.0))
    page = await stack.browser.new_page(viewport={"width": 1366, "height": 900})
    if workers == "no-worker":
        await page.add_init_script("window.Worker = undefined;")
    elif workers == "worker-not-served":

        async def not_served(route: Any) -> None:
            await route.fulfill(status=404, body="not here")

        await page.route(f"**{FEED}", not_served)
    await page.goto(f"{stack.base}/?token={SECRET}")
    await page.wait_for_selector("#conn[data-state='live']")
    await poll(page, "document.querySelectorAll('#clients tbody tr').length === 2", within=30)
    await poll(page, f"{points(WHO)} >= 1", within=30)
    return page


async def overview_reader(stack: Stack, seen: list[float]) -> None:
    """The overview as a plain WebSocket client reads it: each new arousal time of WHO."""
    headers = {"Origin": stack.base, "Authorization": f"Bearer {SECRET}"}
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{stack.base}/ws", headers=headers) as ws,
    ):
        async for msg in ws:
            m = json.loads(msg.data)
            rows = m.get("summaries", []) if m.get("type") == "summaries" else m.get("clients", [])
            for s in rows:
                t = s.get("arousal_t")
                if s["client"] == WHO and t is not None and (not seen or seen[-1] < t):
                    seen.append(t)


async def test_the_socket_is_read_in_a_worker_and_every_row_reaches_the_page(stack: Stack) -> None:
    page = await open_overview(stack)
    seen: list[float] = []
    reader = asyncio.create_task(overview_reader(stack, seen))
    try:
        assert [w.url for w in page.workers if w.url.endswith(FEED)], page.workers
        await poll(page, f"{points(WHO)} >= 1", within=30)
        before = await page.evaluate(points(WHO))
        await asyncio.sleep(0.5)  # the plain reader has its overview
        n_before = len(seen)
        # the page's main thread busy for 1.5 s while 12 new values arrive 30 ms apart: the hub
        # sends most of them in frames of their own, and the worker hands several of one client
        # on in one batch
        await page.evaluate(
            "setTimeout(() => { const end = performance.now() + 1500; "
            "while (performance.now() < end) {} }, 0)"
        )
        t0 = time.time()
        for k in range(12):
            publish(stack, WHO, Topic.AROUSAL, arousal_of(WHO, t0 + 0.03 * k, 30.0 + k))
            await asyncio.sleep(0.03)
        await asyncio.sleep(1.0)
        sent = len(seen) - n_before
        assert sent >= 6, f"the hub merged the burst into {sent} rows: the test shows nothing"
        # every row the hub sent is a point of the trail, none merged away by the worker
        await poll(page, f"{points(WHO)} === {before + sent}", within=30)
        assert await page.evaluate(points(WHO)) == before + sent
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        await page.close()


@pytest.mark.parametrize("workers", ["worker", "no-worker", "worker-not-served"])
async def test_a_pause_comes_through_with_or_without_a_worker(stack: Stack, workers: str) -> None:
    """Also when the worker cannot start: the page reads the socket itself, not "Connecting…"."""
    page = await open_overview(stack, workers=workers)
    try:
        feed = [w.url for w in page.workers if w.url.endswith(FEED)]
        assert bool(feed) is (workers == "worker"), page.workers
        paused = session(time.time(), "paused", 1, pause_reason="client", pause_reasons=["client"])
        publish(stack, OTHER, Topic.SESSION, paused)
        item = page.locator(f"#alert-list li[data-client='{OTHER}']")
        await item.wait_for(timeout=30_000)
        assert f"{OTHER} paused (client)" in await item.inner_text()
        await poll(page, "document.title.startsWith('(1 paused)')", within=30)
        await poll(
            page,
            f"document.querySelector('#clients tbody tr').dataset.client === '{OTHER}'",
            within=30,
        )
        # live values keep coming after it, batched or not
        before = await page.evaluate(points(WHO))
        publish(stack, WHO, Topic.AROUSAL, arousal_of(WHO, time.time(), 44.0))
        await poll(page, f"{points(WHO)} === {before + 1}", within=30)
        arousal = page.locator(f"tr[data-client='{WHO}'] [data-field='arousal']")
        await poll(
            page,
            f"document.querySelector(\"tr[data-client='{WHO}'] [data-field='arousal']\")"
            ".textContent === '44'",
            within=30,
        )
        assert await arousal.text_content() == "44"
    finally:
        await page.close()
