"""The managed Mosquitto dies (kill -9) and comes back: it is restarted on the same port, and
MQTT 5 sessions and queued QoS 1 messages survive, so a command in flight is applied once and
events published meanwhile reach the dashboard (issue 16; docs/mqtt.md, "Broker restarts").

Everything here runs against the broker exactly as the service starts it: per-run logins, the
role ACL, persistence, the supervisor that restarts it. The kill comes from outside (SIGKILL to
its process id), as a crash or the OOM killer would.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from biofeedback.exposure.messages import Command
from biofeedback.service import payloads
from biofeedback.service.broker import EmbeddedBroker
from biofeedback.service.broker_access import BrokerRole
from biofeedback.service.commands import serve_commands
from biofeedback.service.mqtt import MqttLink
from biofeedback.service.topics import Topic, topic
from biofeedback.web.mqttfeed import LinkSink
from tests.brokers import Subscriptions, sever, wait_disconnected
from tests.service.embedded_support import autosaved, collect, login_settings, next_message
from tests.support import require_binary

pytestmark = [pytest.mark.mosquitto, pytest.mark.slow]

C1 = "c-restart"
SERVICE = f"bf-service-{C1}"


class CountingSession:
    """Stands in for the session core: records each command it is handed, answers ok."""

    def __init__(self) -> None:
        self.applied: list[str] = []

    def submit(self, cmd: Command, reply: Callable[[dict[str, Any]], None]) -> None:
        self.applied.append(cmd.command_id)
        reply(payloads.reply(C1, cmd.t, cmd.command_id, True, None))


def _consent() -> tuple[str, bytes]:
    cid = f"consent-{uuid.uuid4().hex[:8]}"
    body = {"v": 1, "id": cid, "role": "client", "cmd": "consent", "args": {}}
    return cid, json.dumps(body).encode()


async def _killed(b: EmbeddedBroker, *links: MqttLink) -> int:
    """SIGKILL the managed broker; its old pid, once every link noticed."""
    proc = b.process
    assert proc is not None
    pid = proc.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    for link in links:
        await wait_disconnected(link, 10)
    return pid


def _restarted(b: EmbeddedBroker, old_pid: int, port: int) -> None:
    proc = b.process
    assert proc is not None
    assert proc.running, "the supervisor did not restart the broker"
    assert proc.pid != old_pid
    assert b.port == port == proc.port  # same port: every link's URL still holds


@pytest.fixture
async def broker() -> Any:
    require_binary("mosquitto", "mosquitto")
    async with EmbeddedBroker(backend="mosquitto") as b:
        yield b


async def test_kill9_with_a_command_in_flight_applies_it_once_after_the_restart(
    broker: EmbeddedBroker,
) -> None:
    """The dashboard sends a consent while the broker is dead. After the restart the dashboard
    is back first and hands it over before the service has reconnected: only the service's
    persisted MQTT 5 session (its subscription) keeps the command for it."""
    b, port = broker, broker.port
    session = CountingSession()
    svc = MqttLink(
        login_settings(b, BrokerRole.SERVICE, reconnect_min_s=4, reconnect_max_s=4), SERVICE
    )
    dash = MqttLink(
        login_settings(b, BrokerRole.DASHBOARD, reconnect_min_s=1, reconnect_max_s=1),
        "bf-dashboard-restart",
    )
    async with svc, dash:
        pump = asyncio.create_task(serve_commands(svc, C1, now=time.time, submit=session.submit))
        try:
            await dash.subscribe(topic(C1, Topic.REPLY), qos=1)
            sink = LinkSink(dash)
            first, payload = _consent()
            await sink.send_command(C1, payload)
            assert (await next_message(dash)).json()["id"] == first  # the path works
            assert b.process is not None
            await autosaved(b.process, time.time_ns())  # Mosquitto's own autosave, each second

            old = await _killed(b, svc, dash)
            cid, payload = _consent()
            await sink.send_command(C1, payload)  # in flight: held by the dashboard's link
            async with asyncio.timeout(15):
                await dash.drain()  # the restarted broker acknowledged it...
            assert not svc.connected  # ...while the service was still away
            _restarted(b, old, port)
            reply = (await next_message(dash, 15)).json()
            assert (reply["id"], reply["ok"]) == (cid, True)
            assert await collect(dash, 1.0) == []  # one reply: applied once
            assert session.applied == [first, cid]
            assert svc.stats.reconnects == 1
        finally:
            pump.cancel()


async def test_a_command_queued_for_an_offline_service_survives_kill9(
    broker: EmbeddedBroker,
) -> None:
    """The broker holds a consent for the service (away for a moment) when it dies; once the
    broker's autosave has it, the restart delivers it, once."""
    b, port = broker, broker.port
    session = CountingSession()
    svc = MqttLink(
        login_settings(b, BrokerRole.SERVICE, reconnect_min_s=8, reconnect_max_s=8), SERVICE
    )
    async with (
        svc,
        MqttLink(login_settings(b, BrokerRole.DASHBOARD), "bf-dashboard-queued") as dash,
    ):
        acked = Subscriptions(svc)
        pump = asyncio.create_task(serve_commands(svc, C1, now=time.time, submit=session.submit))
        try:
            await dash.subscribe(topic(C1, Topic.REPLY), qos=1)
            await acked.wait(2)  # the service subscribed to cmd and cmd/+
            sever(svc)  # a blip: the service reconnects 8 s later
            await wait_disconnected(svc)
            cid, payload = _consent()
            await LinkSink(dash).send_command(C1, payload)
            await asyncio.wait_for(dash.drain(), 5)  # acknowledged: the broker queued it
            assert b.process is not None
            await autosaved(b.process, time.time_ns())
            assert not svc.connected
            assert session.applied == []

            old = await _killed(b, dash)
            reply = (await next_message(dash, 20)).json()
            _restarted(b, old, port)
            assert (reply["id"], reply["ok"]) == (cid, True)
            assert await collect(dash, 1.0) == []
            assert session.applied == [cid]
        finally:
            pump.cancel()


