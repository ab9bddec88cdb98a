"""`biofeedback demo --clients 3` end to end: three simulated people, each with their own
strap, baseline, reactivity and simulated client and therapist, in one service; watched over
MQTT by a plain client and on the therapist's overview; Ctrl-C ends all of them."""

from __future__ import annotations

import json
import os
import queue
import signal
import statistics
import time
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.e2e.demo_proc import run_demo
from tests.support import port_free, require_binary

pytestmark = [pytest.mark.slow, pytest.mark.mosquitto]

SECRET = "e2e-group-secret"
CLIENTS = {"client-001", "client-002", "client-003"}


def test_demo_of_a_group_of_three(tmp_path: Any) -> None:
    require_binary("mosquitto", "mosquitto")
    with run_demo(
        tmp_path, "--clients", "3", speed=20, broker="mosquitto", secret=SECRET, within_s=40
    ) as demo:
        proc, http, mqtt_port = demo.proc, demo.http, demo.mqtt_port
        login = json.loads(demo.observer.read_text())
        q: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="e2e-group")
        c.username_pw_set(login["username"], login["password"])
        c.on_message = lambda _c, _u, m: q.put((m.topic, json.loads(m.payload or b"{}")))
        c.on_connect = lambda client, *_: client.subscribe("biofeedback/v1/#", qos=1)
        c.connect("127.0.0.1", mqtt_port)
        c.loop_start()
        rr: dict[str, list[float]] = {cid: [] for cid in CLIENTS}
        exposed: set[str] = set()
        consents: dict[str, int] = {}
        deadline = time.monotonic() + 150
        try:
            while time.monotonic() < deadline and not (
                exposed == CLIENTS and all(len(v) >= 30 for v in rr.values())
            ):
                try:
                    topic, payload = q.get(timeout=1)
                except queue.Empty:
                    assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                    continue
                _, _, client, kind, *_rest = topic.split("/")
                assert client in CLIENTS, topic
                if kind == "beat" and payload.get("rr_ms") is not None:
                    rr[client].append(payload["rr_ms"])
                elif kind == "event" and payload.get("to_state") == "exposing":
                    exposed.add(client)
                elif kind == "cmd" and payload.get("cmd") == "consent":
                    consents[client] = consents.get(client, 0) + 1
        finally:
            c.loop_stop()
            c.disconnect()
        assert all(len(v) >= 30 for v in rr.values()), {k: len(v) for k, v in rr.items()}
        # each client's own simulated people moved its own session on (the real command path)
        assert exposed == CLIENTS, (exposed, consents)
        # three different people: their resting heart rates differ
        means = sorted(statistics.fmean(v[:30]) for v in rr.values())
        assert means[1] - means[0] > 15 or means[2] - means[1] > 15, means

        # the therapist's overview lists the group
        import asyncio

        import aiohttp

        async def overview() -> list[dict[str, Any]]:
            base = f"http://127.0.0.1:{http}"
            async with (
                aiohttp.ClientSession() as s,
                s.get(f"{base}/api/overview", headers={"Authorization": f"Bearer {SECRET}"}) as r,
            ):
                assert r.status == 200
                rows: list[dict[str, Any]] = (await r.json())["clients"]
                return rows

        rows = asyncio.run(overview())
        assert {r.get("client") or r.get("client_id") or r.get("id") for r in rows} == CLIENTS, rows

        os.killpg(proc.pid, signal.SIGINT)
        _out, err = proc.communicate(timeout=40)
        assert proc.returncode == 0, err
        assert "Traceback" not in err, err
        assert port_free(http)
        assert port_free(mqtt_port)
        for cid in CLIENTS:
            assert list((tmp_path / "recordings" / cid).iterdir()), f"{cid} was not recorded"
        assert not list((tmp_path / "baselines").glob("*.json")), "the demo saved a baseline"


@pytest.mark.browser
def test_demo_of_six_shows_six_clients_on_one_overview(tmp_path: Any) -> None:
    """The issue's check, in a real Chromium: `demo --clients 6`, the therapist signs in with
    the link and the overview shows six client rows, each with a live heart rate."""
    require_binary("mosquitto", "mosquitto")
    chromium = require_binary("chromium", "chromium")
    with run_demo(
        tmp_path,
        *("--clients", "6", "--no-actor"),
        speed=5,
        broker="mosquitto",
        mqtt_port=0,
        secret=SECRET,
        within_s=40,
    ) as demo:
        proc, http = demo.proc, demo.http
        import asyncio

        from playwright.async_api import async_playwright

        from tests.web.test_browser import CHROMIUM_ARGS

        async def overview() -> tuple[list[str], list[str]]:
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
                try:
                    page = await browser.new_page(viewport={"width": 1400, "height": 900})
                    await page.goto(f"http://127.0.0.1:{http}/?token={SECRET}")
                    rows = page.locator("tbody tr")
                    deadline = time.monotonic() + 60
                    while True:
                        texts = await rows.all_inner_texts()
                        named = [t for t in texts if "client-0" in t]
                        if len(named) == 6 and all("bpm" in t for t in named):
                            break
                        assert time.monotonic() < deadline, texts
                        await page.wait_for_timeout(500)
                    shots = tmp_path / "overview-6.png"
                    await page.screenshot(path=str(shots))
                    links = await page.locator("tbody tr a").all_inner_texts()
                    return named, links
                finally:
                    await browser.close()

        rows, links = asyncio.run(overview())
        assert sorted(links) == [f"client-{i:03d}" for i in range(1, 7)], links
        assert len(rows) == 6
        os.killpg(proc.pid, signal.SIGINT)
        _out, err = proc.communicate(timeout=40)
        assert proc.returncode == 0, err
        assert "Traceback" not in err, err
