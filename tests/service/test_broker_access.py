"""Only the service's parts can speak on the embedded broker (issue 16, "The embedded broker
accepts anyone"): per-run logins, the role ACL, no anonymous access, with the managed Mosquitto
and with the amqtt fallback, each as the service starts it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import stat
import time
from collections.abc import AsyncIterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from hypothesis import given
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from biofeedback.errors import BrokerError
from biofeedback.service.broker import EmbeddedBroker
from biofeedback.service.broker_access import (
    EMBEDDED_ACL,
    STATE_KINDS,
    BrokerRole,
    filter_covers,
    mosquitto_acl,
)
from biofeedback.service.mqtt import MqttLink
from biofeedback.service.topics import Topic, topic
from tests.brokers import collect_until, sever
from tests.service.embedded_support import collect, login_settings, next_message
from tests.support import require_binary

C1 = "c-acl"
CMD = topic(C1, Topic.CMD)
STATUS = topic(C1, Topic.STATUS)
SESSION = topic(C1, Topic.SESSION)


def _consent(cid: str) -> dict[str, object]:
    return {"v": 1, "id": cid, "role": "client", "cmd": "consent", "args": {}}


@pytest.fixture(
    params=[
        pytest.param(("mosquitto", 5), id="mosquitto-5", marks=pytest.mark.mosquitto),
        pytest.param(("mosquitto", 311), id="mosquitto-311", marks=pytest.mark.mosquitto),
        pytest.param(("amqtt", 311), id="amqtt-311"),
    ]
)
async def broker(request: pytest.FixtureRequest) -> AsyncIterator[tuple[EmbeddedBroker, int]]:
    """The embedded broker exactly as the service starts it, and the protocol to speak."""
    backend, proto = request.param
    if backend == "mosquitto":
        require_binary("mosquitto", "mosquitto")
    async with EmbeddedBroker(backend=backend) as b:
        yield b, proto


async def test_anonymous_unknown_and_wrong_password_logins_are_refused(
    broker: tuple[EmbeddedBroker, int],
) -> None:
    b, proto = broker
    with pytest.raises(BrokerError, match=r"refused the login .* no username \(anonymous\)"):
        await MqttLink(login_settings(b, None, proto), "stranger").__aenter__()
    for user, password in (("service", "guess"), ("admin", "admin"), ("dashboard", "")):
        s = login_settings(b, None, proto, username=user, password=password or None)
        with pytest.raises(BrokerError, match=r"refused the login"):
            await MqttLink(s, f"bf-service-{C1}").__aenter__()


async def test_only_the_dashboard_and_the_demo_actor_can_send_commands(
    broker: tuple[EmbeddedBroker, int],
) -> None:
    """A client consent reaches the service only from the dashboard's and the demo's users."""
    b, proto = broker
    async with MqttLink(login_settings(b, BrokerRole.SERVICE, proto), f"bf-service-{C1}") as svc:
        await svc.subscribe(CMD, qos=1)
        await svc.subscribe(CMD + "/+", qos=1)
        senders = {
            role: MqttLink(login_settings(b, role, proto), f"sender-{role}") for role in BrokerRole
        }
        try:
            for link in senders.values():
                await link.__aenter__()
            for role, link in senders.items():
                link.publish_json(CMD, _consent(f"plain-{role}"), qos=1)
                for bound in ("client", "therapist"):
                    link.publish_json(f"{CMD}/{bound}", _consent(f"{bound}-{role}"), qos=1)
            got = await collect_until(svc, lambda got: len(got) >= 2, 1.5)
        finally:
            for link in senders.values():
                await link.aclose()
    assert sorted(m.json()["id"] for m in got) == ["plain-dashboard", "plain-demo-actor"]


async def test_only_the_service_can_publish_state_and_a_spoof_does_not_stick(
    broker: tuple[EmbeddedBroker, int],
) -> None:
    """A retained `status` saying the client is offline, from anyone but the service, is
    neither delivered nor kept for later subscribers."""
    b, proto = broker
    spoof = {"v": 1, "t": 1.0, "client": C1, "online": False, "reason": "spoofed"}
    async with (
        MqttLink(login_settings(b, BrokerRole.SERVICE, proto), f"bf-service-{C1}") as svc,
        MqttLink(login_settings(b, BrokerRole.DASHBOARD, proto), "bf-dashboard-1") as dash,
        MqttLink(login_settings(b, BrokerRole.DEMO_ACTOR, proto), "bf-demo-actor") as actor,
        MqttLink(login_settings(b, BrokerRole.OBSERVER, proto), "observer") as observer,
    ):
        await dash.subscribe(topic(C1, Topic.STATUS), qos=1)
        await dash.subscribe(SESSION, qos=1)
        svc.publish_json(STATUS, {"online": True, "by": "service"}, qos=1, retain=True)
        svc.publish_json(SESSION, {"state": "exposing", "by": "service"}, qos=1, retain=True)
        await asyncio.wait_for(svc.drain(), 5)
        for link in (dash, actor, observer):
            link.publish_json(STATUS, spoof, qos=1, retain=True)
            link.publish_json(SESSION, {"state": "ended", "by": "spoof"}, qos=1, retain=True)
            for kind in STATE_KINDS:
                link.publish_json(topic(C1, kind), {"by": "spoof"}, qos=1)
        live = await collect_until(dash, lambda got: len(got) >= 2, 1.5)
        async with MqttLink(login_settings(b, BrokerRole.DASHBOARD, proto), "late") as late:
            await late.subscribe(topic(C1, Topic.STATUS), qos=1)
            await late.subscribe(SESSION, qos=1)
            kept = await collect_until(late, lambda got: len(got) >= 2, 1.0)
    assert sorted(m.json()["by"] for m in live) == ["service", "service"]
    assert {m.topic: m.json() for m in kept} == {
        STATUS: {"online": True, "by": "service"},
        SESSION: {"state": "exposing", "by": "service"},
    }


async def test_each_role_reads_only_its_topics(broker: tuple[EmbeddedBroker, int]) -> None:
    b, proto = broker
    async with MqttLink(login_settings(b, BrokerRole.SERVICE, proto), f"bf-service-{C1}") as svc:
        readers = {
            role: MqttLink(login_settings(b, role, proto), f"r-{role}") for role in BrokerRole
        }
        try:
            for link in readers.values():
                await link.__aenter__()
                for kind in Topic:
                    # Mosquitto grants a subscription it will deliver nothing on; the amqtt
                    # fallback refuses one that is not wholly readable (it could leak retained)
                    with contextlib.suppress(BrokerError):
                        await link.subscribe(topic(C1, kind), qos=1)
            readers[BrokerRole.DASHBOARD].publish_json(CMD, _consent("c-1"), qos=1)
            svc.publish_json(topic(C1, Topic.EVENT), {"kind": "x"}, qos=1)
            svc.publish_json(SESSION, {"state": "ready"}, qos=1)
            # what each role must see (30 s deadline), then a quiet window for anything else
            must = {BrokerRole.SERVICE: 1, BrokerRole.DASHBOARD: 2, BrokerRole.DEMO_ACTOR: 1,
                    BrokerRole.OBSERVER: 3}  # fmt: skip
            seen = {
                role: sorted(
                    m.topic.rsplit("/", 1)[1]
                    for m in await collect_until(link, lambda got, n=must[role]: len(got) >= n, 1.0)
                )
                for role, link in readers.items()
            }
        finally:
            for link in readers.values():
                await link.aclose()
    assert seen[BrokerRole.SERVICE] == ["cmd"]  # commands, not its own output
    assert seen[BrokerRole.DASHBOARD] == ["event", "session"]  # not others' commands
    assert seen[BrokerRole.DEMO_ACTOR] == ["session"]
    assert seen[BrokerRole.OBSERVER] == ["cmd", "event", "session"]


async def test_the_service_s_last_will_works_and_nobody_else_can_leave_one_on_state(
    broker: tuple[EmbeddedBroker, int],
) -> None:
    b, proto = broker
    offline = b'{"online":false}'
    async with MqttLink(login_settings(b, BrokerRole.DASHBOARD, proto), "bf-dashboard-1") as dash:
        await dash.subscribe(STATUS, qos=1)
        # Mosquitto accepts the connection and drops the will when it would fire; the amqtt
        # fallback refuses a will its user could not publish at connect time.
        rogue = MqttLink(
            login_settings(b, BrokerRole.DEMO_ACTOR, proto, keepalive_s=5),
            "bf-demo-actor",
            will=(STATUS, offline, True),
        )
        try:
            await rogue.__aenter__()
        except BrokerError:
            refused = True
        else:
            refused = False
            sever(rogue)
            await asyncio.sleep(1.0)
        finally:
            await rogue.aclose()
        assert await collect(dash, 0.5) == []
        assert refused == (b.backend == "amqtt")
        svc = MqttLink(
            login_settings(b, BrokerRole.SERVICE, proto, keepalive_s=5),
            f"bf-service-{C1}",
            will=(STATUS, offline, True),
        )
        await svc.__aenter__()
        try:
            svc.publish_json(STATUS, {"online": True}, qos=1, retain=True)
            assert (await next_message(dash)).json() == {"online": True}
            sever(svc)
            assert (await next_message(dash, 10)).payload == offline
        finally:
            await svc.aclose()


def _impostor(port: int, client_id: str, *, clean: bool) -> list[str]:
    """The service's client id, its user name, a wrong password, and a will that consents for
    the client: what a local process might try. The broker's answers, as text."""
    c = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=MQTTProtocolVersion.MQTTv311,
        clean_session=clean,
    )
    c.username_pw_set("service", "not-the-password")
    c.will_set(CMD, json.dumps(_consent("will")).encode(), qos=1, retain=True)
    answers: list[str] = []
    c.on_connect = lambda _c, _u, _f, rc, _p: answers.append(str(rc))
    c.connect("127.0.0.1", port, 5)
    try:
        for _ in range(20):
            if c.loop(0.05) != paho.MQTT_ERR_SUCCESS:
                break
    finally:
        c.disconnect()
        sock = c.socket()
        if sock is not None:
            sock.close()
    return answers


