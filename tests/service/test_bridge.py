"""A room joined to the clinic through a real Mosquitto bridge, and the link between them cut.

Two real Mosquitto processes: the clinic's (TLS, passwords, `config/mosquitto/acl.example`) and
the room's, running the shipped `config/mosquitto/room-bridge.conf.example` (only paths, ports,
the CA and the bridge's password rewritten). On the room broker a whole `biofeedback demo`
(simulated strap, client and therapist) logs in as `service`; on the clinic broker the real
dashboard application (`create_app`, logged in as `dashboard`) and a read-only `recorder` tap.
The bridge reaches the clinic through a TCP relay that the test cuts (every connection reset,
new ones refused) right after the client consents to a step, and restores 4 s (100 session
seconds) later. Both brokers keep running: it is the link that fails.

Checked:
- the session pauses on arousal while the link is down, and that pause event reaches the
  clinic after the link returns, with every session event in order and none missing;
- a therapist's command sent from the dashboard while the link is down is applied once after it
  returns and its reply reaches the dashboard; the same command id delivered twice more (during
  the outage and after it, as a QoS 1 redelivery would) is applied once, its reply repeated;
- retained state: after the service stops, the clinic holds the same retained `session` as the
  room (its last event's `seq`) and `status` offline, and the dashboard shows them.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp import web

from biofeedback.service.mqtt import MqttLink, MqttSettings
from biofeedback.web import WebConfig, create_app
from biofeedback.web.app import HUB_KEY
from tests.brokers import BrokerHandle, example_acl, mosquitto_secure
from tests.service.bridge_support import LinkProxy, RoomBroker
from tests.support import REPO_ROOT, require_binary

pytestmark = [pytest.mark.slow, pytest.mark.mosquitto]

CLIENT = "c-room-a"
SPEED = 25
OUTAGE_S = 4.0
ROOM_SERVICE_PASSWORD = "room-service-password-for-tests"


def room_acl() -> str:
    """acl.example for the room; `demo` also runs its simulated people under the `service` login
    (docs/mqtt.md, "One login per service process"), so that user may also send commands and read
    the session and replies here. A real room running `run` uses acl.example as it is."""
    text = example_acl().read_text()
    extra = (
        "user service\n"
        "topic write biofeedback/v1/+/cmd\n"
        "topic read biofeedback/v1/+/session\n"
        "topic read biofeedback/v1/+/reply/#\n"
    )
    assert text.count("\nuser service\n") == 1
    return text.replace("\nuser service\n", "\n" + extra, 1)


def clinic_login(broker: BrokerHandle, user: str, protocol: int = 5) -> MqttSettings:
    return broker.settings(protocol, username=user, password=broker.users[user])


def command(cid: str, **args: Any) -> bytes:
    body = {"v": 1, "id": cid, "role": "therapist", "cmd": "adjust_thresholds", "args": args}
    return json.dumps(body).encode()


async def retained(settings: MqttSettings, name: str, topic_name: str) -> dict[str, Any]:
    async with MqttLink(settings, name) as link:
        await link.subscribe(topic_name, qos=1)
        msg = await asyncio.wait_for(link.messages().__anext__(), 30)
        assert msg.retain
        return dict(json.loads(msg.payload))


T = TypeVar("T")


async def settle(
    read: Callable[[], Awaitable[T]], ok: Callable[[T], bool], limit_s: float = 30.0
) -> T:
    """`read()` again until `ok` holds of what it gave or `limit_s` passed; the last reading
    (the caller's asserts then say what is wrong)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    got = await read()
    while not ok(got) and loop.time() < deadline:
        await asyncio.sleep(0.2)
        got = await read()
    return got


async def test_room_bridged_to_clinic_survives_a_cut_link(tmp_path: Path) -> None:
    binary = require_binary("mosquitto", "mosquitto")
    (tmp_path / "clinic").mkdir()
    events: dict[int, tuple[dict[str, Any], float]] = {}  # seq -> (payload, arrival)
    replies: list[dict[str, Any]] = []
    async with mosquitto_secure(tmp_path / "clinic") as clinic:
        assert clinic.ca_file is not None
        clinic_port = int(clinic.url.rsplit(":", 1)[1])
        async with LinkProxy(("127.0.0.1", clinic_port)) as link:
            room = RoomBroker(
                tmp_path / "room",
                clinic=("127.0.0.1", link.port),
                ca_file=Path(clinic.ca_file),
                remote_username="service",
                remote_password=clinic.users["service"],
                users={"service": ROOM_SERVICE_PASSWORD},
                acl=room_acl(),
                binary=binary,
            )
            async with room:
                # the dashboard on the clinic broker, as `biofeedback dashboard` runs it
                app = create_app(
                    WebConfig(
                        mqtt=clinic_login(clinic, "dashboard"),
                        therapist_secret="s" * 16,
                        mqtt_client_name="bf-web-clinic",
                    )
                )
                runner = web.AppRunner(app)
                await runner.setup()
                hub = app[HUB_KEY]
                tap = MqttLink(clinic_login(clinic, "recorder"), "bf-recorder-clinic")
                sender = MqttLink(clinic_login(clinic, "dashboard"), "bf-test-resender")
                await tap.__aenter__()
                await sender.__aenter__()
                demo = None
                try:
                    await tap.subscribe(f"biofeedback/v1/{CLIENT}/event", qos=1)
                    await tap.subscribe(f"biofeedback/v1/{CLIENT}/reply/#", qos=1)
                    env = {
                        **os.environ,
                        "PYTHONPATH": str(REPO_ROOT),
                        "BIOFEEDBACK_MQTT_USERNAME": "service",
                        "BIOFEEDBACK_MQTT_PASSWORD": ROOM_SERVICE_PASSWORD,
                    }
                    demo = await asyncio.create_subprocess_exec(
                        sys.executable, "-m", "biofeedback.cli", "demo",
                        "--speed", str(SPEED), "--mqtt-url", room.url, "--client-id", CLIENT,
                        "--data-dir", str(tmp_path / "data"), "--no-web", "--duration", "3000",
                        cwd=REPO_ROOT, env=env,
                        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
                    )  # fmt: skip
                    run = await drive(hub, tap, sender, link, demo, events, replies)
                    # the service stops: its last retained state must reach the clinic
                    demo.send_signal(signal.SIGTERM)
                    _, err = await asyncio.wait_for(demo.communicate(), 30)
                    assert demo.returncode == 0, err.decode()[-2000:]
                    # the room's last session state (the service published it before it ended)
                    room_login = MqttSettings.from_url(
                        room.url, username="service", password=ROOM_SERVICE_PASSWORD, env={}
                    )
                    here = await retained(room_login, "t-room", f"biofeedback/v1/{CLIENT}/session")
                    # what the service said while stopping reached the clinic as well: read until
                    # the event of that last state came through the bridge (30 s deadline), then
                    # until nothing more came for 1 s
                    rest = tap.messages()
                    loop = asyncio.get_running_loop()
                    deadline = loop.time() + 30
                    while True:
                        quiet = 1.0 if here["seq"] in events else deadline - loop.time()
                        try:
                            msg = await asyncio.wait_for(rest.__anext__(), max(quiet, 0))
                        except TimeoutError:
                            break
                        p = json.loads(msg.payload)
                        if "/event" in msg.topic and p.get("source") == "session":
                            events[p["seq"]] = (p, time.monotonic())
                    # the clinic's retained state and the dashboard catch up through the bridge
                    there = await settle(
                        lambda: retained(
                            clinic_login(clinic, "dashboard"),
                            "t-clinic",
                            f"biofeedback/v1/{CLIENT}/session",
                        ),
                        lambda got: got == here,
                    )
                    status = await settle(
                        lambda: retained(
                            clinic_login(clinic, "dashboard"),
                            "t-clinic-status",
                            f"biofeedback/v1/{CLIENT}/status",
                        ),
                        lambda got: got["online"] is False,
                    )

                    async def seen_by_hub() -> tuple[Any, Any]:
                        shown = hub.client(CLIENT)
                        assert shown is not None
                        return shown.session, shown.status

                    shown_session, shown_status = await settle(
                        seen_by_hub,
                        lambda got: (
                            got[0] is not None
                            and got[1] is not None
                            and got[0]["state"] == there["state"]
                            and got[1]["online"] is False
                        ),
                    )
                finally:
                    if demo is not None and demo.returncode is None:
                        demo.kill()
                        await demo.wait()
                    await sender.aclose()
                    await tap.aclose()
                    await runner.cleanup()
            bridge_connects = room.bridge_connections()
            room_log = room.log_tail(40)
            cuts = link.cuts

    cut_at, restored_at, first_id, dup_id = run.cut_at, run.restored_at, run.first_id, run.dup_id
    assert cuts == 1
    assert bridge_connects >= 2, room_log  # connected, then again after the link came back
    seqs = sorted(events)
    # every session event reached the clinic, in order, none missing (the outage's included)
    assert seqs == list(range(seqs[0], seqs[-1] + 1)), f"gaps in {seqs}"
    consent = next(
        s for s in seqs if events[s][0]["kind"] == "transition"
        and events[s][0]["to_state"] == "exposing"
    )  # fmt: skip
    pause, arrived = next(
        events[s] for s in seqs if s > consent and events[s][0]["to_state"] == "paused"
    )
    # the session paused on its own while the clinic could not see it; the clinic learnt of it
    # when the link returned
    assert pause["reason"].startswith("arousal_high"), pause
    assert pause["actor"] == "system"
    assert arrived >= restored_at
    assert pause["t"] < events[seqs[-1]][0]["t"]
    # each command applied once: one thresholds event per command, whatever the deliveries
    adjusted = [
        p["values"]["new"]["recovery_s"]
        for s, (p, _) in events.items()
        if p["kind"] == "thresholds"
    ]
    assert sorted(adjusted) == [50.0, 55.0], adjusted
    # the dashboard's command: one reply, ok; the repeated id: one reply per delivery, identical
    first = [r for r in replies if r.get("id") == first_id]
    assert [r["ok"] for r in first] == [True]
    # ... and reached the therapist's page that sent it, through the dashboard's hub
    assert [r["ok"] for r in run.page_replies if r.get("id") == first_id] == [True]
    again = [r for r in replies if r.get("id") == dup_id]
    assert len(again) == 3, again
    assert all(r == again[0] for r in again[1:])
    assert again[0]["ok"] is True
    # retained state at the clinic is the room's, the session's last, and the dashboard shows it
    assert there == here
    assert there["seq"] == seqs[-1]
    assert status["online"] is False
    assert shown_session is not None
    assert shown_status is not None
    assert shown_session["state"] == there["state"]
    assert shown_status["online"] is False
    assert cut_at < restored_at


@dataclass
class Run:
    """What `drive` saw and did."""

    cut_at: float = 0.0
    restored_at: float = 0.0
    first_id: str = ""  # the command the dashboard sent during the outage
    dup_id: str = "bridge-dup-1"  # the command delivered three times
    resent: bool = False
    page_replies: list[dict[str, Any]] = field(default_factory=list)  # the therapist page's


async def drive(
    hub: Any,
    tap: MqttLink,
    sender: MqttLink,
    link: LinkProxy,
    demo: asyncio.subprocess.Process,
    events: dict[int, tuple[dict[str, Any], float]],
    replies: list[dict[str, Any]],
) -> Run:
    """Watch the clinic's tap; cut the link at the consent; send commands; restore; wait."""
    run = Run()
    with hub.subscribe("therapist", CLIENT) as page:

        async def read_page() -> None:  # what the therapist's open page receives
            while (line := await page.queue.get()) is not None:
                m = json.loads(line)
                if m["type"] == "reply":
                    run.page_replies.append(m["reply"])

        reader = asyncio.create_task(read_page())
        try:
            await watch(hub, page, tap, sender, link, demo, events, replies, run)
        finally:
            reader.cancel()
    return run


async def watch(
    hub: Any,
    page: Any,
    tap: MqttLink,
    sender: MqttLink,
    link: LinkProxy,
    demo: asyncio.subprocess.Process,
    events: dict[int, tuple[dict[str, Any], float]],
    replies: list[dict[str, Any]],
    run: Run,
) -> None:
    it = tap.messages()
    cmd_topic = f"biofeedback/v1/{CLIENT}/cmd"
    # a deadline for what must happen (the demo runs 3000 s at 25x: 120 s of wall time)
    async with asyncio.timeout(90):
        while True:
            try:
                msg = await asyncio.wait_for(it.__anext__(), 1.0)
            except TimeoutError:
                assert demo.returncode is None, "demo exited early"
                continue
            p = json.loads(msg.payload)
            if "/reply" in msg.topic:
                replies.append(p)
                if p.get("id") == run.dup_id and not run.resent:
                    # the first delivery was answered: the same id once more, later
                    run.resent = True
                    sender.publish_bytes(cmd_topic, command(run.dup_id, recovery_s=55.0), qos=1)
                continue
            if p.get("source") != "session":
                continue
            events[p["seq"]] = (p, time.monotonic())
            if not run.cut_at and p["kind"] == "transition" and p["to_state"] == "exposing":
                await link.cut()
                run.cut_at = time.monotonic()
                # from the dashboard, while the room cannot be reached: queued at the clinic
                run.first_id = await hub.send_command(
                    page, CLIENT, "adjust_thresholds", {"recovery_s": 50.0}
                )
                for _ in range(2):  # one command delivered twice (a QoS 1 redelivery)
                    sender.publish_bytes(cmd_topic, command(run.dup_id, recovery_s=55.0), qos=1)
                await asyncio.sleep(OUTAGE_S)
                await link.restore()
                run.restored_at = time.monotonic()
            grounding = run.restored_at and any(
                e["to_state"] == "grounding" for e, _ in events.values()
            )
            dup_replies = sum(1 for r in replies if r.get("id") == run.dup_id)
            if grounding and run.resent and dup_replies >= 3:
                return
