"""The dashboard fed by a real Mosquitto: retained state, live samples, commands, replies."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from biofeedback.service import payloads
from biofeedback.service.mqtt import IncomingMessage, MqttLink
from biofeedback.service.topics import Topic, topic
from biofeedback.signal.measures import Arousal, ArousalBasis
from biofeedback.web import WebConfig, create_app
from biofeedback.web.app import HUB_KEY
from biofeedback.web.hub import HubLimits
from tests.brokers import BrokerHandle, mosquitto_plain
from tests.web.conftest import LINK_SECRET, SECRET

pytestmark = pytest.mark.mosquitto
T0 = 1_700_000_000.0


@dataclass
class Live:
    client: TestClient  # type: ignore[type-arg]
    service: MqttLink  # plays the session service's side of the broker
    broker: BrokerHandle

    @property
    def origin(self) -> str:
        return f"http://{self.client.host}:{self.client.port}"


@pytest.fixture(params=[5, 311], ids=["mqtt5", "mqtt311"])
async def live(request: pytest.FixtureRequest) -> AsyncIterator[Live]:
    async with mosquitto_plain() as broker:
        settings = broker.settings(protocol=request.param)
        async with MqttLink(settings, "test-service") as service:
            # retained state published before the dashboard starts must still reach it
            service.publish_kind(
                "c01",
                Topic.STATUS,
                payloads.online_status("c01", T0, battery_pct=77, device="Polar H10 sim"),
            )
            service.publish_kind("c01", Topic.SESSION, session_payload("c01", T0, "exposing", 0))
            await service.drain()
            cfg = WebConfig(
                mqtt=settings,
                therapist_secret=SECRET,
                link_secret=LINK_SECRET,
                limits=HubLimits(reply_timeout_s=3.0),
            )
            app = create_app(cfg)
            async with TestClient(TestServer(app, host="127.0.0.1")) as client:
                await wait_for(lambda: app[HUB_KEY].client("c01") is not None)
                yield Live(client, service, broker)


def session_payload(client: str, t: float, state: str, step: int | None) -> dict[str, Any]:
    body = {
        "v": 1,
        "t": t,
        "client": client,
        "state": state,
        "step_index": step,
        "steps": [
            {
                "index": 0,
                "title": "Look at a photo of a spider",
                "description": "",
                "planned_s": 120.0,
                "suds_anchors": [],
                "status": "exposing",
            },
            {
                "index": 1,
                "title": "Watch a spider video",
                "description": "",
                "planned_s": 180.0,
                "suds_anchors": [],
                "status": "pending",
            },
        ],
        "pause_reason": None,
        "thresholds": {"upper": 70.0, "lower": 45.0, "dwell_s": 10.0, "recovery_s": 60.0},
        "consent_needed": None,
        "checkin_due": None,
    }
    payloads.validate("session", body)
    return body


async def wait_for(cond: Any, within: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
        if cond():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"condition not met within {within} s")


async def recv(
    ws: aiohttp.ClientWebSocketResponse, kind: str, within: float = 3.0
) -> dict[str, Any]:
    async with asyncio.timeout(within):
        while True:
            msg = await ws.receive_json()
            if msg["type"] == kind:
                return msg  # type: ignore[no-any-return]


async def therapist_ws(live: Live, query: str = "") -> aiohttp.ClientWebSocketResponse:
    resp = await live.client.get(f"/?token={SECRET}", allow_redirects=False)
    assert resp.status == 303
    return await live.client.ws_connect("/ws" + query, headers={"Origin": live.origin})


async def test_retained_state_and_live_samples_reach_the_therapist(live: Live) -> None:
    ws = await therapist_ws(live)
    overview = await recv(ws, "overview")
    row = overview["clients"][0]
    assert (row["client"], row["battery"], row["state"]) == ("c01", 77, "exposing")
    a = Arousal(
        t=T0 + 1, value=64.0, confidence=0.9, fast=60.0, slow=70.0, basis=ArousalBasis.HR_HRV
    )
    live.service.publish_kind("c01", Topic.AROUSAL, payloads.arousal("c01", a))
    batch = await recv(ws, "summaries", within=2.0)
    assert [(r["client"], r["arousal"]) for r in batch["summaries"]] == [("c01", 64.0)]
    await ws.close()


async def test_pause_from_dashboard_arrives_on_mqtt_and_reply_comes_back(live: Live) -> None:
    commands: asyncio.Queue[IncomingMessage] = asyncio.Queue()
    await live.service.subscribe(topic("c01", Topic.CMD), qos=1)

    async def collect() -> None:
        async for msg in live.service.messages():
            await commands.put(msg)

    async with asyncio.TaskGroup() as tg:
        collector = tg.create_task(collect())
        ws = await therapist_ws(live, "?client=c01")
        await recv(ws, "snapshot")
        await ws.send_json({"type": "cmd", "ref": "p1", "cmd": "pause", "args": {}})
        sent = await recv(ws, "sent")
        async with asyncio.timeout(3):
            msg = await commands.get()
        body = json.loads(msg.payload)
        payloads.validate("command", body)  # what the dashboard sends is what the service accepts
        assert (body["cmd"], body["role"], body["id"]) == ("pause", "therapist", sent["id"])
        if msg.response_topic is not None:  # MQTT 5 only
            assert msg.response_topic == topic("c01", Topic.REPLY)
        live.service.reply(msg, "c01", payloads.reply("c01", T0 + 2, body["id"], True, None))
        reply = await recv(ws, "reply")
        assert reply["reply"]["id"] == sent["id"]
        assert reply["reply"]["ok"] is True
        await ws.close()
        collector.cancel()


async def test_client_consent_goes_out_as_client_role(live: Live) -> None:
    commands: asyncio.Queue[IncomingMessage] = asyncio.Queue()
    await live.service.subscribe(topic("c01", Topic.CMD), qos=1)

    async def collect() -> None:
        async for msg in live.service.messages():
            await commands.put(msg)

    async with asyncio.TaskGroup() as tg:
        collector = tg.create_task(collect())
        from biofeedback.web.auth import link_signature

        path = f"/c/c01/{link_signature(LINK_SECRET, 'c01')}/ws"
        ws = await live.client.ws_connect(path, headers={"Origin": live.origin})
        snap = await recv(ws, "snapshot")
        assert snap["session"]["state"] == "exposing"
        await ws.send_json({"type": "cmd", "ref": "c1", "cmd": "consent"})
        await recv(ws, "sent")
        async with asyncio.timeout(3):
            msg = await commands.get()
        body = json.loads(msg.payload)
        payloads.validate("command", body)
        assert (body["cmd"], body["role"]) == ("consent", "client")
        await ws.close()
        collector.cancel()


async def test_dashboard_over_tls_with_its_own_broker_user_and_the_example_acl(
    tmp_path: Path,
) -> None:
    """The `dashboard` user of config/mosquitto/acl.example can read the tree and send commands."""
    from tests.brokers import mosquitto_secure

    async with mosquitto_secure(tmp_path) as broker:
        assert broker.tls is not None
        service_settings = broker.settings(protocol=5)
        dash_settings = broker.settings(
            protocol=5, username="dashboard", password=broker.users["dashboard"]
        )
        async with MqttLink(service_settings, "test-service") as service:
            await service.subscribe(f"{topic('c01', Topic.CMD)}/#", qos=1)
            service.publish_kind("c01", Topic.SESSION, session_payload("c01", T0, "exposing", 0))
            await service.drain()
            cfg = WebConfig(mqtt=dash_settings, therapist_secret=SECRET, link_secret=LINK_SECRET)
            app = create_app(cfg)
            async with TestClient(TestServer(app, host="127.0.0.1")) as client:
                await wait_for(lambda: app[HUB_KEY].client("c01") is not None)
                live = Live(client, service, broker)
                ws = await therapist_ws(live, "?client=c01")
                snap = await recv(ws, "snapshot")
                assert snap["session"]["state"] == "exposing"
                await ws.send_json({"type": "cmd", "ref": "p", "cmd": "pause"})
                await recv(ws, "sent")
                async with asyncio.timeout(3):
                    msg = await anext(service.messages())
                assert json.loads(msg.payload)["role"] == "therapist"
                await ws.close()


async def test_broker_restart_is_shown_and_only_a_pause_waits_for_it() -> None:
    async with mosquitto_plain(persistence=True) as broker:
        assert broker.process is not None
        settings = broker.settings(protocol=5)
        # The stand-in service speaks 3.1.1: Mosquitto 2.0.11 restores a 3.1.1 persistent session
        # after a restart but not an MQTT 5 one (measured), and the service's session must
        # survive for a command sent while it is still reconnecting to reach it.
        async with MqttLink(broker.settings(protocol=311), "test-service") as service:
            await service.subscribe(topic("c01", Topic.CMD), qos=1)
            service.publish_kind("c01", Topic.SESSION, session_payload("c01", T0, "exposing", 0))
            await service.drain()
            cfg = WebConfig(mqtt=settings, therapist_secret=SECRET, link_secret=LINK_SECRET)
            app = create_app(cfg)
            async with TestClient(TestServer(app, host="127.0.0.1")) as client:
                await wait_for(lambda: app[HUB_KEY].client("c01") is not None)
                live = Live(client, service, broker)
                ws = await therapist_ws(live, "?client=c01")
                assert (await recv(ws, "hello"))["broker"] is True
                # a clean restart (persistence saved): the service's subscription survives in the
                # broker, so a command that reaches the broker before the service is back waits
                await broker.process.stop()
                lost = await recv(ws, "broker", within=10)
                assert lost["connected"] is False
                await ws.send_json({"type": "cmd", "ref": "o", "cmd": "offer_step"})
                assert "lost its connection" in (await recv(ws, "refused"))["error"]
                await ws.send_json({"type": "cmd", "ref": "p", "cmd": "pause"})
                sent = await recv(ws, "sent")
                await broker.process.start()
                back = await recv(ws, "broker", within=15)
                assert back["connected"] is True
                # the pause waited in the dashboard's queue and reaches the service after all
                async with asyncio.timeout(15):
                    async for msg in service.messages():
                        body = json.loads(msg.payload)
                        if body.get("id") == sent["id"]:
                            break
                assert body["cmd"] == "pause"
                a = Arousal(T0 + 9, 55.0, 0.9, 55.0, 55.0, ArousalBasis.HR_HRV)
                service.publish_kind("c01", Topic.AROUSAL, payloads.arousal("c01", a))
                update = await recv(ws, "update", within=5)
                assert update["point"]["arousal"] == 55.0
                await ws.close()


async def test_dashboard_over_the_in_process_broker() -> None:
    """The amqtt fallback (MQTT 3.1.1 only) carries the dashboard just the same."""
    from tests.brokers import embedded

    async with embedded("amqtt") as broker:
        settings = broker.settings(protocol=311)
        async with MqttLink(settings, "test-service") as service:
            await service.subscribe(topic("c01", Topic.CMD), qos=1)
            service.publish_kind("c01", Topic.SESSION, session_payload("c01", T0, "exposing", 0))
            await service.drain()
            cfg = WebConfig(mqtt=settings, therapist_secret=SECRET, link_secret=LINK_SECRET)
            app = create_app(cfg)
            async with TestClient(TestServer(app, host="127.0.0.1")) as client:
                await wait_for(lambda: app[HUB_KEY].client("c01") is not None)
                live = Live(client, service, broker)
                ws = await therapist_ws(live, "?client=c01")
                assert (await recv(ws, "snapshot"))["session"]["state"] == "exposing"
                await ws.send_json({"type": "cmd", "ref": "p", "cmd": "pause"})
                sent = await recv(ws, "sent")
                async with asyncio.timeout(5):
                    msg = await anext(service.messages())
                body = json.loads(msg.payload)
                assert body["id"] == sent["id"]
                service.reply(msg, "c01", payloads.reply("c01", T0 + 1, body["id"], True, None))
                assert (await recv(ws, "reply"))["reply"]["ok"] is True
                await ws.close()
