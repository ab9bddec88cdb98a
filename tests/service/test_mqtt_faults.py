"""Faults against real Mosquitto: wrong credentials and certificates, the role ACL, a broker
killed with SIGKILL and restarted, the offline queue's overflow policy, a crashed service."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from biofeedback.errors import BrokerError
from biofeedback.service.mqtt import IncomingMessage, MqttLink
from biofeedback.service.topics import Topic, command_topic, topic
from tests.brokers import (
    BrokerHandle,
    collect_until,
    link_name,
    mosquitto_plain,
    mosquitto_secure,
    next_message,
    sever,
    wait_disconnected,
)
from tests.support import REPO_ROOT, free_port

pytestmark = pytest.mark.mosquitto

C1 = "c-7f3a"


def has_topics(*kinds: str) -> Callable[[list[IncomingMessage]], bool]:
    """Whether messages on each of these topic kinds (the topic's last level) arrived."""
    return lambda got: set(kinds) <= {m.topic.rsplit("/", 1)[-1] for m in got}


# ---- TLS, passwords and clear errors --------------------------------------------------------


@pytest.fixture
async def secure(tmp_path: Path) -> BrokerHandle:  # type: ignore[misc]
    async with mosquitto_secure(tmp_path) as handle:
        yield handle


async def test_tls_password_login_works_over_both_protocols(secure: BrokerHandle) -> None:
    for proto in (5, 311):
        async with MqttLink(secure.settings(proto), link_name("svc")) as link:
            assert link.connected
            assert link.settings.tls
            await link.subscribe(command_topic(C1) + "/#")


@pytest.mark.parametrize("proto", [5, 311])
async def test_wrong_password_is_a_clear_broker_error(secure: BrokerHandle, proto: int) -> None:
    s = secure.settings(proto, password="not-the-password")
    with pytest.raises(BrokerError, match=r"refused the login .*user 'service'.*password"):
        async with MqttLink(s, link_name("svc")):
            pass


async def test_no_credentials_is_refused(secure: BrokerHandle) -> None:
    s = secure.settings(username=None, password=None)
    with pytest.raises(BrokerError, match="refused"):
        async with MqttLink(s, link_name("svc")):
            pass


async def test_untrusted_server_certificate_is_a_clear_error(secure: BrokerHandle) -> None:
    assert secure.tls is not None
    s = secure.settings(ca_file=str(secure.tls.other_ca_cert))
    with pytest.raises(BrokerError, match=r"TLS certificate of MQTT broker .* not accepted"):
        async with MqttLink(s, link_name("svc")):
            pass


async def test_missing_ca_file_is_named(secure: BrokerHandle, tmp_path: Path) -> None:
    s = secure.settings(ca_file=str(tmp_path / "nope.crt"))
    with pytest.raises(BrokerError, match=r"CA file not found: .*nope\.crt"):
        async with MqttLink(s, link_name("svc")):
            pass


async def test_plain_mqtt_against_a_tls_port_is_explained(secure: BrokerHandle) -> None:
    s = secure.settings()
    plain = type(s).from_url(
        s.url.replace("mqtts://", "mqtt://"),
        username=s.username,
        password=s.password,
        env={},
        connect_timeout_s=2.0,
    )
    with pytest.raises(BrokerError, match=r"closed the connection before accepting it.*mqtts://"):
        async with MqttLink(plain, link_name("svc")):
            pass


async def test_unreachable_and_unknown_hosts() -> None:
    from biofeedback.service.mqtt import MqttSettings

    closed = MqttSettings.from_url(f"mqtt://127.0.0.1:{free_port()}", env={})
    with pytest.raises(BrokerError, match="refused the TCP connection"):
        async with MqttLink(closed, link_name("svc")):
            pass
    unknown = MqttSettings.from_url("mqtt://no-such-host.invalid:1883", env={})
    with pytest.raises(BrokerError, match=r"'no-such-host\.invalid' is unknown"):
        async with MqttLink(unknown, link_name("svc")):
            pass


async def test_client_certificate_when_the_broker_requires_one(tmp_path: Path) -> None:
    async with mosquitto_secure(tmp_path, require_certificate=True) as b:
        assert b.tls is not None
        with pytest.raises(BrokerError, match="may require a client certificate"):
            async with MqttLink(b.settings(), link_name("svc")):
                pass
        bad = b.settings(cert_file=str(b.tls.stranger_cert), key_file=str(b.tls.stranger_key))
        with pytest.raises(BrokerError, match="may not accept the client certificate"):
            async with MqttLink(bad, link_name("svc")):
                pass
        s = b.settings(cert_file=str(b.tls.client_cert), key_file=str(b.tls.client_key))
        async with MqttLink(s, link_name("svc")) as link:
            assert link.connected


# ---- the role ACL (config/mosquitto/acl.example) -----------------------------------------


async def test_acl_gives_each_role_only_its_topics(secure: BrokerHandle) -> None:
    u = secure.users
    other = "c-0ther"
    svc_s = secure.settings(username="service", password=u["service"])
    dash_s = secure.settings(username="dashboard", password=u["dashboard"])
    rec_s = secure.settings(username="recorder", password=u["recorder"])
    app_s = secure.settings(username=C1, password=u[C1])
    async with (
        MqttLink(svc_s, "bf-service-" + C1) as svc,
        MqttLink(dash_s, "bf-web") as dash,
        MqttLink(rec_s, "bf-recorder") as rec,
        MqttLink(app_s, "app-" + C1) as app,
    ):
        await rec.subscribe("biofeedback/v1/#")
        await svc.subscribe(command_topic(C1) + "/#")
        await app.subscribe(topic(C1, Topic.SESSION))
        # A client's app may not read another client's data. (Mosquitto 2.0 grants the
        # subscription and then delivers nothing; MqttLink raises BrokerError when a broker
        # refuses one outright.)
        await app.subscribe(topic(other, Topic.SESSION))
        svc.publish_json(topic(other, Topic.SESSION), {"state": "other"}, qos=1, retain=True)

        svc.publish_json(topic(C1, Topic.SESSION), {"state": "ready"}, qos=1, retain=True)
        svc.publish_json(topic(C1, Topic.BEAT), {"rr": 800}, qos=1)
        dash.publish_json(topic(C1, Topic.BEAT), {"forged": True}, qos=1)  # denied
        rec.publish_json(command_topic(C1), {"forged": True}, qos=1)  # denied
        dash.publish_json(command_topic(C1), {"from": "dashboard"}, qos=1)
        app.publish_json(command_topic(C1, "client"), {"from": "app"}, qos=1)
        app.publish_json(command_topic(C1), {"from": "app-plain"}, qos=1)  # denied
        app.publish_json(command_topic(C1, "therapist"), {"from": "app-th"}, qos=1)  # denied
        app.publish_json(command_topic(other, "client"), {"from": "app-other"}, qos=1)  # denied
        svc.publish_json(topic(C1, Topic.CMD), {"from": "service"}, qos=1)  # denied
        # what each link must see first (30 s deadline), then a quiet window for anything denied
        must = ({"state": "ready"}, {"rr": 800}, {"from": "dashboard"})
        seen_by_rec = await collect_until(
            rec, lambda got: all(any(m.json() == p for m in got) for p in must), 1.0
        )
        seen_by_svc = await collect_until(svc, lambda got: len(got) >= 2, 0.3)
        seen_by_app = await collect_until(app, lambda got: len(got) >= 1, 0.3)
    rec_payloads = [(m.topic.rsplit("/", 2)[-2:], m.json()) for m in seen_by_rec]
    assert (["c-7f3a", "session"], {"state": "ready"}) in rec_payloads
    assert (["c-7f3a", "beat"], {"rr": 800}) in rec_payloads
    assert all(p != {"forged": True} for _, p in rec_payloads)
    assert sorted(m.json()["from"] for m in seen_by_svc) == ["app", "dashboard"]
    assert [m.json() for m in seen_by_app] == [{"state": "ready"}]


# ---- broker killed with SIGKILL and restarted ----------------------------------------------


@pytest.mark.slow
async def test_kill9_and_restart_delivers_held_events_and_republishes_state() -> None:
    """While Mosquitto is dead the service keeps publishing: events are held and arrive after
    the restart in order, retained state is the newest, status says online again."""
    async with mosquitto_plain(persistence=True) as b:
        proc = b.process
        assert proc is not None
        s = b.settings(5)
        will = (topic(C1, Topic.STATUS), b'{"online":false}', True)
        # The dashboard uses MQTT 3.1.1: Mosquitto 2.0.11 does not restore MQTT 5 sessions from
        # its persistence file after a restart (eclipse-mosquitto/mosquitto#2265), only 3.1.1
        # ones; docs/mqtt.md ("Offline policy") says so.
        async with (
            MqttLink(s, "bf-service-" + C1, will=will) as svc,
            MqttLink(b.settings(311), "bf-web") as dash,
        ):
            await dash.subscribe(f"biofeedback/v1/{C1}/event", qos=1)
            svc.publish_kind(C1, Topic.STATUS, {"online": True, "n": 0})
            svc.publish_kind(C1, Topic.SESSION, {"state": "exposing", "n": 1})
            svc.publish_kind(C1, Topic.EVENT, {"i": -1})
            it = dash.messages()
            assert (await next_message(it)).json() == {"i": -1}
            await asyncio.wait_for(svc.drain(), 30)
            await proc.save()  # the dashboard's session (its subscription) survives the kill

            await proc.kill()
            await wait_disconnected(svc)
            await wait_disconnected(dash)
            for i in range(10):
                svc.publish_kind(C1, Topic.EVENT, {"i": i})  # e.g. the arousal pause
                svc.publish_kind(C1, Topic.BEAT, {"rr": 800 + i})
            svc.publish_kind(C1, Topic.SESSION, {"state": "paused", "n": 2})
            assert svc.queued == 20  # events and samples; retained state is kept aside
            await asyncio.sleep(1.0)

            await proc.start()
            async with asyncio.timeout(30):
                await svc.wait_connected()
                await dash.wait_connected()
                await svc.drain()
            got = [(await next_message(it)).json()["i"] for _ in range(10)]
            assert got == list(range(10))
            assert svc.stats.reconnects == 1
            assert svc.stats.dropped_events == 0

            async with MqttLink(s, link_name("late")) as late:
                await late.subscribe(f"biofeedback/v1/{C1}/+")
                seen = await collect_until(late, has_topics("session", "status"), 1.0)
                state = {m.topic.rsplit("/", 1)[-1]: m.json() for m in seen}
            assert state["session"] == {"state": "paused", "n": 2}
            assert state["status"] == {"online": True, "n": 0}


@pytest.mark.slow
async def test_restart_without_persistence_still_has_the_newest_retained_state() -> None:
    """A broker that forgot everything gets the retained state back from the service (3.1.1)."""
    async with mosquitto_plain(persistence=False) as b:
        proc = b.process
        assert proc is not None
        s = b.settings(311)
        async with MqttLink(s, "bf-service-" + C1) as svc:
            svc.publish_kind(C1, Topic.STATUS, {"online": True})
            svc.publish_kind(C1, Topic.SESSION, {"state": "exposing"})
            svc.publish_kind(C1, Topic.GUIDANCE, {"active": False})
            await asyncio.wait_for(svc.drain(), 30)
            await proc.kill()
            svc.publish_kind(C1, Topic.SESSION, {"state": "paused"})
            svc.publish_kind(C1, Topic.GUIDANCE, {"active": True})
            await proc.start()
            async with asyncio.timeout(30):
                await svc.wait_connected()
                await svc.drain()
            async with MqttLink(s, link_name("late")) as late:
                await late.subscribe(f"biofeedback/v1/{C1}/+")
                seen = await collect_until(late, has_topics("session", "status", "guidance"), 1.0)
                state = {m.topic.rsplit("/", 1)[-1]: m.json() for m in seen}
    assert state == {
        "status": {"online": True},
        "session": {"state": "paused"},
        "guidance": {"active": True},
    }


# ---- the offline queue's overflow policy ----------------------------------------------------


@pytest.mark.slow
async def test_offline_queue_drops_samples_first_and_events_loudly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with mosquitto_plain(persistence=True) as b:
        proc = b.process
        assert proc is not None
        s = b.settings(5, queue_limit=20)
        sub_s = b.settings(311)  # see the kill -9 test on MQTT 5 sessions and Mosquitto 2.0
        async with MqttLink(s, "bf-service-" + C1) as svc, MqttLink(sub_s, "sub") as sub:
            await sub.subscribe(f"biofeedback/v1/{C1}/#")
            await proc.save()  # the subscriber's session survives the kill
            await proc.kill()
            await wait_disconnected(svc)
            await wait_disconnected(sub)
            caplog.set_level(logging.WARNING, logger="biofeedback.service.mqtt")
            for i in range(15):
                svc.publish_kind(C1, Topic.BEAT, {"s": i})
            for i in range(10):
                svc.publish_kind(C1, Topic.EVENT, {"e": i})
            # 25 offered, limit 20: the 5 oldest samples went, every event is held
            assert svc.queued == 20
            assert svc.stats.dropped_samples == 5
            assert svc.stats.dropped_events == 0
            for i in range(10, 25):
                svc.publish_kind(C1, Topic.EVENT, {"e": i})
            # the other 10 samples made room; then the oldest events had to go, each logged
            assert svc.stats.dropped_samples == 15
            assert svc.stats.dropped_events == 5
            errors = [r for r in caplog.records if r.levelno == logging.ERROR]
            assert len(errors) == 5
            assert all(
                "dropped event on biofeedback/v1/c-7f3a/event" in r.getMessage() for r in errors
            )
            assert any("dropping the oldest live samples" in r.getMessage() for r in caplog.records)
            await proc.start()
            async with asyncio.timeout(30):
                await sub.wait_connected()
                await svc.wait_connected()
                await svc.drain()
            # the 20 held events must come; then a quiet window for any that should not
            seen = await collect_until(
                sub, lambda got: sum("e" in m.json() for m in got) >= 20, 1.0
            )
            got = [m.json() for m in seen]
    assert [g["e"] for g in got if "e" in g] == list(range(5, 25))


async def test_samples_that_expire_while_queued_are_not_sent() -> None:
    async with mosquitto_plain() as b:
        proc = b.process
        assert proc is not None
        async with MqttLink(b.settings(5), "bf-service-" + C1) as svc:
            await proc.kill()
            await wait_disconnected(svc)
            svc.publish_json(topic(C1, Topic.BEAT), {"old": True}, qos=0, expiry_s=1)
            svc.publish_json(topic(C1, Topic.EVENT), {"kept": True}, qos=1)
            await asyncio.sleep(1.2)
            await proc.start()
            async with asyncio.timeout(30):
                await svc.wait_connected()
                await svc.drain()
            assert svc.stats.expired == 1


# ---- the service process crashes --------------------------------------------------------------

CRASHER = textwrap.dedent(
    """
    import asyncio, sys
    from biofeedback.service.mqtt import MqttLink, MqttSettings

    async def main() -> None:
        s = MqttSettings.from_url(sys.argv[1], keepalive_s=2, env={})
        will = (sys.argv[2], b'{"online":false}', True)
        async with MqttLink(s, "bf-service-crasher", will=will) as link:
            link.publish_json(sys.argv[2], {"online": True}, qos=1, retain=True)
            await link.drain()
            print("ready", flush=True)
            await asyncio.sleep(60)

    asyncio.run(main())
    """
)


@pytest.mark.slow
async def test_last_will_says_offline_when_the_service_process_is_killed() -> None:
    async with mosquitto_plain() as b:
        status = topic(C1, Topic.STATUS)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            CRASHER,
            b.url,
            status,
            stdout=asyncio.subprocess.PIPE,
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        )
        try:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 20)
            assert line.strip() == b"ready"
            async with MqttLink(b.settings(), "watcher") as watcher:
                await watcher.subscribe(status)
                it = watcher.messages()
                assert (await next_message(it)).json() == {"online": True}
                proc.send_signal(signal.SIGKILL)
                await proc.wait()
                assert json.loads((await next_message(it)).payload) == {"online": False}
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