@pytest.mark.parametrize("clean", [True, False], ids=["clean-session", "persistent-session"])
async def test_a_wrong_password_cannot_take_over_the_service_s_session(
    broker: tuple[EmbeddedBroker, int], clean: bool
) -> None:
    """amqtt 0.12 let such a client close the service's connection, wipe its subscriptions or
    slip its will (a consent) into the service's session; neither broker may."""
    b, proto = broker
    name = f"bf-service-{C1}"
    async with (
        MqttLink(login_settings(b, BrokerRole.SERVICE, proto), name) as svc,
        MqttLink(login_settings(b, BrokerRole.DASHBOARD, proto), "bf-dashboard-1") as dash,
    ):
        await svc.subscribe(CMD, qos=1)
        answers = await asyncio.to_thread(_impostor, b.port, name, clean=clean)
        assert answers, "the broker did not answer the impostor's CONNECT"
        assert all("Not authorized" in a for a in answers), answers
        await asyncio.sleep(1.5)  # a session taken over would have been closed meanwhile
        dash.publish_json(CMD, _consent("real"), qos=1)
        got = await collect_until(svc, lambda got: len(got) >= 1, 1.5)
        assert [m.json()["id"] for m in got] == ["real"]
        assert svc.stats.reconnects == 0
        assert svc.connected


