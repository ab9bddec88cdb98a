"""Bridge benchmark: what a room -> clinic Mosquitto bridge adds, and what 20 link drops lose.

    .venv/bin/python bench/bench_bridge.py                  # both parts
    .venv/bin/python bench/bench_bridge.py --messages 3000 --drops 20

Two real Mosquitto processes as in tests/service/test_bridge.py: the clinic's with TLS, passwords
and config/mosquitto/acl.example; the room's running config/mosquitto/room-bridge.conf.example
(only paths, ports, CA and password rewritten).

Part 1, latency: pairs of `event`-sized QoS 1 messages at 50 pairs/s, one of each pair published
(a) on the clinic broker itself and (b) on the room broker, bridged straight to the clinic (no
relay), at the same moment, both read by one `dashboard` subscriber on the clinic broker.
Latency = arrival - the publish time (perf_counter, one process). Added latency = (b) - (a) per
pair: both copies meet the same load at the same time, so the machine's noise mostly cancels.

Part 2, link drops: the bridge reaches the clinic through a TCP relay (`LinkProxy`). A publisher
on the room broker sends numbered QoS 1 events at 50/s throughout; the relay is cut (every
connection reset, new ones refused) for `--down` seconds, restored, and cut again once the bridge
has reconnected and delivered, `--drops` times. A `dashboard` subscriber on the clinic with a
persistent session counts what arrives: lost = sent - distinct received; duplicates counted too.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from biofeedback.service.mqtt import MqttLink, MqttSettings  # noqa: E402
from tests.brokers import BrokerHandle, example_acl, mosquitto_secure  # noqa: E402
from tests.service.bridge_support import LinkProxy, RoomBroker  # noqa: E402

ROOM_PW = "bench-room-service-password"
TOPIC = "biofeedback/v1/c-bench/event"  # published in the room, bridged
TOPIC_DIRECT = "biofeedback/v1/c-direct/event"  # published on the clinic broker itself


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * q))]


def event(seq: int) -> bytes:
    """An event-sized payload (~400 bytes, like a session transition) carrying its send time."""
    body: dict[str, Any] = {
        "v": 1,
        "t": time.time(),
        "client": "c-bench",
        "source": "session",
        "seq": seq,
        "kind": "transition",
        "actor": "system",
        "from_state": "exposing",
        "to_state": "paused",
        "reason": "arousal_high: arousal at or above 60 for 5 s",
        "values": {"pause_reason": "arousal", "arousal": 92.0, "upper": 60.0, "dwell_s": 5.0},
        "sent": time.perf_counter(),
    }
    return json.dumps(body).encode()


def login(clinic: BrokerHandle, user: str) -> MqttSettings:
    return clinic.settings(5, username=user, password=clinic.users[user])


def room_login(room: RoomBroker) -> MqttSettings:
    return MqttSettings.from_url(
        room.url, username="service", password=ROOM_PW, env={}, reconnect_min_s=1
    )


def room_broker(folder: Path, clinic: BrokerHandle, port: int) -> RoomBroker:
    assert clinic.ca_file is not None
    return RoomBroker(
        folder,
        clinic=("127.0.0.1", port),
        ca_file=Path(clinic.ca_file),
        remote_username="service",
        remote_password=clinic.users["service"],
        users={"service": ROOM_PW},
        acl=example_acl().read_text(),
    )


async def paired(direct: MqttLink, via: MqttLink, sub: MqttLink, n: int, rate: float) -> Any:
    """n pairs of QoS 1 events, one on each path at the same moment; latencies (s) per path.

    Publishing both copies together puts both under the same load at the same time, so the
    difference per pair is what the bridge adds, with most of the machine's noise cancelled.
    """
    it = sub.messages()
    got: dict[str, dict[int, float]] = {TOPIC_DIRECT: {}, TOPIC: {}}

    async def read() -> None:
        while len(got[TOPIC_DIRECT]) < n or len(got[TOPIC]) < n:
            msg = await it.__anext__()
            body = json.loads(msg.payload)
            got[msg.topic][body["seq"]] = time.perf_counter() - body["sent"]

    reader = asyncio.create_task(read())
    start = time.monotonic()
    for k in range(n):
        payload = event(k)
        via.publish_bytes(TOPIC, payload, qos=1)
        direct.publish_bytes(TOPIC_DIRECT, payload, qos=1)
        await asyncio.sleep(max(0.0, start + (k + 1) / rate - time.monotonic()))
    await asyncio.wait_for(reader, 60)
    a = [got[TOPIC_DIRECT][k] for k in range(n)]
    b = [got[TOPIC][k] for k in range(n)]
    return a, b, [y - x for x, y in zip(a, b, strict=True)]


async def latency(n: int, rate: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "clinic").mkdir()
        async with mosquitto_secure(folder / "clinic") as clinic:
            port = int(clinic.url.rsplit(":", 1)[1])
            async with (
                room_broker(folder / "room", clinic, port) as room,
                MqttLink(login(clinic, "dashboard"), "bench-dash") as dash,
                MqttLink(login(clinic, "service"), "bench-direct") as direct,
                MqttLink(room_login(room), "bench-room-service") as via,
            ):
                await dash.subscribe(TOPIC, qos=1)
                await dash.subscribe(TOPIC_DIRECT, qos=1)
                await asyncio.sleep(2.0)  # the bridge connects
                await paired(direct, via, dash, 100, rate)  # warm up both paths
                a, b, added = await paired(direct, via, dash, n, rate)
    print(f"latency, {n} QoS 1 events at {rate:g}/s on each path at once (ms):")
    print("  path                           p50     p90     p99     max    mean")
    rows = (
        ("clinic broker only", a),
        ("room -> bridge -> clinic", b),
        ("added by the bridge (paired)", added),
    )
    for label, vals in rows:
        print(
            f"  {label:28s} {pct(vals, 0.5) * 1e3:6.2f}  {pct(vals, 0.9) * 1e3:6.2f}  "
            f"{pct(vals, 0.99) * 1e3:6.2f}  {max(vals) * 1e3:6.2f}  "
            f"{statistics.fmean(vals) * 1e3:6.2f}"
        )


async def drops(n_drops: int, down_s: float, rate: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "clinic").mkdir()
        async with mosquitto_secure(folder / "clinic") as clinic:
            port = int(clinic.url.rsplit(":", 1)[1])
            async with (
                LinkProxy(("127.0.0.1", port)) as link,
                room_broker(folder / "room", clinic, link.port) as room,
                MqttLink(login(clinic, "dashboard"), "bench-dash-drops") as dash,
                MqttLink(room_login(room), "bench-room-service") as pub,
            ):
                await dash.subscribe(TOPIC, qos=1)
                await asyncio.sleep(2.0)
                received: list[int] = []
                sent = 0
                stop = asyncio.Event()

                async def read() -> None:
                    async for msg in dash.messages():
                        received.append(json.loads(msg.payload)["seq"])

                async def publish() -> None:
                    nonlocal sent
                    start = time.monotonic()
                    while not stop.is_set():
                        pub.publish_bytes(TOPIC, event(sent), qos=1)
                        sent += 1
                        await asyncio.sleep(max(0.0, start + sent / rate - time.monotonic()))

                reader = asyncio.create_task(read())
                publisher = asyncio.create_task(publish())
                outages: list[float] = []  # cut -> first message after it arrived
                t0 = time.monotonic()
                for _ in range(n_drops):
                    await asyncio.sleep(1.0)
                    await link.cut()
                    cut_at = time.monotonic()
                    await asyncio.sleep(down_s)
                    await link.restore()
                    mark = len(received)
                    # back when messages flow again and the backlog is through
                    while len(received) == mark or sent - len(set(received)) > rate:
                        await asyncio.sleep(0.05)
                        if time.monotonic() - cut_at > 60:
                            raise SystemExit("the bridge did not come back within 60 s")
                    outages.append(time.monotonic() - cut_at)
                await asyncio.sleep(2.0)
                stop.set()
                await publisher
                for _ in range(300):  # up to 30 s for the last ones
                    if len(set(received)) >= sent:
                        break
                    await asyncio.sleep(0.1)
                reader.cancel()
                total_s = time.monotonic() - t0
                reconnects = room.bridge_connections()
    distinct = set(received)
    lost = sent - len(distinct & set(range(sent)))
    dups = len(received) - len(distinct)
    # arrivals older than one before them (a backlog sent after newer live messages)
    late = sum(1 for a, b in itertools.pairwise(received) if b < a)
    print(
        f"link drops: {n_drops} cuts of {down_s:g} s over {total_s:.0f} s, {sent} QoS 1 events "
        f"at {rate:g}/s: lost {lost}, duplicates {dups}, out of order {late}; "
        f"bridge connected {reconnects} times; cut -> flowing again p50 {pct(outages, 0.5):.1f} s, "
        f"max {max(outages):.1f} s"
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--messages", type=int, default=3000, help="per path, for the latency")
    ap.add_argument("--rate", type=float, default=50.0, help="events per second")
    ap.add_argument("--drops", type=int, default=20)
    ap.add_argument("--down", type=float, default=1.0, help="seconds each cut lasts")
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument("--skip-drops", action="store_true")
    args = ap.parse_args()
    if not args.skip_latency:
        asyncio.run(latency(args.messages, args.rate))
    if not args.skip_drops:
        asyncio.run(drops(args.drops, args.down, args.rate))


if __name__ == "__main__":
    main()
