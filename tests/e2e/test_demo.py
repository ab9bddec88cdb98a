"""The walking skeleton end to end: `biofeedback demo` as a user runs it, watched over MQTT.

The demo runs in a subprocess at high speed on free ports; a plain paho-mqtt client subscribes
like any third-party tool would; the dashboard page and its WebSocket are fetched over HTTP; then
Ctrl-C (SIGINT) must end everything cleanly with the ports released.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.e2e.demo_proc import CLIENT, SECRET, Demo, run_demo
from tests.support import port_free, require_binary

pytestmark = pytest.mark.slow


# What a therapist's dashboard may send (docs/dashboard.md), written out here, not imported.
THERAPIST_COMMANDS = [
    "adjust_thresholds",
    "assessment_offer",
    "assessment_stop",
    "complete_step",
    "end",
    "offer_step",
    "pause",
    "recalibrate",
]


@pytest.fixture(
    params=[
        # "auto" picks Mosquitto when it is installed: the case needs it (a failure in CI), or it
        # would quietly run amqtt, which the second case covers on purpose.
        pytest.param("auto", id="auto-picks-mosquitto"),
        pytest.param("amqtt", id="amqtt-fallback"),
    ]
)
def demo(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Demo]:
    """The demo with its default embedded broker (Mosquitto), and with the in-process
    fallback a machine without Mosquitto gets."""
    if request.param == "auto":
        require_binary("mosquitto", "mosquitto")
    # 144 s at 25x: long enough for the WebSocket checks; Ctrl-C ends it before that
    with run_demo(tmp_path, speed=25, broker=request.param) as demo:
        yield demo


def _subscribe(
    port: int, login: tuple[str, str]
) -> tuple[mqtt.Client, queue.Queue[tuple[str, dict[str, Any]]]]:
    q: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
    c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="e2e-watcher")
    c.username_pw_set(*login)

    def on_message(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if not msg.payload:
            return  # an empty retained message clears a topic; it carries no payload
        try:
            q.put((msg.topic, json.loads(msg.payload)))
        except ValueError:
            q.put((msg.topic, {"unparseable": msg.payload.decode("utf-8", "replace")}))

    def on_connect(client: mqtt.Client, *_: Any) -> None:
        # (re)subscribe on every connect, as any well-behaved MQTT tool does
        client.subscribe("biofeedback/v1/#", qos=1)

    c.on_message = on_message
    c.on_connect = on_connect
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c, q


def _broker_version(port: int, login: tuple[str, str], timeout: float = 10.0) -> str:
    """The broker's own name and version, from its retained $SYS topic, over MQTT 5 (which the
    amqtt fallback does not speak)."""
    got: queue.Queue[str] = queue.Queue()
    c = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id="e2e-broker-probe",
        protocol=mqtt.MQTTv5,
    )
    c.username_pw_set(*login)
    c.on_message = lambda _c, _u, msg: got.put(msg.payload.decode("utf-8", "replace"))
    c.on_connect = lambda client, *_: client.subscribe("$SYS/broker/version")
    c.connect("127.0.0.1", port)
    c.loop_start()
    try:
        return got.get(timeout=timeout)
    except queue.Empty:
        return f"no $SYS/broker/version over MQTT 5 within {timeout} s"
    finally:
        c.loop_stop()
        c.disconnect()


def test_demo_end_to_end(demo: Demo) -> None:
    login = demo.observer_login()
    if demo.broker == "auto":
        # Mosquitto is installed (the fixture made sure), so "auto" must have started it.
        version = _broker_version(demo.mqtt_port, login)
        assert version.startswith("mosquitto version"), version
    client, q = _subscribe(demo.mqtt_port, login)
    seen: dict[str, dict[str, Any]] = {}
    pause: dict[str, Any] | None = None
    recovered = False
    states: list[str] = []  # transitions seen, for the failure message
    clients: set[str] = set()
    deadline = time.monotonic() + 90
    try:
        while time.monotonic() < deadline and not (pause and recovered and len(seen) >= 4):
            try:
                topic, payload = q.get(timeout=1)
            except queue.Empty:
                assert demo.proc.poll() is None, demo.proc.stderr.read() if demo.proc.stderr else ""
                continue
            clients.add(topic.split("/")[2])
            kind = topic.split("/")[3]
            assert payload["v"] == 1, (topic, payload)
            if kind == "cmd":
                continue  # commands come from the demo's simulated people; the service stamps them
            assert isinstance(payload["t"], int | float), (topic, payload)
            seen.setdefault(kind, payload)
            if kind == "event" and payload.get("to_state"):
                states.append(f"{payload.get('from_state')}->{payload['to_state']}")
            if kind == "event" and payload.get("to_state") == "paused" and pause is None:
                pause = payload
            if kind == "event" and pause and payload.get("to_state") == "recovered":
                recovered = True
    finally:
        client.loop_stop()
        client.disconnect()

    for kind in ("beat", "arousal", "session", "event"):
        assert kind in seen, f"no {kind} payload arrived; got {sorted(seen)}"
    assert 250 < seen["beat"]["rr_ms"] < 2500
    assert pause is not None, f"the simulated client never paused on arousal; saw {states}"
    assert pause["values"]["pause_reason"] == "arousal", pause
    assert "arousal" in pause["reason"], pause
    assert pause["actor"] == "system", pause
    assert recovered, f"no recovery after the pause; saw {states}"
    assert clients == {CLIENT}, clients

    # The dashboard page and one live update from its WebSocket.
    import asyncio

    import aiohttp

    async def fetch() -> tuple[int, list[dict[str, Any]]]:
        base = f"http://127.0.0.1:{demo.http}"
        auth = {"Authorization": f"Bearer {SECRET}"}
        async with aiohttp.ClientSession() as s:
            async with s.get(f"{base}/", headers=auth) as r:
                status = r.status
                assert "<html" in (await r.text()).lower()
            async with s.get(f"{base}/", allow_redirects=False) as r:
                assert r.status in (303, 401), "the dashboard answered without the secret"
            ws_url = f"{base}/ws?client={CLIENT}"
            async with s.ws_connect(ws_url, headers={**auth, "Origin": base}) as ws:
                # hello, snapshot, then updates as they come (docs/dashboard.md); an arousal
                # value comes with every beat, so its update is due within a second or so
                got = [await ws.receive_json(timeout=10), await ws.receive_json(timeout=10)]
                while not (got[-1]["type"] == "update" and got[-1]["kind"] == "arousal"):
                    got.append(await ws.receive_json(timeout=10))
        return status, got

    status, (hello, snapshot, *updates) = asyncio.run(fetch())
    assert status == 200
    assert hello["type"] == "hello", hello
    assert (hello["role"], hello["client"]) == ("therapist", CLIENT), hello
    assert hello["commands"] == THERAPIST_COMMANDS, hello
    assert hello["broker"] is True, "the dashboard is not connected to the demo's broker"
    assert snapshot["type"] == "snapshot", snapshot
    assert snapshot["client"] == CLIENT
    # the dashboard saw the very pause the MQTT watcher saw, with the same reason
    seen_pauses = [
        e for e in snapshot["events"] if e["seq"] == pause["seq"] and e["to_state"] == "paused"
    ]
    assert len(seen_pauses) == 1, [e for e in snapshot["events"] if e["to_state"]]
    assert seen_pauses[0]["actor"] == "system"
    assert seen_pauses[0]["values"]["pause_reason"] == "arousal"
    assert snapshot["session"]["state"] is not None, snapshot["session"]
    assert snapshot["points"], "the dashboard has no chart points after minutes of session"
    live = updates[-1]
    assert (live["type"], live["client"], live["kind"]) == ("update", CLIENT, "arousal"), live
    # a live value: newer than the snapshot's newest chart point, and on the 0..100 scale
    point = live["point"]
    assert point["t"] >= snapshot["points"][-1]["t"] > pause["t"], (point, pause)
    assert 0 <= point["arousal"] <= 100, live
    assert 0 <= point["confidence"] <= 1, live
    assert abs(live["srv"] - time.time()) < 60, live  # stamped by the dashboard just now

    # Ctrl-C ends everything cleanly: exit 0, no traceback, ports released. A terminal sends
    # SIGINT to the whole foreground process group, children included.
    os.killpg(demo.proc.pid, signal.SIGINT)
    _out, err = demo.proc.communicate(timeout=30)
    assert demo.proc.returncode == 0, err
    assert "Traceback" not in err, err
    assert "lost MQTT broker" not in err, "the broker died before the service said goodbye"
    assert port_free(demo.http)
    assert port_free(demo.mqtt_port)
    assert list(demo.data.glob("recordings/*/*")), "the demo session was not recorded"
    assert not demo.observer.exists(), "the broker's observer login outlived the demo"
