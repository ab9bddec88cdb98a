"""`biofeedback dashboard --mqtt-url`: the dashboard alone, on a clinic's broker, for a group.

Real parts: Mosquitto with TLS, passwords and the example ACL (`config/mosquitto/acl.example`),
the dashboard logged in as the broker's `dashboard` user with its password in a 0600 file, the
test playing six clients' services as the `service` user, and a real headless Chromium:

- the overview sorts the group by who needs attention (paused, arousal rising, signal trouble,
  the rest; id order within a group), draws a 240x56 sparkline, and a new pause shows up in a
  polite live region with its row moved to the top, no sound;
- every control can be pressed and axe-core finds nothing at phone, tablet and laptop sizes;
- a therapist's pause travels to the client's service through the broker;
- the command line: the password never on it (a file only its owner may read, or the
  environment), clear refusals, the sign-in link kept out of a non-terminal's output.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from biofeedback.cli import build_parser
from biofeedback.errors import BrokerError, ConfigError
from biofeedback.service import payloads
from biofeedback.service.mqtt import IncomingMessage, MqttLink
from biofeedback.service.topics import Topic, topic
from biofeedback.signal.measures import Arousal, ArousalBasis
from biofeedback.web.standalone import DashboardOptions, options_from_args, serve_dashboard
from tests.brokers import BrokerHandle, mosquitto_secure
from tests.support import REPO_ROOT, free_port, require_binary
from tests.web.invariants import (
    CONTROLS,
    VIEWPORTS,
    assert_no_axe_violations,
    assert_pressable_at_sizes,
)
from tests.web.test_browser import CHROMIUM_ARGS, metrics, poll, session, shots

__all__ = ["shots"]  # the fixture, used by name

pytestmark = [pytest.mark.browser, pytest.mark.mosquitto]

CLIENTS = ("c-01", "c-02", "c-03", "c-04", "c-05", "c-06")
PAUSED, RISING, TROUBLE = "c-05", "c-03", "c-06"
# paused first, then rising, then signal trouble, then the rest in id order
EXPECTED = [PAUSED, RISING, TROUBLE, "c-01", "c-02", "c-04"]


def args_for(broker: BrokerHandle, password_file: Path, *extra: str) -> Any:
    """The parsed command line of `biofeedback dashboard` for this broker."""
    assert broker.ca_file is not None
    return build_parser().parse_args(
        [
            "dashboard",
            "--mqtt-url",
            broker.url,
            "--ca-file",
            broker.ca_file,
            "--mqtt-password-file",
            str(password_file),
            "--http-port",
            "0",
            *extra,
        ]
    )


def password_file(folder: Path, password: str, mode: int = 0o600) -> Path:
    path = folder / "dashboard.password"
    path.write_text(password + "\n")
    path.chmod(mode)
    return path


def arousal_of(client: str, t: float, value: float) -> dict[str, Any]:
    a = Arousal(t=t, value=value, confidence=0.9, fast=value, slow=value, basis=ArousalBasis.HR_HRV)
    return payloads.arousal(client, a)


def level(client: str, t: float, t0: float) -> float:
    """Each client's arousal at session time t: one climbs 18 points a minute above the recovery
    threshold (45), the rest drift calmly (at most ~6 points a minute)."""
    if client == RISING:
        return min(66.0, 46.0 + 0.3 * (t - t0))
    return 25.0 + 1.0 * math.sin(t / 10.0 + CLIENTS.index(client))


@dataclass
class Group:
    base: str
    login: str
    service: MqttLink
    browser: Any
    commands: asyncio.Queue[IncomingMessage] = field(default_factory=asyncio.Queue)

    def publish(self, client: str, kind: Topic, body: dict[str, Any]) -> None:
        payloads.validate(str(kind), body)
        self.service.publish_kind(client, kind, body)


@pytest.fixture
async def group(tmp_path: Path) -> AsyncIterator[Group]:
    """Six clients on a TLS + password + ACL Mosquitto, read by `biofeedback dashboard`."""
    chromium = require_binary("chromium", "chromium")
    from playwright.async_api import async_playwright

    (tmp_path / "broker").mkdir()
    async with mosquitto_secure(tmp_path / "broker") as broker:
        opts = options_from_args(
            args_for(broker, password_file(tmp_path, broker.users["dashboard"])), env={}
        )
        assert opts.mqtt.username == "dashboard"
        said: list[str] = []
        ready = asyncio.Event()
        async with MqttLink(broker.settings(), "test-room-service") as service:
            await service.subscribe("biofeedback/v1/+/cmd/#", qos=1)
            dash = asyncio.create_task(
                serve_dashboard(opts, said.append, to_terminal=True, ready=ready)
            )
            try:
                async with asyncio.timeout(10):
                    await ready.wait()
                login = next(s for s in said if s.startswith("therapist dashboard:")).split()[-1]
                base = re.sub(r"/\?token=.*$", "", login)
                async with async_playwright() as pw:
                    browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
                    g = Group(base, login, service, browser)

                    async def collect() -> None:
                        async for msg in service.messages():
                            if "/cmd" in msg.topic:
                                await g.commands.put(msg)

                    async with asyncio.TaskGroup() as tg:
                        collector = tg.create_task(collect())
                        try:
                            yield g
                        finally:
                            collector.cancel()
                            await browser.close()
            finally:
                dash.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await dash


async def feed(g: Group, t0: float, stop: asyncio.Event) -> None:
    """Every client's live samples, twice a second, as six services would publish them."""
    while not stop.is_set():
        t = time.time()
        for c in CLIENTS:
            quality = 0.3 if c == TROUBLE else 0.95
            m = metrics(t, 70.0 + CLIENTS.index(c), 40.0, quality)
            g.publish(c, Topic.METRICS, {**m, "client": c})
            g.publish(c, Topic.AROUSAL, arousal_of(c, t, level(c, t, t0)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)


async def row_order(page: Any) -> list[str]:
    return list(
        await page.evaluate(
            "() => [...document.querySelectorAll('#clients tbody tr')].map(r => r.dataset.client)"
        )
    )


async def wait_order(page: Any, expected: list[str], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while (got := await row_order(page)) != expected:
        if time.monotonic() > deadline:
            raise AssertionError(f"overview order {got}, expected {expected}")
        await asyncio.sleep(0.1)


async def test_overview_of_six_clients_from_a_clinic_broker(group: Group, shots: Path) -> None:
    g = group
    t0 = time.time()
    for c in CLIENTS:
        g.publish(c, Topic.STATUS, payloads.online_status(c, t0 - 30, battery_pct=80, device="H10"))
        state = "grounding" if c == PAUSED else "exposing"
        extra: dict[str, Any] = {"client": c}
        if c == PAUSED:
            extra.update(pause_reason="arousal", pause_reasons=["arousal"])
        g.publish(c, Topic.SESSION, session(t0 - 30, state, 1, **extra))
        # the last 24 s, so the rising client already has a trend when the page opens
        for i in range(13):
            t = t0 - 24 + 2 * i
            g.publish(c, Topic.AROUSAL, arousal_of(c, t, level(c, t, t0 - 24)))
    stop = asyncio.Event()
    feeder = asyncio.create_task(feed(g, t0 - 24, stop))
    try:
        page = await g.browser.new_page(viewport={"width": 1366, "height": 900})
        await page.goto(g.login)
        await page.wait_for_selector("#conn[data-state='live']")
        await wait_order(page, EXPECTED)
        why = {
            c: await page.locator(f"tr[data-client='{c}'] [data-field='attention']").inner_text()
            for c in EXPECTED
        }
        assert why[PAUSED] == "Paused"
        assert why[RISING] == "Arousal rising"
        assert why[TROUBLE] == "Signal 30 %"
        assert [why[c] for c in ("c-01", "c-02", "c-04")] == ["—", "—", "—"]
        # a sparkline twice as wide and twice as tall as before, with the last 2 min drawn
        # (read in one go: the rows are redrawn every second, so a locator's element goes stale)
        size = await page.evaluate(
            f"""() => {{
                 const r = document.querySelector("tr[data-client='{RISING}'] canvas.spark")
                   .getBoundingClientRect();
                 return [Math.round(r.width), Math.round(r.height)];
               }}"""
        )
        assert size == [240, 56]
        await poll(
            page,
            f"Number(document.querySelector(\"tr[data-client='{RISING}'] canvas.spark\")"
            ".dataset.points) >= 13",
        )
        # nothing announced for pauses that were there before the page opened
        assert await page.locator("#alert-list li").count() == 0
        live = page.locator("#alert-log")
        assert await live.get_attribute("aria-live") == "polite"
        assert await page.locator("#alert-log #alert-list").count() == 1

        # c-02 pauses: one polite line, its row marked and moved up into the paused group
        g.publish(
            "c-02",
            Topic.SESSION,
            session(time.time(), "paused", 1, client="c-02", pause_reason="client"),
        )
        item = page.locator("#alert-list li[data-client='c-02']")
        await item.wait_for(timeout=3000)
        assert "c-02 paused (client)" in await item.inner_text()
        await wait_order(page, ["c-02", PAUSED, RISING, TROUBLE, "c-01", "c-04"], within=3)
        assert "alerted" in (
            await page.locator("tr[data-client='c-02']").get_attribute("class") or ""
        )
        assert (await page.title()).startswith("(2 paused)")
        # no sound unless the therapist turns it on
        assert not await page.locator("#chime").is_checked()

        await page.wait_for_timeout(300)
        await page.screenshot(path=str(shots / "overview-group.png"))
        await page.set_viewport_size({"width": 390, "height": 844})
        await page.wait_for_timeout(300)
        await page.screenshot(path=str(shots / "overview-group-390x844.png"))
        await page.set_viewport_size({"width": 1366, "height": 900})
        # phone, tablet and laptop: every control pressable, nothing for axe
        await assert_pressable_at_sizes(page, CONTROLS, what="overview of 6", min_controls=8)
        for width, height in VIEWPORTS:
            await page.set_viewport_size({"width": width, "height": height})
            await assert_no_axe_violations(page, what="overview of 6")
        await page.set_viewport_size({"width": 1366, "height": 900})
        await page.locator("#b-dismiss").click()
        assert await page.locator("#alert-list li").count() == 0

        # the therapist pauses c-01 from its page: the command reaches its service
        await page.goto(f"{g.base}/t/c-01")
        await page.locator("#b-pause").click()
        async with asyncio.timeout(5):
            msg = await g.commands.get()
        body = json.loads(msg.payload)
        assert msg.topic == topic("c-01", Topic.CMD)
        assert (body["cmd"], body["role"]) == ("pause", "therapist")
        await page.close()
    finally:
        stop.set()
        await feeder


# ---- the command line ------------------------------------------------------------------------


async def test_password_rules_and_clear_refusals(tmp_path: Path) -> None:
    (tmp_path / "broker").mkdir()
    async with mosquitto_secure(tmp_path / "broker") as broker:
        good = password_file(tmp_path, broker.users["dashboard"])
        # a password file others can read is refused, naming the chmod
        good.chmod(0o640)
        with pytest.raises(ConfigError, match=r"chmod 600"):
            options_from_args(args_for(broker, good), env={})
        good.chmod(0o600)
        # never in the URL
        args = args_for(broker, good)
        args.mqtt_url = broker.url.replace("mqtts://", "mqtts://dashboard:secret@")
        with pytest.raises(ConfigError, match="must not contain a password"):
            options_from_args(args, env={})
        # the environment wins over the file (the project's rule for secrets)
        env = {"BIOFEEDBACK_MQTT_PASSWORD": "from-the-environment"}
        assert options_from_args(args_for(broker, good), env=env).mqtt.password == (
            "from-the-environment"
        )
        # a wrong password: the broker's refusal, said plainly
        (tmp_path / "wrong").mkdir()
        wrong = password_file(tmp_path / "wrong", "not-the-password")
        opts = options_from_args(args_for(broker, wrong), env={})
        with pytest.raises(BrokerError, match="refused the login"):
            await serve_dashboard(opts, lambda _: None, to_terminal=True)
        # the service's login may not read the state topics under the ACL, the dashboard's may:
        # checked by the browser test above; a client's own user is not a dashboard either
        assert isinstance(opts, DashboardOptions)


async def test_cli_serves_without_the_password_on_its_command_line(tmp_path: Path) -> None:
    """`biofeedback dashboard` as a process: link in a 0600 file, password only in a file."""
    (tmp_path / "broker").mkdir()
    async with mosquitto_secure(tmp_path / "broker") as broker:
        pw = password_file(tmp_path, broker.users["dashboard"])
        port = free_port()
        runtime = tmp_path / "run"
        runtime.mkdir(mode=0o700)
        env = {k: v for k, v in os.environ.items() if not k.startswith("BIOFEEDBACK_MQTT")}
        env["XDG_RUNTIME_DIR"] = str(runtime)
        assert broker.ca_file is not None
        cmd = [
            sys.executable, "-m", "biofeedback.cli", "dashboard",
            "--mqtt-url", broker.url, "--ca-file", broker.ca_file,
            "--mqtt-password-file", str(pw), "--http-port", str(port),
        ]  # fmt: skip
        proc = await asyncio.create_subprocess_exec(
            *cmd,
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            assert proc.stdout is not None
            async with asyncio.timeout(30):
                lines: list[str] = []
                while not any(s.startswith("therapist dashboard:") for s in lines):
                    line = await proc.stdout.readline()
                    assert line, "the dashboard ended before saying where it is"
                    lines.append(line.decode())
            said = "".join(lines)
            assert "reading " + broker.url + " as dashboard" in said
            # not a terminal: the sign-in link went to a private file, not to the output
            assert "token=" not in said
            links = runtime / "biofeedback" / f"dashboard-standalone-{port}.txt"
            assert links.stat().st_mode & 0o777 == 0o600
            assert "token=" in links.read_text()
            cmdline = (
                await asyncio.to_thread(Path(f"/proc/{proc.pid}/cmdline").read_bytes)
            ).decode()
            assert broker.users["dashboard"] not in cmdline
            import aiohttp

            async with (
                aiohttp.ClientSession() as http,
                http.get(f"http://127.0.0.1:{port}/healthz") as resp,
            ):
                assert resp.status == 200
            proc.send_signal(signal.SIGTERM)
            async with asyncio.timeout(15):
                assert await proc.wait() == 0
            assert not links.exists()  # removed when the dashboard stops
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