def _read_files(folder: Path, pid: int, observer_file: Path) -> dict[str, bytes]:
    """Everything a password could leak into: the broker's files, command line, environment."""
    mode = lambda p: oct(stat.S_IMODE(p.stat().st_mode)).encode()  # noqa: E731
    got = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    got |= {f"mode of {p.name}": mode(p) for p in folder.iterdir() if p.is_file()}
    got["mode of the folder"] = mode(folder)
    got["observer file"] = observer_file.read_bytes()
    got["mode of observer file"] = mode(observer_file)
    got["command line"] = Path(f"/proc/{pid}/cmdline").read_bytes()
    got["environment"] = Path(f"/proc/{pid}/environ").read_bytes()
    return got


@pytest.mark.mosquitto
async def test_the_passwords_are_in_no_file_command_line_or_log(tmp_path: Path) -> None:
    require_binary("mosquitto", "mosquitto")
    observer_file = tmp_path / "observer.json"
    async with EmbeddedBroker(backend="mosquitto", observer_file=observer_file) as b:
        proc = b.process
        assert proc is not None
        assert proc.pid is not None
        async with MqttLink(login_settings(b, BrokerRole.SERVICE), f"bf-service-{C1}"):
            pass
        folder = Path(proc.workdir)
        files = await asyncio.to_thread(_read_files, folder, proc.pid, observer_file)
        assert files.pop("mode of the folder") == b"0o700"
        saved = json.loads(files.pop("observer file"))
        assert saved == {
            "url": b.url,
            "username": "observer",
            "password": b.logins.observer.password,
        }
        for name in ("passwords", "acl", "mosquitto.conf", "observer file"):
            assert files.pop(f"mode of {name}") == b"0o600", name
        users = files["passwords"].decode().splitlines()
        assert sorted(line.split(":")[0] for line in users) == sorted(map(str, BrokerRole))
        assert files["acl"].decode() == mosquitto_acl()
        for login in b.logins.all():
            for name, text in files.items():
                assert login.password.encode() not in text, name
            assert login.password not in repr(login)
    assert not observer_file.exists()


