"""MQTT benchmark: N simulated clients at real-time beat rates through Mosquitto to one subscriber.

    .venv/bin/python bench/bench_mqtt.py                       # 100 clients, 30 s, MQTT 5
    .venv/bin/python bench/bench_mqtt.py --clients 100 --seconds 60 --protocol 311
    .venv/bin/python bench/bench_mqtt.py --broker amqtt        # the in-process fallback, 3.1.1

Each simulated client is what one session service does on the wire: its own `MqttLink` (own paho
network thread, own broker connection), one beat every 60/HR seconds (HR 55-95 bpm, jittered),
and per beat the `beat`, `metrics` and `arousal` payloads built by the real encoders from a real
`BeatUpdate` and published with `publish_kind` (QoS 0, 10 s expiry), plus the retained `session`
every 5 s and an `event` (QoS 1) every 30 s. One subscriber in a separate process, an `MqttLink`
on `biofeedback/v1/#` as the dashboard hub uses, records the arrival time of every message;
latency = arrival wall time - the payload's `t` (the wall time at `publish_kind`), so it covers
encoding, paho, the broker, the subscriber's paho thread and the hand-over to its event loop.

CPU is read per process (publishers: this process, all N links; subscriber; mosquitto from
/proc/<pid>/stat) and reported per simulated client.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from biofeedback.service import payloads  # noqa: E402
from biofeedback.service.broker import MosquittoProcess  # noqa: E402
from biofeedback.service.mqtt import MqttLink, MqttSettings  # noqa: E402
from biofeedback.service.topics import Topic  # noqa: E402
from biofeedback.signal.measures import (  # noqa: E402
    Arousal,
    ArousalBasis,
    BeatUpdate,
    CleanBeat,
    SignalQuality,
    TimeDomain,
)


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def update(t: float, rr: float, rng: random.Random) -> BeatUpdate:
    hr = 60000.0 / rr
    td = TimeDomain(30.0, 30, rr, hr, 40 + rng.random() * 10, 50.0, 12.0)
    return BeatUpdate(
        t=t,
        beat=CleanBeat(t, rr, rr, False, None, True),
        rejected=None,
        hr_bpm=hr,
        short=td,
        long=td,
        frequency=None,
        quality=SignalQuality(0.95, 0.0, 0.0, True, True),
        arousal=Arousal(t, 30 + rng.random() * 40, 0.9, 40.0, 35.0, ArousalBasis.HR_HRV),
    )


# ---- subscriber process ---------------------------------------------------------------------


async def subscriber(url: str, protocol: int) -> dict[str, Any]:
    """Receive until 2 s pass without a message (the publishers have stopped)."""
    # the amqtt broker's observer login comes in the environment (never on the command line)
    settings = MqttSettings.from_url(url, protocol=protocol, session_expiry_s=0)
    lat: list[float] = []
    kinds: dict[str, int] = {}
    first = last = 0.0
    start_cpu = 0.0
    async with MqttLink(settings, "bench-hub") as link:
        await link.subscribe("biofeedback/v1/#", qos=1)
        print("ready", flush=True)
        it = link.messages()
        while True:
            try:
                msg = await asyncio.wait_for(it.__anext__(), 2.0 if lat else None)
            except TimeoutError:
                break
            now = time.time()
            if not lat:
                start_cpu, first = cpu_s(), time.monotonic()
            last = time.monotonic()
            body = json.loads(msg.payload)
            kind = msg.topic.rsplit("/", 1)[1]
            kinds[kind] = kinds.get(kind, 0) + 1
            lat.append((now - body["t"]) * 1000.0)
        cpu = cpu_s() - start_cpu
    return {
        "latency_ms": lat,
        "kinds": kinds,
        "cpu_s": cpu,
        "active_s": max(1e-9, last - first + 2.0),
        "received": len(lat),
    }


# ---- publisher side -------------------------------------------------------------------------


async def client(link: MqttLink, cid: str, stop_at: float, seed: int) -> int:
    rng = random.Random(seed)
    hr = rng.uniform(55, 95)
    sent = 0
    next_session = time.monotonic()
    next_event = time.monotonic() + rng.uniform(0, 30)
    await asyncio.sleep(rng.uniform(0, 1))  # clients are not in phase
    while time.monotonic() < stop_at:
        rr = 60000.0 / hr * rng.uniform(0.9, 1.1)
        await asyncio.sleep(rr / 1000.0)
        t = time.time()
        for kind, p in payloads.update_payloads(cid, update(t, rr, rng)):
            link.publish_kind(cid, kind, p)
            sent += 1
        now = time.monotonic()
        if now >= next_session:
            link.publish_kind(
                cid, Topic.SESSION, {"v": 1, "t": time.time(), "client": cid, "state": "exposing"}
            )
            next_session = now + 5.0
            sent += 1
        if now >= next_event:
            link.publish_kind(
                cid,
                Topic.EVENT,
                {
                    "v": 1,
                    "t": time.time(),
                    "client": cid,
                    "source": "service",
                    "kind": "bench",
                    "detail": "",
                },
            )
            next_event = now + 30.0
            sent += 1
    return sent


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q / 100.0 * len(xs)))]


async def amqtt_process() -> None:
    """`--role amqtt`: run the embedded fallback broker in this process until stdin closes."""
    from biofeedback.service.broker import EmbeddedBroker

    async with EmbeddedBroker(backend="amqtt") as b:
        # the broker admits only its per-run users: the parent gets their logins on this pipe
        logins = {"service": b.logins.service, "observer": b.logins.observer}
        body = {k: [v.username, v.password] for k, v in logins.items()}
        print(json.dumps({"url": b.url, **body}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


class AmqttBroker:
    """amqtt in its own process (so its CPU is counted apart), for comparison."""

    async def __aenter__(self) -> AmqttBroker:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--role",
            "amqtt",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        started = json.loads(await self.proc.stdout.readline())
        self.url = started["url"]
        service, observer = started["service"], started["observer"]
        self.service: tuple[str, str] | None = (service[0], service[1])
        self.observer: tuple[str, str] | None = (observer[0], observer[1])
        self.pid = self.proc.pid
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        await self.proc.wait()


class MosquittoBroker:
    async def __aenter__(self) -> MosquittoBroker:
        self.m = MosquittoProcess()
        await self.m.__aenter__()
        assert self.m._proc is not None
        self.url, self.pid = self.m.url, self.m._proc.pid
        self.service: tuple[str, str] | None = None  # a plain Mosquitto: anonymous
        self.observer: tuple[str, str] | None = None
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.m.__aexit__(None, None, None)


def _login_env(login: tuple[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIOFEEDBACK_MQTT_")}
    if login is not None:
        env["BIOFEEDBACK_MQTT_USERNAME"], env["BIOFEEDBACK_MQTT_PASSWORD"] = login
    return env


async def main(args: argparse.Namespace) -> None:
    if args.broker == "amqtt":
        args.protocol = 311  # amqtt speaks nothing else
    async with AmqttBroker() if args.broker == "amqtt" else MosquittoBroker() as broker:
        broker_pid = broker.pid
        sub = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--role",
            "sub",
            "--url",
            broker.url,
            "--protocol",
            str(args.protocol),
            stdout=asyncio.subprocess.PIPE,
            env=_login_env(broker.observer),
        )
        assert sub.stdout is not None
        assert (await sub.stdout.readline()).strip() == b"ready"
        user, password = broker.service or (None, None)
        settings = MqttSettings.from_url(
            broker.url, username=user, password=password, protocol=args.protocol, env={}
        )
        links = [MqttLink(settings, f"bench-svc-{i}") for i in range(args.clients)]
        await asyncio.gather(*(link.__aenter__() for link in links))
        try:
            cpu0, b0, w0 = cpu_s(), proc_cpu_s(broker_pid), time.monotonic()
            stop_at = time.monotonic() + args.seconds + 1.0
            sent = await asyncio.gather(
                *(client(link, f"c-{i:03d}", stop_at, i) for i, link in enumerate(links))
            )
            wall = time.monotonic() - w0
            pub_cpu, broker_cpu = cpu_s() - cpu0, proc_cpu_s(broker_pid) - b0
        finally:
            await asyncio.gather(*(link.aclose() for link in links))
        out, _ = await sub.communicate()
        result = json.loads(out.decode().strip().splitlines()[-1])
    lat = result["latency_ms"]
    n = args.clients
    total = sum(sent)
    print(
        f"broker {args.broker}, clients {n}, MQTT {'5' if args.protocol == 5 else '3.1.1'}, "
        f"{wall:.1f} s wall, "
        f"{total} messages published ({total / wall:.0f}/s), {result['received']} received"
    )
    print(
        f"latency publish_kind -> subscriber loop: p50 {pct(lat, 50):.2f} ms, "
        f"p90 {pct(lat, 90):.2f} ms, p99 {pct(lat, 99):.2f} ms, max {max(lat):.1f} ms "
        f"(mean {statistics.fmean(lat):.2f}, n={len(lat)})"
    )
    print(
        f"CPU publishers (encode + {n} links): {pub_cpu / wall * 100:.1f} % of a core = "
        f"{pub_cpu / wall / n * 100:.3f} % per client ({pub_cpu / total * 1e6:.0f} µs per message)"
    )
    print(
        f"CPU broker ({args.broker}): {broker_cpu / wall * 100:.1f} % of a core = "
        f"{broker_cpu / wall / n * 100:.3f} % per client"
    )
    sub_cpu = result["cpu_s"]
    print(
        "CPU subscriber (one MqttLink + JSON decode): "
        f"{sub_cpu / result['active_s'] * 100:.1f} % of a core = "
        f"{sub_cpu / max(1, result['received']) * 1e6:.0f} µs per message"
    )
    print(f"by kind: {result['kinds']}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--protocol", type=int, choices=(5, 311), default=5)
    ap.add_argument("--broker", choices=("mosquitto", "amqtt"), default="mosquitto")
    ap.add_argument("--role", choices=("main", "sub", "amqtt"), default="main")
    ap.add_argument("--url", default="")
    a = ap.parse_args()
    if a.role == "amqtt":
        asyncio.run(amqtt_process())
    elif a.role == "sub":
        r = asyncio.run(subscriber(a.url, a.protocol))
        print(json.dumps(r))
    else:
        asyncio.run(main(a))