async def test_a_severed_link_reconnects_and_resubscribes() -> None:
    async with mosquitto_plain() as b:
        s = b.settings(5)
        async with MqttLink(s, "sub") as sub, MqttLink(s, "pub") as pub:
            await sub.subscribe("bf-test/x")
            sever(sub)
            async with asyncio.timeout(10):
                await asyncio.sleep(0.1)
                await sub.wait_connected()
            pub.publish_json("bf-test/x", {"after": True}, qos=1)
            assert (await next_message(sub.messages())).json() == {"after": True}


async def test_no_paho_threads_or_sockets_leak(tmp_path: Path) -> None:
    """Open and close links, including failed logins and refused connections: every paho
    network thread ends and no socket is left open (a leak would also fail this suite through
    ResourceWarning)."""
    import threading

    def paho_threads() -> list[str]:
        return [t.name for t in threading.enumerate() if t.name.startswith("paho-mqtt-client-")]

    before = paho_threads()
    fds_before = len(os.listdir("/proc/self/fd"))
    async with mosquitto_secure(tmp_path) as b:
        for i in range(5):
            async with MqttLink(b.settings(5 if i % 2 else 311), f"leak-{i}") as link:
                await link.subscribe("biofeedback/v1/#")
            with pytest.raises(BrokerError):
                async with MqttLink(b.settings(password="wrong"), f"leak-bad-{i}"):
                    pass
    from biofeedback.service.mqtt import MqttSettings

    closed = MqttSettings.from_url(f"mqtt://127.0.0.1:{free_port()}", env={})
    with pytest.raises(BrokerError):
        async with MqttLink(closed, "leak-closed"):
            pass
    assert paho_threads() == before
    assert len(os.listdir("/proc/self/fd")) <= fds_before