@pytest.mark.mosquitto
async def test_observer_login_reads_everything_and_writes_nothing(tmp_path: Path) -> None:
    """The opt-in read-only login a local tool gets from the observer file."""
    require_binary("mosquitto", "mosquitto")
    path = tmp_path / "observer.json"
    async with EmbeddedBroker(observer_file=path) as b:
        saved = json.loads(path.read_text())
        s = login_settings(b, None, username=saved["username"], password=saved["password"])
        async with (
            MqttLink(s, "tool") as tool,
            MqttLink(login_settings(b, BrokerRole.SERVICE), f"bf-service-{C1}") as svc,
        ):
            await tool.subscribe("biofeedback/v1/#", qos=1)
            await tool.subscribe("$SYS/broker/version", qos=1)
            await svc.subscribe(CMD, qos=1)
            svc.publish_json(SESSION, {"state": "ready"}, qos=1, retain=True)
            tool.publish_json(CMD, _consent("tool"), qos=1)
            tool.publish_json(STATUS, {"online": False}, qos=1, retain=True)
            got = {m.topic for m in await collect_until(tool, lambda got: len(got) >= 2, 1.0)}
            assert got == {SESSION, "$SYS/broker/version"}
            assert await collect(svc, 0.5) == []


def test_an_observer_file_that_cannot_be_written_is_a_clear_error(tmp_path: Path) -> None:
    async def run() -> None:
        async with EmbeddedBroker(backend="amqtt", observer_file=tmp_path / "no" / "such" / "x"):
            pass

    with pytest.raises(BrokerError, match=r"cannot write the broker's observer login to .*x"):
        asyncio.run(run())


# ---- the ACL as data ---------------------------------------------------------------------


def test_the_acl_gives_commands_to_the_dashboard_and_actor_and_state_to_the_service() -> None:
    from biofeedback.service.broker_access import allowed

    writers = {
        kind: sorted(r for r, g in EMBEDDED_ACL.items() if allowed(g, "write", topic(C1, kind)))
        for kind in Topic
    }
    assert writers[Topic.CMD] == [BrokerRole.DASHBOARD, BrokerRole.DEMO_ACTOR]
    for kind in STATE_KINDS:
        assert writers[kind] == [BrokerRole.SERVICE], kind
    assert writers[Topic.REPLY] == [BrokerRole.SERVICE]
    for role, grants in EMBEDDED_ACL.items():
        assert not allowed(grants, "write", f"{CMD}/client"), role
        assert not allowed(grants, "write", "#"), role


_level = st.sampled_from(["a", "b", "cmd", "+", "#", "$SYS", "x y"])


@given(
    st.lists(_level, min_size=1, max_size=5),
    st.lists(st.sampled_from(["a", "b", "cmd", "$SYS", "x y"]), min_size=1, max_size=5),
)
def test_filter_covers_a_topic_exactly_when_mqtt_matching_says_so(
    grant_levels: list[str], topic_levels: list[str]
) -> None:
    if "#" in grant_levels[:-1]:
        grant_levels = grant_levels[: grant_levels.index("#") + 1]
    grant, name = "/".join(grant_levels), "/".join(topic_levels)
    assert filter_covers(grant, name) == paho.topic_matches_sub(grant, name)


def test_a_subscription_is_covered_only_when_it_stays_inside_the_grant() -> None:
    grant = "biofeedback/v1/+/reply/#"
    assert filter_covers(grant, "biofeedback/v1/+/reply")
    assert filter_covers(grant, "biofeedback/v1/c1/reply/+")
    assert filter_covers(grant, "biofeedback/v1/+/reply/#")
    assert not filter_covers(grant, "biofeedback/v1/#")
    assert not filter_covers(grant, "biofeedback/v1/+/+")
    assert not filter_covers("biofeedback/v1/+/status", "biofeedback/v1/#")
    assert not filter_covers("#", "$SYS/broker/version")
    assert filter_covers("$SYS/#", "$SYS/broker/version")


async def test_the_amqtt_fallback_keeps_delivering_while_clients_come_and_subscribe() -> None:
    """With the ACL each delivery awaits a topic check; amqtt's broadcast task then died of a
    subscription made meanwhile ("dictionary changed size during iteration"), and every later
    message was lost."""
    async with EmbeddedBroker(backend="amqtt") as b:
        svc = MqttLink(login_settings(b, BrokerRole.SERVICE, 311), f"bf-service-{C1}")
        tap = MqttLink(login_settings(b, BrokerRole.OBSERVER, 311), "recorder")
        dash = MqttLink(login_settings(b, BrokerRole.DASHBOARD, 311), "bf-dashboard-1")
        async with svc, tap, dash:
            # the tap's filter comes first in amqtt's table: a delivery waits on its check
            # before it reaches the dashboard's
            await tap.subscribe("biofeedback/v1/+/event", qos=1)
            await dash.subscribe(topic(C1, Topic.EVENT), qos=1)

            async def newcomer(i: int) -> None:
                # new filters (new keys in amqtt's table), and gone again when it disconnects
                async with MqttLink(login_settings(b, BrokerRole.OBSERVER, 311), f"tool-{i}") as t:
                    for n in range(5):
                        await t.subscribe(topic(f"c-{i}-{n}", Topic.EVENT), qos=1)

            async def publish() -> None:
                for i in range(300):  # over about 1.5 s, while the newcomers arrive
                    svc.publish_kind(C1, Topic.EVENT, {"i": i})
                    await asyncio.sleep(0.005)

            await asyncio.gather(publish(), *(newcomer(i) for i in range(12)))
            got = [
                m.json()["i"] for m in await collect_until(dash, lambda got: len(got) >= 300, 2.0)
            ]
    assert got == list(range(300))


