"""Dashboard benchmark: hub cost per message, and MQTT publish -> browser WebSocket latency.

    .venv/bin/python bench/bench_web.py                 # both parts, 100 clients for 20 s
    .venv/bin/python bench/bench_web.py --clients 100 --seconds 30 --skip-hub

Part 1 (in process): `Hub.ingest` of real `metrics`/`arousal` payloads (built with the service's
encoders) with no subscribers, and with an overview plus one client page watching.

Part 2 (end to end): a real Mosquitto; the dashboard (`create_app` behind `web.AppRunner`) runs in
its own process so its CPU can be read from /proc; this process publishes `metrics` and `arousal`
for N clients at a real-time beat rate (~72 bpm) and holds one overview WebSocket plus one client
page WebSocket per client. Latency = WebSocket arrival time - the payload's `t` (set to the
publish wall time), over every sample that arrives.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import aiohttp  # noqa: E402

from biofeedback.service import payloads  # noqa: E402
from biofeedback.service.broker import MosquittoProcess  # noqa: E402
from biofeedback.service.mqtt import MqttLink, MqttSettings  # noqa: E402
from biofeedback.service.topics import Topic  # noqa: E402
from biofeedback.signal.measures import Arousal, ArousalBasis  # noqa: E402
from biofeedback.web.auth import link_signature  # noqa: E402
from biofeedback.web.hub import Hub  # noqa: E402
from tests.support import free_port  # noqa: E402

SECRET = "bench-therapist-secret"
LINK_SECRET = "bench-link-secret-0123456789abcdef"


def metrics(client: str, t: float, hr: float) -> dict[str, Any]:
    return {
        "v": 1,
        "t": t,
        "client": client,
        "hr_bpm": hr,
        "short": {
            "window_s": 30.0,
            "n": 30,
            "mean_nn_ms": 60000 / hr,
            "hr_bpm": hr,
            "rmssd_ms": 42.0,
            "sdnn_ms": 50.0,
            "pnn50_pct": 12.0,
        },
        "long": None,
        "frequency": None,
        "quality": {
            "score": 0.95,
            "corrected_share": 0.0,
            "rejected_share": 0.0,
            "contact": True,
            "hrv_available": True,
            "reason": None,
        },
    }


def arousal(client: str, t: float, value: float) -> dict[str, Any]:
    return payloads.arousal(client, Arousal(t, value, 0.9, value, value, ArousalBasis.HR_HRV))


def bench_hub(n: int = 50_000) -> None:
    t0 = 1_700_000_000.0
    msgs = []
    for i in range(n):
        client = f"c{i % 100:03d}"
        if i % 2:
            msgs.append((f"biofeedback/v1/{client}/metrics", metrics(client, t0 + i / 100, 70.0)))
        else:
            msgs.append((f"biofeedback/v1/{client}/arousal", arousal(client, t0 + i / 100, 40.0)))
    raw = [(topic_name, json.dumps(body).encode()) for topic_name, body in msgs]
    for label, watched in (("no subscribers", False), ("overview + 1 client page", True)):
        best = float("inf")
        for _ in range(3):
            hub = Hub()
            with contextlib.ExitStack() as stack:
                queues = []
                if watched:
                    for client in (None, "c000"):
                        queues.append(stack.enter_context(hub.subscribe("therapist", client)).queue)
                start = time.perf_counter()
                for topic_name, payload in raw:
                    hub.ingest(topic_name, payload)
                    for q in queues:
                        while not q.empty():
                            q.get_nowait()
                best = min(best, time.perf_counter() - start)
        print(
            f"hub.ingest, {label}: {n / best:,.0f} msg/s ({best / n * 1e6:.1f} µs each, best of 3)"
        )


def bench_hub_memory(n_clients: int = 100, seconds: int = 300, rate_hz: float = 1.2) -> None:
    """Memory of a hub holding full 5-minute histories for n clients (tracemalloc)."""
    import gc
    import tracemalloc

    t0 = 1_700_000_000.0
    tracemalloc.start()
    hub = Hub()
    beats = int(seconds * rate_hz)
    for k in range(beats):
        t = t0 + k / rate_hz
        for i in range(n_clients):
            client = f"c{i:03d}"
            hub.ingest(f"biofeedback/v1/{client}/metrics", json.dumps(metrics(client, t, 70.0)))
            hub.ingest(f"biofeedback/v1/{client}/arousal", json.dumps(arousal(client, t, 40.0)))
    gc.collect()
    current, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    points = sum(len(hub.client(c).points) for c in hub.clients())  # type: ignore[union-attr]
    print(
        f"hub memory, {n_clients} clients x {seconds} s of history: {current / 2**20:.1f} MiB "
        f"({points:,} chart points, {current / points:.0f} B each)"
    )


SERVER = """
import asyncio, sys
from aiohttp import web
from biofeedback.service.mqtt import MqttSettings
from biofeedback.web import WebConfig, create_app