async def test_events_published_while_the_broker_is_dead_reach_an_mqtt5_dashboard(
    broker: EmbeddedBroker,
) -> None:
    """The service is back before the dashboard and sends what it held; the dashboard's MQTT 5
    session, restored from the broker's database, queues it for the dashboard: in order, none
    missing, and the retained state is the newest with the service online."""
    b, port = broker, broker.port
    will = (topic(C1, Topic.STATUS), json.dumps(payloads.offline_status(C1)).encode(), True)
    svc = MqttLink(login_settings(b, BrokerRole.SERVICE), SERVICE, will=will)
    dash = MqttLink(
        login_settings(b, BrokerRole.DASHBOARD, reconnect_min_s=5, reconnect_max_s=5),
        "bf-dashboard-events",
    )
    async with svc, dash:
        await dash.subscribe(topic(C1, Topic.EVENT), qos=1)
        svc.publish_kind(C1, Topic.STATUS, {"online": True, "n": 0})
        svc.publish_kind(C1, Topic.SESSION, {"state": "exposing", "n": 1})
        svc.publish_kind(C1, Topic.EVENT, {"i": -1})
        assert (await next_message(dash)).json() == {"i": -1}
        assert b.process is not None
        await autosaved(b.process, time.time_ns())

        old = await _killed(b, svc, dash)
        for i in range(10):
            svc.publish_kind(C1, Topic.EVENT, {"i": i})  # e.g. the arousal pause
            svc.publish_kind(C1, Topic.BEAT, {"rr": 800 + i})
        svc.publish_kind(C1, Topic.SESSION, {"state": "paused", "n": 2})
        async with asyncio.timeout(15):
            await svc.drain()  # all of it reached the restarted broker...
        assert not dash.connected  # ...before the dashboard was back
        _restarted(b, old, port)
        got = [(await next_message(dash, 15)).json()["i"] for _ in range(10)]
        assert got == list(range(10))
        assert svc.stats.dropped_events == 0

        async with MqttLink(login_settings(b, BrokerRole.DASHBOARD), "late") as late:
            await late.subscribe(topic(C1, Topic.STATUS), qos=1)
            await late.subscribe(topic(C1, Topic.SESSION), qos=1)
            state = {m.topic.rsplit("/", 1)[-1]: m.json() for m in await collect(late, 1.0)}
        assert state == {"session": {"state": "paused", "n": 2}, "status": {"online": True, "n": 0}}


async def test_a_clean_exit_stops_the_broker_for_good(broker: EmbeddedBroker) -> None:
    """The supervisor restarts only a broker that died; leaving the context ends it."""
    from biofeedback.service.broker import RESTART_MIN_S, _can_bind

    proc = broker.process
    assert proc is not None
    await broker.__aexit__(None, None, None)
    await asyncio.sleep(RESTART_MIN_S * 3)
    assert not proc.running
    assert _can_bind("127.0.0.1", broker.port)  # nothing listens there any more