def _raw_retained(port: int, username: str, password: str, topic_filter: str) -> list[str]:
    """Topics of everything the broker sends a plain 3.1.1 client (no filtering of its own) in
    the second after it subscribed to `topic_filter`."""
    got: list[str] = []
    c = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=f"raw-{len(topic_filter)}",
        protocol=MQTTProtocolVersion.MQTTv311,
    )
    c.username_pw_set(username, password)
    c.on_message = lambda _c, _u, msg: got.append(msg.topic)
    c.on_connect = lambda client, *_: client.subscribe(topic_filter, 1)
    c.connect("127.0.0.1", port, 5)
    try:
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            c.loop(0.05)
    finally:
        c.disconnect()
        sock = c.socket()
        if sock is not None:
            sock.close()
    return got


async def test_the_amqtt_fallback_sends_retained_state_only_for_a_client_s_own_subscriptions() -> (
    None
):
    """amqtt 0.12 sent a new client the retained messages of every topic any session had
    subscribed to, whatever that client subscribed to (and whatever it may read)."""
    async with EmbeddedBroker(backend="amqtt") as b:
        svc = MqttLink(login_settings(b, BrokerRole.SERVICE, 311), f"bf-service-{C1}")
        tap = MqttLink(login_settings(b, BrokerRole.OBSERVER, 311), "tap")
        async with svc, tap:
            await tap.subscribe("biofeedback/v1/#", qos=1)
            svc.publish_json(SESSION, {"state": "ready"}, qos=1, retain=True)
            svc.publish_json(STATUS, {"online": True}, qos=1, retain=True)
            await asyncio.wait_for(svc.drain(), 5)
            actor = b.login(BrokerRole.DEMO_ACTOR)
            got = await asyncio.to_thread(
                _raw_retained, b.port, actor.username, actor.password, SESSION
            )
    assert got == [SESSION]


@pytest.mark.mosquitto
async def test_on_a_clinic_broker_with_the_example_acl_the_service_login_sees_no_state(
    tmp_path: Path,
) -> None:
    """What docs/mqtt.md ("One login per service process") says: the dashboard inside a service
    logs in with the service's login, which acl.example lets neither read state nor command."""
    from biofeedback.web.mqttfeed import SUBSCRIBED, LinkSink
    from tests.brokers import mosquitto_secure

    async with mosquitto_secure(tmp_path) as secure:
        as_service = secure.settings(5)  # the handle logs in as "service"
        dashboard_login = secure.settings(
            5, username="dashboard", password=secure.users["dashboard"]
        )
        async with (
            MqttLink(as_service, f"bf-service-{C1}") as svc,
            MqttLink(as_service, "bf-dashboard-in-service") as inside,
            MqttLink(dashboard_login, "bf-dashboard-own-login") as own,
        ):
            await svc.subscribe(CMD, qos=1)
            for kind in SUBSCRIBED:
                await inside.subscribe(f"biofeedback/v1/+/{kind}", qos=1)
                await own.subscribe(f"biofeedback/v1/+/{kind}", qos=1)
            svc.publish_json(SESSION, {"state": "ready"}, qos=1, retain=True)
            await LinkSink(inside).send_command(C1, json.dumps(_consent("inside")).encode())
            await LinkSink(own).send_command(C1, json.dumps(_consent("own")).encode())
            # what must come first (30 s deadline); the negative check on `inside` after it
            seen_own = await collect_until(own, lambda got: len(got) >= 1, 0.3)
            commands = await collect_until(svc, lambda got: len(got) >= 1, 0.3)
            seen_inside = await collect(inside, 1.0)
    assert seen_inside == []
    assert [m.topic for m in seen_own] == [SESSION]
    assert [m.json()["id"] for m in commands] == ["own"]
