"""The breathing-rate check run live from the dashboard in `biofeedback demo` (issue 15): the
therapist's dashboard offers it over its WebSocket, the demo's simulated client agrees through the
real command path, the service paces blocks and publishes each block's scores on the assessment
topic, the dashboard stops it, the partial result lands in the client's history, the session
recording holds its events, and `biofeedback replay` reproduces the recording identically."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from biofeedback.cli import build_parser
from biofeedback.config import ServiceConfig, load_config
from biofeedback.service.app import ServiceOptions, apply_service_overrides
from biofeedback.service.clinic import plan_clients
from tests.e2e.demo_proc import CLIENT, SECRET, Demo, run_demo
from tests.e2e.test_demo import _subscribe
from tests.support import REPO_ROOT, require_binary


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    require_binary("mosquitto", "mosquitto")
    with run_demo(tmp_path, speed=25) as demo:
        yield demo


def test_assessment_from_the_dashboard(demo: Demo) -> None:
    login = demo.observer_login()
    client, q = _subscribe(demo.mqtt_port, login)
    latest: dict[str, Any] = {}
    states: list[str] = []

    def drain(until: float, cond: Any) -> bool:
        while time.monotonic() < until:
            try:
                topic, payload = q.get(timeout=0.2)
            except queue.Empty:
                assert demo.proc.poll() is None, demo.proc.stderr.read() if demo.proc.stderr else ""
                continue
            if topic.endswith("/assessment"):
                latest.clear()
                latest.update(payload)
                if not states or states[-1] != payload["state"]:
                    states.append(payload["state"])
            if cond():
                return True
        return cond()

    async def dashboard() -> list[dict[str, Any]]:
        import aiohttp

        base = f"http://127.0.0.1:{demo.http}"
        auth = {"Authorization": f"Bearer {SECRET}"}
        replies: list[dict[str, Any]] = []
        async with (
            aiohttp.ClientSession() as s,
            s.ws_connect(f"{base}/ws?client={CLIENT}", headers={**auth, "Origin": base}) as ws,
        ):
            hello = await ws.receive_json(timeout=10)
            assert "assessment_offer" in hello["commands"], hello

            async def read() -> None:
                # a page reads what the hub pushes; one that does not is dropped as too slow
                async for m in ws:
                    if m.type is aiohttp.WSMsgType.TEXT:
                        body = json.loads(m.data)
                        if body.get("type") in ("reply", "refused"):
                            replies.append(body)

            reader = asyncio.create_task(read())

            async def send(cmd: str) -> None:
                await ws.send_json({"type": "cmd", "ref": cmd, "cmd": cmd, "args": {}})

            # offer until the session is between steps (refused, with the reason, otherwise)
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                await send("assessment_offer")
                await asyncio.sleep(0.5)
                await asyncio.to_thread(drain, time.monotonic() + 0.3, lambda: False)
                if latest.get("state") in ("offered", "running"):
                    break
            # the simulated client agrees (through the command path); block 1 is scored
            ok = await asyncio.to_thread(
                drain,
                time.monotonic() + 60,
                lambda: latest.get("state") == "running" and len(latest.get("blocks", [])) >= 1,
            )
            assert ok, (states, latest)
            await send("assessment_stop")
            ok = await asyncio.to_thread(
                drain, time.monotonic() + 20, lambda: latest.get("state") == "stopped"
            )
            assert ok, (states, latest)
            reader.cancel()
        return replies

    try:
        asyncio.run(dashboard())
    finally:
        client.loop_stop()
        client.disconnect()
    assert "running" in states, states
    assert states[-1] == "stopped", states
    result = latest["result"]
    assert result is not None
    assert result["complete"] is False
    assert len(result["blocks"]) >= 1
    assert latest["blocks"][0]["rate_bpm"] == 6.5

    os.killpg(demo.proc.pid, signal.SIGINT)
    _out, err = demo.proc.communicate(timeout=30)
    assert demo.proc.returncode == 0, err
    # the result belongs to the (demo) client's profile
    history = json.loads((demo.data / "baselines" / f"{CLIENT}.resonance.json").read_text())
    saved = history["assessments"][-1]
    assert saved["assessment"]["complete"] is False
    assert saved["session"], saved
    # the session recording holds its events, and replay reproduces them
    sessions = sorted(demo.data.glob("recordings/*/*"))
    assert sessions, "no recording"
    session = sessions[-1]
    assert saved["session"] == session.name
    events = (session / "events.tsv").read_text()
    assert "assessment_block_scored" in events
    assert "assessment_transition" in events
    replay = subprocess.run(
        [
            sys.executable,
            "-m",
            "biofeedback.cli",
            "replay",
            str(session),
            "--out",
            str(demo.data / "replays"),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert "identical" in replay.stdout, replay.stdout

    # the next demo's pacer breathes at the rate this live assessment measured
    rate = saved["assessment"]["rate_bpm"]
    assert rate in (6.5, 6.0, 5.5, 5.0, 4.5), saved
    args = build_parser().parse_args(["demo", "--data-dir", str(demo.data)])
    opts = ServiceOptions.from_args(args)
    service = apply_service_overrides(ServiceConfig.single(load_config(env={})), args, opts)
    breathing = plan_clients(service, opts)[0].protocol.guidance.breathing
    assert breathing is not None
    assert breathing.rate_bpm == pytest.approx(rate)
