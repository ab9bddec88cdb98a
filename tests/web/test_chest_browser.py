"""The therapist's ECG strip and breathing trace (web/static/chest.js) in a real Chromium.

The test plays the service over a real Mosquitto with the service's own encoders (payloads.ecg,
payloads.breathing, payloads.movement, payloads.guidance): the card appears only when the strap
streams raw data, draws the last 10 s of ECG and the chest trace beside the pacer, says the rate
and how closely the pacer is followed, lists breath holds; every control stays pressable at the
four sizes and axe finds nothing. The client's screen never gets any of it (hub and browser).
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

import pytest

from biofeedback.exposure.messages import BreathingPattern, GroundingTechnique, Guidance
from biofeedback.service import payloads
from biofeedback.service.topics import Topic, topic
from biofeedback.signal.chest_breathing import (
    Breath,
    BreathingEvent,
    BreathingEventKind,
    BreathingUpdate,
)
from biofeedback.signal.movement import MovementLevel, MovementSample
from biofeedback.web.hub import Hub
from tests.web.invariants import CONTROLS, assert_no_axe_violations, assert_pressable_at_sizes
from tests.web.test_browser import CLIENT, Stack, client_page, poll, stack
from tests.web.test_therapist_browser import detail_page

__all__ = ["stack"]  # the fixture, used by name

pytestmark = [pytest.mark.browser, pytest.mark.mosquitto]

FS = 130.0


def ecg_batches(t0: float, seconds: int) -> list[dict[str, Any]]:
    """One `ecg` message a second of a 70 bpm synthetic ECG (R waves of 1.2 mV)."""
    out = []
    for s in range(seconds):
        t = t0 + s
        uv = []
        for i in range(130):
            x = (t + i / FS) % (60 / 70)
            uv.append(round(1200 * math.exp(-(((x - 0.3) / 0.012) ** 2)) - 80))
        out.append(payloads.ecg(CLIENT, device="H10", t=t, dt_s=1 / FS, uv=uv))
    return out


def breathing(t: float, *, event: bool = False, guided: bool = True) -> dict[str, Any]:
    tt = [t - 30 + 0.2 * i for i in range(150)]
    y = [6 * math.sin(2 * math.pi * (x - t) / 10) for x in tt]
    ev = (
        (
            BreathingEvent(
                t, BreathingEventKind.BREATH_HOLD, t - 22, "no breath for 22 s (usually 10 s)"
            ),
        )
        if event
        else ()
    )
    return payloads.breathing(
        CLIENT,
        "H10",
        BreathingUpdate(t, 6.1, (Breath(t - 10, t, 8.0),), ev, True),
        events=ev,
        adherence=0.87 if guided else None,
        pacer_bpm=6.0 if guided else None,
        trace_t=tt,
        trace_mg=y,
    )


def guidance(t: float) -> dict[str, Any]:
    g = Guidance(
        t - 60,
        GroundingTechnique.PACED_BREATHING,
        BreathingPattern(4.0, 0.0, 6.0, 0.0),
        "Breathe with the circle",
    )
    return payloads.guidance(CLIENT, t, g)


async def _card_shown(stack: Stack, page: Any, *, event: bool = False) -> float:
    t = time.time()
    stack.publish(Topic.GUIDANCE, guidance(t))
    for p in ecg_batches(t - 12, 12):
        stack.publish(Topic.ECG, p)
    stack.publish(
        Topic.MOVEMENT,
        payloads.movement(CLIENT, "H10", MovementSample(t, 4.0, MovementLevel.STILL, False)),
    )
    stack.publish(Topic.BREATHING, breathing(t, event=event))
    await poll(page, "!document.getElementById('chest-card').hidden")
    await poll(page, "document.getElementById('v-breath-rate').textContent.includes('6.1')")
    return t


async def test_the_card_is_hidden_for_a_strap_without_raw_data(stack: Stack) -> None:
    page = await detail_page(stack)
    assert await page.locator("#chest-card").is_hidden()
    await page.close()


async def test_ecg_strip_and_breathing_trace_beside_the_pacer(stack: Stack) -> None:
    page = await detail_page(stack)
    await _card_shown(stack, page, event=True)
    # the strip holds the last 10 s of samples, not more
    span = await page.evaluate(
        "(() => { const e = Chest.state.ecg; return e[e.length - 1][0] - e[0][0]; })()"
    )
    assert 9.5 <= span <= 10.0
    # both canvases have ink (something was drawn)
    for cid in ("c-ecg", "c-breath"):
        inked = await page.evaluate(
            f"""(() => {{ const c = document.getElementById('{cid}');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }})()"""
        )
        assert inked > 200, cid
    line = await page.locator("#breath-line").inner_text()
    assert "Pacer 6.0 /min" in line
    assert "87 %" in line
    assert await page.locator("#pacer-legend").is_visible()
    events = await page.locator("#breath-events li").all_inner_texts()
    assert len(events) == 1
    assert events[0].startswith("Breath held")
    await page.close()


async def test_pressable_and_axe_clean_with_the_card_at_every_size(stack: Stack) -> None:
    page = await detail_page(stack)
    await _card_shown(stack, page, event=True)
    await assert_pressable_at_sizes(page, CONTROLS, what="client page with ECG", min_controls=10)
    for w, h in ((390, 844), (1366, 900)):
        await page.set_viewport_size({"width": w, "height": h})
        await assert_no_axe_violations(page, what=f"client page with ECG at {w}x{h}")
        # the card fits the width (no canvas wider than the page)
        over = await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert over <= 0
    await page.close()


async def test_the_clients_screen_never_gets_breathing_events(stack: Stack) -> None:
    client = await client_page(stack)
    therapist = await detail_page(stack)
    await _card_shown(stack, therapist, event=True)
    await therapist.close()
    text = await client.locator("body").inner_text()
    assert "Breath held" not in text
    assert "ECG" not in text
    await client.close()


def test_hub_sends_raw_data_to_therapist_pages_only() -> None:
    hub = Hub()
    t = time.time()
    with hub.subscribe("therapist", CLIENT) as ther, hub.subscribe("client", CLIENT) as cli:
        for kind, body in (
            (Topic.ECG, ecg_batches(t, 1)[0]),
            (Topic.BREATHING, breathing(t, event=True)),
            (
                Topic.MOVEMENT,
                payloads.movement(CLIENT, "H10", MovementSample(t, 80, MovementLevel.MOVING, True)),
            ),
        ):
            assert hub.ingest(topic(CLIENT, kind), json.dumps(body))
        got = [json.loads(ther.queue.get_nowait()) for _ in range(ther.queue.qsize())]
        assert [m["kind"] for m in got] == ["ecg", "breathing", "movement"]
        assert got[1]["view"]["events"][0]["kind"] == "breath_hold"
        assert got[2]["view"]["moving"] is True
        assert cli.queue.qsize() == 0


def test_hub_views_survive_junk() -> None:
    hub = Hub()
    t = time.time()
    junk: dict[str, Any] = {
        "v": 1,
        "t": t,
        "client": CLIENT,
        "uv": ["x", None, 1e300, True],
        "dt_s": -1,
        "trace_mg": "no",
        "events": [{"kind": "alarm"}, 3],
        "rate_bpm": math.inf,
    }
    with hub.subscribe("therapist", CLIENT) as ther:
        for kind in (Topic.ECG, Topic.BREATHING, Topic.MOVEMENT):
            assert hub.ingest(topic(CLIENT, kind), json.dumps(junk).replace("Infinity", "1e999"))
        got = [json.loads(ther.queue.get_nowait()) for _ in range(ther.queue.qsize())]
    ecg, br, mv = (m["view"] for m in got)
    assert ecg["dt_s"] is None
    assert ecg["uv"] == [None, None, None, None]
    assert br["trace_mg"] == []
    assert br["events"] == []
    assert br["rate_bpm"] is None
    assert mv["level"] is None