async def main():
    cfg = WebConfig(port=int(sys.argv[1]), mqtt=MqttSettings(port=int(sys.argv[2])),
                    therapist_secret=sys.argv[3], link_secret=sys.argv[4])
    runner = web.AppRunner(create_app(cfg))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", cfg.port).start()
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await runner.cleanup()

asyncio.run(main())
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def bench_end_to_end(n_clients: int, seconds: float, rate_hz: float) -> None:
    async with MosquittoProcess() as broker:
        mqtt_port = int(broker.url.rsplit(":", 1)[1])
        http_port = free_port()
        server = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            SERVER,
            str(http_port),
            str(mqtt_port),
            SECRET,
            LINK_SECRET,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=REPO,
        )
        try:
            assert server.stdout is not None
            line = await asyncio.wait_for(server.stdout.readline(), 30)
            assert line.strip() == b"ready", line
            await measure(http_port, mqtt_port, server.pid, n_clients, seconds, rate_hz)
        finally:
            if server.stdin is not None:
                server.stdin.close()
            try:
                await asyncio.wait_for(server.wait(), 10)
            except TimeoutError:
                server.kill()
                await server.wait()


async def measure(
    http_port: int, mqtt_port: int, pid: int, n_clients: int, seconds: float, rate_hz: float
) -> None:
    clients = [f"c{i:03d}" for i in range(n_clients)]
    latencies: list[float] = []
    base = f"http://127.0.0.1:{http_port}"
    origin = {"Origin": base}
    stop = asyncio.Event()
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http,
        MqttLink(MqttSettings(port=mqtt_port), "bench-publisher") as pub,
    ):
        bearer = {**origin, "Authorization": f"Bearer {SECRET}"}
        sockets = [await http.ws_connect(f"{base}/ws", headers=bearer)]
        for c in clients:
            path = f"/c/{c}/{link_signature(LINK_SECRET, c)}/ws"
            sockets.append(await http.ws_connect(base + path, headers=origin))

        async def read(ws: aiohttp.ClientWebSocketResponse) -> None:
            async for msg in ws:
                data = json.loads(msg.data)
                if data.get("type") == "update" and "point" in data and not stop.is_set():
                    latencies.append(time.time() - data["point"]["t"])

        async def publish() -> None:
            # clients' beats are spread over the beat period, as independent straps would be
            slot = 1.0 / rate_hz / len(clients)
            k = 0
            start = time.monotonic()
            while not stop.is_set():
                c = clients[k % len(clients)]
                now = time.time()
                pub.publish_kind(c, Topic.METRICS, metrics(c, now, 72.0))
                pub.publish_kind(c, Topic.AROUSAL, arousal(c, now, 40.0))
                k += 1
                await asyncio.sleep(max(0.0, start + k * slot - time.monotonic()))

        async with asyncio.TaskGroup() as tg:
            readers = [tg.create_task(read(ws)) for ws in sockets]
            publisher = tg.create_task(publish())
            await asyncio.sleep(2.0)  # warm up
            latencies.clear()
            cpu0, wall0 = cpu_seconds(pid), time.monotonic()
            await asyncio.sleep(seconds)
            cpu1, wall1 = cpu_seconds(pid), time.monotonic()
            stop.set()
            publisher.cancel()
            for r in readers:
                r.cancel()
        await asyncio.gather(*(ws.close() for ws in sockets))
    lat = sorted(latencies)
    p50 = lat[len(lat) // 2] * 1000
    p99 = lat[int(len(lat) * 0.99)] * 1000
    cpu = (cpu1 - cpu0) / (wall1 - wall0)
    print(
        f"end to end, {n_clients} clients x {2 * rate_hz:.1f} msg/s for {seconds:.0f} s: "
        f"{len(lat)} samples to WebSockets; latency p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
        f"max {lat[-1] * 1000:.1f} ms, mean {statistics.fmean(lat) * 1000:.1f} ms; "
        f"dashboard process CPU {cpu * 100:.1f} % of a core "
        f"({cpu * 100 / n_clients:.2f} % per client)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rate", type=float, default=1.2, help="beats per second per client")
    ap.add_argument("--skip-hub", action="store_true")
    args = ap.parse_args()
    if not args.skip_hub:
        bench_hub()
        bench_hub_memory()
    asyncio.run(bench_end_to_end(args.clients, args.seconds, args.rate))


if __name__ == "__main__":
    main()
