"""Commands end to end over a real broker: junk gets an error reply and nothing else happens,
replies go to the MQTT 5 response topic (with correlation data) or the plain reply topic,
role-bound topics refuse other roles, and a redelivered id is applied once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest

from biofeedback.exposure.messages import Command, Pause, Role, SudsAnswer
from biofeedback.service import payloads
from biofeedback.service.commands import CommandDeduper, serve_commands
from biofeedback.service.mqtt import IncomingMessage, MqttLink
from biofeedback.service.topics import Topic, command_topic, topic
from tests.brokers import (
    BrokerHandle,
    Subscriptions,
    embedded,
    link_name,
    mosquitto_plain,
    next_message,
)

C1 = "c-7f3a"


class FakeSession:
    """Stands in for the session core: records commands, answers ok (or refuses SUDS > 90)."""

    def __init__(self) -> None:
        self.applied: list[Command] = []

    def submit(self, cmd: Command, reply: Callable[[dict[str, Any]], None]) -> None:
        self.applied.append(cmd)
        if isinstance(cmd, SudsAnswer) and cmd.value > 90:
            reply(payloads.command_error(C1, cmd.t, cmd.command_id, "not now"))
        else:
            reply(payloads.reply(C1, cmd.t, cmd.command_id, True, None))


def _cmd(cid: str, cmd: str = "pause", role: str = "client", **args: Any) -> dict[str, Any]:
    return {"v": 1, "id": cid, "role": role, "cmd": cmd, "args": args}


@pytest.fixture(params=["mosquitto-5", "mosquitto-311", "amqtt-311"])
async def broker_proto(request: pytest.FixtureRequest) -> Any:
    kind, proto = request.param.split("-")
    if kind == "mosquitto":
        async with mosquitto_plain() as b:
            yield b, int(proto)
    else:
        async with embedded("amqtt") as b:
            yield b, int(proto)


@pytest.mark.mosquitto
async def test_commands_over_mqtt(broker_proto: tuple[BrokerHandle, int]) -> None:
    broker, proto = broker_proto
    s = broker.settings(proto)
    session = FakeSession()
    dedupe = CommandDeduper()
    async with (
        MqttLink(s, link_name("bf-service")) as svc,
        MqttLink(s, link_name("bf-web")) as dash,
    ):
        await dash.subscribe(topic(C1, Topic.REPLY) + "/#")
        acked = Subscriptions(svc)
        pump = asyncio.create_task(
            serve_commands(svc, C1, now=lambda: 500.0, submit=session.submit, deduper=dedupe)
        )
        try:
            await acked.wait(2)  # the pump listens on cmd and cmd/+
            replies = dash.messages()
            cmd_t = command_topic(C1)

            async def ask(data: bytes, **kw: Any) -> IncomingMessage:
                dash.publish_bytes(cmd_t if "to" not in kw else kw.pop("to"), data, qos=1, **kw)
                return await next_message(replies)

            # junk: error reply on the plain reply topic, nothing applied
            for junk, needle in [
                (b"\x00\xff\xfe garbage", "not UTF-8"),
                (b'{"v":1,', "not valid JSON"),
                (json.dumps(_cmd("j1", "fly")).encode(), "unknown command"),
                (json.dumps(_cmd("j2", "end", role="client")).encode(), "may not send 'end'"),
            ]:
                r = await ask(junk)
                body = r.json()
                payloads.validate("reply", body)
                assert r.topic == topic(C1, Topic.REPLY)
                assert body["ok"] is False
                assert needle in body["error"]
            assert body["id"] == "j2"  # the id is echoed when it could be read
            assert session.applied == []

            # a valid command, with MQTT 5 request/response when the protocol has it
            data = json.dumps(_cmd("p1", note="stop")).encode()
            if proto == 5:
                inbox = topic(C1, Topic.REPLY) + "/bf-web"
                r = await ask(data, response_topic=inbox, correlation_data=b"corr-1")
                assert r.topic == inbox
                assert r.correlation_data == b"corr-1"
            else:
                r = await ask(data)
                assert r.topic == topic(C1, Topic.REPLY)
            assert r.json()["ok"] is True
            assert r.json()["id"] == "p1"
            assert session.applied == [
                Pause(t=500.0, role=Role.CLIENT, note="stop", command_id="p1")
            ]

            # redelivery of the same id: applied once, the reply repeated
            r2 = await ask(data)
            assert r2.json()["id"] == "p1"
            assert r2.json()["ok"] is True
            assert len(session.applied) == 1

            # a refused command's reply is repeated too
            suds = json.dumps(_cmd("s1", "suds", value=95)).encode()
            assert (await ask(suds)).json()["error"] == "not now"
            assert (await ask(suds)).json()["error"] == "not now"
            assert len(session.applied) == 2

            # role-bound topic: only that role
            bad = json.dumps(_cmd("t1", "offer_step", role="therapist")).encode()
            r = await ask(bad, to=command_topic(C1, "client"))
            assert "must have role 'client'" in r.json()["error"]
            ok = json.dumps(_cmd("c2", "consent")).encode()
            assert (await ask(ok, to=command_topic(C1, "client"))).json()["ok"] is True

            # a response topic outside this client's reply tree is not used
            if proto == 5:
                evil = json.dumps(_cmd("e1", "decline")).encode()
                r = await ask(evil, response_topic=topic(C1, Topic.SESSION))
                assert r.topic == topic(C1, Topic.REPLY)
            assert not pump.done()
        finally:
            pump.cancel()
            with pytest.raises(asyncio.CancelledError):
                await pump


@pytest.mark.mosquitto
async def test_a_flood_of_pauses_over_mqtt_adds_no_flood_of_events() -> None:
    """The drill over a real broker: 3,000 pauses from one client put 957 pause_acknowledged
    events into the event stream. Every pause is answered ok; the session tells it once."""
    from biofeedback.exposure import load_protocol
    from biofeedback.service.core import SessionCore
    from biofeedback.signal import SignalConfig
    from tests.support import REPO_ROOT

    core = SessionCore(
        client_id=C1,
        protocol=load_protocol(REPO_ROOT / "config" / "protocols" / "demo.toml"),
        signal_config=SignalConfig(),
        start_t=0.0,
    )
    events: list[Any] = []

    def submit(cmd: Command, reply: Callable[[dict[str, Any]], None]) -> None:
        out = core.feed(cmd)
        events.extend(out.events)
        assert out.command is not None
        reply(payloads.command_reply(C1, out.t, out.command))

    n = 3000
    async with (
        mosquitto_plain() as broker,
        MqttLink(broker.settings(5), link_name("bf-service")) as svc,
        MqttLink(broker.settings(5), link_name("bf-web")) as client,
    ):
        await client.subscribe(topic(C1, Topic.REPLY) + "/#", qos=1)
        acked = Subscriptions(svc)
        pump = asyncio.create_task(serve_commands(svc, C1, now=lambda: 10.0, submit=submit))
        try:
            await acked.wait(2)  # the pump listens on cmd and cmd/+
            replies = client.messages()
            for i in range(n):
                client.publish_json(command_topic(C1, "client"), _cmd(f"p-{i}"), qos=1)
            got = [(await next_message(replies, 20.0)).json() for _ in range(n)]
        finally:
            pump.cancel()
            with pytest.raises(asyncio.CancelledError):
                await pump
    assert all(r["ok"] for r in got), [r for r in got if not r["ok"]][:3]
    assert sorted(r["id"] for r in got) == sorted(f"p-{i}" for i in range(n))
    assert sum(e.kind == "pause_acknowledged" for e in events) == 1
