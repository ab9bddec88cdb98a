"""The therapist's breathing-rate check card (web/static/assessment.js) in a real Chromium over a
real Mosquitto, fed the service's own `assessment` payloads from a real AssessmentSession on a
simulated client: offer and stop send the commands, the status says the block, rate and time
left, the table holds every scored block's criteria, the bars and the HR curve over the pacer are
drawn; controls pressable at every size, axe clean."""

from __future__ import annotations

import time

import pytest

from biofeedback.devices.physiology import Physiology, SimProfile
from biofeedback.exposure.assessment import (
    AssessmentProtocol,
    AssessmentSession,
    Beats,
    OfferAssessment,
    StopAssessment,
)
from biofeedback.exposure.messages import Consent, Role
from biofeedback.service import payloads
from biofeedback.service.topics import Topic
from biofeedback.signal.resonance import ResonanceScorer
from tests.web.invariants import CONTROLS, assert_no_axe_violations, assert_pressable_at_sizes
from tests.web.test_browser import CLIENT, Stack, poll, stack
from tests.web.test_therapist_browser import detail_page, metrics

__all__ = ["stack"]  # the fixture, used by name

pytestmark = [pytest.mark.browser, pytest.mark.mosquitto]


def simulated(t0: float, until_s: float) -> tuple[AssessmentSession, list[tuple[float, float]]]:
    """A simulated client (resonance 5.5 /min) through the assessment from t0 for until_s."""
    m = Physiology(start_t=t0 - 30, seed=2, profile=SimProfile(resonance_bpm=5.5))
    s = AssessmentSession(AssessmentProtocol(), t=t0, client_id=CLIENT, scorer=ResonanceScorer())
    s.handle(OfferAssessment(t0, Role.THERAPIST))
    s.handle(Consent(t0 + 1, Role.CLIENT))
    hr: list[tuple[float, float]] = []
    t = t0 + 1
    while t < t0 + until_s:
        t += 1
        g = s.guidance()
        b = None if g is None else g.breathing
        m.set_stimulus(
            exposure=0.0,
            paced_breathing_bpm=None if b is None else b.rate_bpm,
            pacer_t0=None if g is None else g.start_t,
            pacer_inhale_share=0.4,
        )
        beats = tuple((x.t, round(x.rr_s * 1000, 3), False) for x in m.beats_until(t))
        hr += [(x[0], 60000.0 / x[1]) for x in beats]
        s.handle(Beats(t, beats))
    return s, hr


async def test_offer_chart_table_and_stop(stack: Stack) -> None:
    page = await detail_page(stack)
    assert await page.locator("#b-assess-stop").is_disabled()
    await page.click("#b-assess-offer")
    _, body = await stack.next_command()
    assert body["cmd"] == "assessment_offer"
    assert body["role"] == "therapist"

    # the service says: running, block 2 at 6.0 /min, block 1 scored
    now = time.time()
    t0 = now - 262
    s, hr = simulated(t0, 262)  # block 2 spans settle + 60 s and more: scored at a stop
    for t, bpm in hr[-150:]:
        stack.publish(Topic.METRICS, metrics(t, bpm, 40.0))
    snap = s.snapshot()
    assert snap.block_index == 1
    stack.publish(Topic.ASSESSMENT, payloads.assessment(CLIENT, snap, (), None, s.protocol))
    await poll(
        page, "document.getElementById('assess-status').textContent.includes('Block 2 of 5')"
    )
    status = await page.locator("#assess-status").inner_text()
    assert "6.0 /min" in status
    assert " s left" in status
    rows = await page.locator("#assess-blocks tbody tr").all_inner_texts()
    assert len(rows) == 1
    assert rows[0].startswith("6.5")
    await poll(page, "Number(document.getElementById('c-assess-hr').dataset.points) > 20")
    for cid in ("c-assess-bars", "c-assess-hr"):
        inked = await page.evaluate(
            f"""(() => {{ const c = document.getElementById('{cid}');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }})()"""
        )
        assert inked > 200, cid
    assert await page.locator("#b-assess-offer").is_disabled()
    await assert_pressable_at_sizes(page, CONTROLS, what="detail page, assessment running")
    await assert_no_axe_violations(page, what="detail page, assessment running")
    for w, h in ((390, 844), (820, 1180), (1366, 900)):
        await page.set_viewport_size({"width": w, "height": h})
        over = await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert over <= 0, f"the card is wider than the page at {w}x{h}"

    # stop: the command goes; the stopped result shows the chosen rate, partial
    await page.click("#b-assess-stop")
    _, body = await stack.next_command()
    assert body["cmd"] == "assessment_stop"
    evs = s.handle(StopAssessment(s.t, Role.THERAPIST))
    stack.publish(
        Topic.ASSESSMENT, payloads.assessment(CLIENT, s.snapshot(), evs, None, s.protocol)
    )
    await poll(page, "document.getElementById('assess-status').textContent.includes('partial')")
    status = await page.locator("#assess-status").inner_text()
    assert "Resonance rate: 6.5 /min" in status or "Resonance rate: 6.0 /min" in status
    assert len(await page.locator("#assess-blocks tbody tr").all()) == 2
    assert await page.locator("#assess-blocks tbody tr.chosen").count() == 1
    await page.close()