async def test_publishing_on_a_closed_link_or_a_wildcard() -> None:
    async with mosquitto_plain() as b:
        link = MqttLink(b.settings(), "closing")
        async with link:
            with pytest.raises(ValueError, match="invalid topic"):
                link.publish_json("biofeedback/v1/+/beat", {})
            with pytest.raises(ValueError, match="qos must be 0 or 1"):
                link.publish_json("a/b", {}, qos=2)
        before = link.stats.undelivered_at_close
        link.publish_json("a/b", {})  # after close: counted and logged, not raised
        assert link.stats.undelivered_at_close == before + 1
        with pytest.raises(BrokerError, match="is closed"):
            await link.wait_connected()


async def test_expired_messages_are_not_delivered_late() -> None:
    """MQTT 5 message expiry reaches the broker: a command that expired while the service was
    disconnected is never delivered (a stale consent must not be applied), a fresh one is."""
    async with mosquitto_plain() as b:
        s = b.settings(5)
        # away for 5 s: the stale command expires 1 s after the broker has it, which under a
        # loaded machine can be a second or more after it was handed to the link
        slow = b.settings(5, reconnect_min_s=5, reconnect_max_s=5)
        async with MqttLink(slow, "bf-service-x") as svc, MqttLink(s, "bf-web") as dash:
            await svc.subscribe(command_topic(C1), qos=1)
            sever(svc)
            await wait_disconnected(svc)
            dash.publish_json(command_topic(C1), {"id": "stale"}, qos=1, expiry_s=1)
            await asyncio.sleep(1.5)
            dash.publish_json(command_topic(C1), {"id": "fresh"}, qos=1, expiry_s=30)
            await asyncio.wait_for(dash.drain(), 30)
            async with asyncio.timeout(30):
                await svc.wait_connected()
            # the fresh one must come (a stale one would have come before it); then a quiet
            # window for anything after it
            seen = await collect_until(
                svc, lambda got: any(m.json()["id"] == "fresh" for m in got), 1.0
            )
            got = [m.json()["id"] for m in seen]
    assert got == ["fresh"]
