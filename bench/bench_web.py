"""Dashboard benchmark: hub cost per message, and MQTT publish -> browser WebSocket latency.

    .venv/bin/python bench/bench_web.py                 # both parts, 100 clients for 20 s
    .venv/bin/python bench/bench_web.py --clients 100 --seconds 30 --skip-hub

Part 1 (in process): `Hub.ingest` of real `metrics`/`arousal` payloads (built with the service's
encoders) with no subscribers, and with an overview plus one client page watching.

Part 3 (`--browser`, issue 14): one dashboard with N live clients (default 300) through a real
Mosquitto, watched by a real headless Chromium on the therapist's overview. Latency = the time the
page's WebSocket delivers a row's new arousal - the payload's `t` (publish wall time); the
dashboard process's CPU and resident memory per client, and Chromium's CPU. Each client's arousal
swings up and down (`swing`), so ~7 clients a second change attention group and move rows on the
page; the measured seconds start once that pace is steady (`STEADY_AFTER_S`).

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
from collections.abc import AsyncIterator
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


#: Each client's arousal in the runs with a publisher process (`--browser`, `--plain`): a
#: triangle wave between 42 and 56 (up at ~20 points a minute for half of `SWING_S`, down for the
#: other half), the clients' phases spread evenly. The hub's 30-second trend then moves each
#: client into the "arousal rising" group and out again once per swing: 2 x 300 / 86 s = ~7
#: changes of group a second for 300 clients, at an even pace through a run (each one moves rows
#: on the overview). The earlier 40 + 0-6 points (by message count) gave from 3 to 104 changes
#: in 20 s, depending on timing, so runs of the page were not alike.
SWING_S = 86.0
#: the measured seconds start this long after the publisher, when every client has a full trend
#: window (`attention.TREND_WINDOW_S`) and the group changes come at their steady pace
STEADY_AFTER_S = 35.0


def swing(i: int, n: int, t: float) -> float:
    """Client i of n's arousal at wall time t (`SWING_S`)."""
    x = (t / SWING_S + i / n) % 1.0
    return 42.0 + 28.0 * (x if x < 0.5 else 1.0 - x)


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
import asyncio, os, sys
from aiohttp import web
from biofeedback.service.mqtt import MqttSettings
from biofeedback.web import WebConfig, create_app

async def main():
    cfg = WebConfig(port=int(sys.argv[1]), mqtt=MqttSettings(port=int(sys.argv[2])),
                    therapist_secret=sys.argv[3], link_secret=sys.argv[4])
    app = create_app(cfg)
    hook = os.environ.get("BENCH_WEB_FEED_HOOK")
    if hook:
        # `--browser`: the overview's feed worker served with the timing hook in front of it
        # (Playwright's init scripts do not reach workers, and a worker script routed by
        # Playwright lost its WebSocket); here, so that nothing else is imported
        from biofeedback.web.routes import STATIC_DIR

        @web.middleware
        async def feed_hook(request, handler):
            if request.path != "/static/overview-feed.js":
                return await handler(request)
            text = (STATIC_DIR / "overview-feed.js").read_text(encoding="utf-8")
            return web.Response(text=hook + text, content_type="application/javascript")

        app.middlewares.append(feed_hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", cfg.port).start()
    if os.environ.get("BENCH_WEB_TRACE"):
        sys.path.insert(0, os.getcwd())
        from bench.bench_web import trace_server
        trace_server()
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await runner.cleanup()

asyncio.run(main())
"""


def trace_server() -> None:
    """In the dashboard process (`--trace`): time every garbage collection by generation and the
    event loop's lateness (a 5 ms ticker), printed to stderr when the process ends: where a
    latency tail comes from."""
    import atexit
    import gc

    gcs: dict[int, list[float]] = {0: [], 1: [], 2: []}
    collected = [0, 0, 0]
    started: list[float] = [0.0]
    threads: dict[str, float] = {}  # "name tid" -> CPU seconds, sampled while running

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            gcs[info["generation"]].append(time.perf_counter() - started[0])
            collected[info["generation"]] += info["collected"]

    def sample_threads() -> None:
        for task_dir in Path("/proc/self/task").iterdir():
            with contextlib.suppress(OSError):
                name = (task_dir / "comm").read_text().strip()
                threads[f"{name} {task_dir.name}"] = cpu_seconds_of(task_dir / "stat")

    gc.callbacks.append(on_gc)
    lags: list[float] = []

    async def ticker() -> None:
        loop = asyncio.get_running_loop()
        while True:
            t = loop.time()
            await asyncio.sleep(0.005)
            lags.append(loop.time() - t - 0.005)
            if len(lags) % 200 == 0:
                sample_threads()

    task = asyncio.get_running_loop().create_task(ticker())

    def report() -> None:
        task.cancel()
        out = [f"trace: objects tracked by gc at exit {len(gc.get_objects()):,}"]
        out += [f"trace: thread {k}: {v:.2f} s CPU (last sample)" for k, v in threads.items()]
        for gen, ds in gcs.items():
            if ds:
                ds.sort()
                out.append(
                    f"trace: gc gen {gen}: {len(ds)} runs, median {ds[len(ds) // 2] * 1e3:.2f} "
                    f"ms, max {ds[-1] * 1e3:.1f} ms, total {sum(ds):.2f} s, "
                    f"{collected[gen]} objects collected"
                )
        if lags:
            lags.sort()
            out.append(
                f"trace: loop lateness (5 ms ticker, {len(lags)} ticks): p50 "
                f"{lags[len(lags) // 2] * 1e3:.1f} ms, p99 {lags[int(len(lags) * 0.99)] * 1e3:.1f}"
                f" ms, max {lags[-1] * 1e3:.1f} ms"
            )
        print("\n".join(out), file=sys.stderr, flush=True)

    atexit.register(report)


def cpu_seconds(pid: int) -> float:
    return cpu_seconds_of(Path(f"/proc/{pid}/stat"))


def cpu_seconds_of(stat: Path) -> float:
    """User + system CPU seconds from a /proc/.../stat file (a process or one thread)."""
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.asynccontextmanager
async def dashboard_server(
    env: dict[str, str] | None = None,
) -> AsyncIterator[tuple[int, int, asyncio.subprocess.Process]]:
    """A Mosquitto and the dashboard (`SERVER`) in a process of its own, ready: (MQTT port,
    HTTP port, the dashboard's process); the dashboard is told to stop on the way out."""
    async with MosquittoProcess() as broker:
        mqtt_port = int(broker.url.rsplit(":", 1)[1])
        http_port = free_port()
        server = await asyncio.create_subprocess_exec(
            sys.executable, "-c", SERVER, str(http_port), str(mqtt_port), SECRET, LINK_SECRET,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=REPO, env=env,
        )  # fmt: skip
        try:
            assert server.stdout is not None
            line = await asyncio.wait_for(server.stdout.readline(), 30)
            assert line.strip() == b"ready", line
            yield mqtt_port, http_port, server
        finally:
            if server.stdin is not None:
                server.stdin.close()
            try:
                await asyncio.wait_for(server.wait(), 10)
            except TimeoutError:
                server.kill()
                await server.wait()


async def start_publisher(
    mqtt_port: int, n_clients: int, rate_hz: float
) -> asyncio.subprocess.Process:
    """The publisher (`PUBLISHER`) in a process of its own, like the straps' services (the
    latency measured is then the broker's, the dashboard's and the reader's, not this one's),
    once it is connected."""
    publisher = await asyncio.create_subprocess_exec(
        sys.executable, "-c", PUBLISHER, str(mqtt_port), str(n_clients), str(rate_hz),
        str(REPO), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=REPO,
    )  # fmt: skip
    assert publisher.stdout is not None
    assert publisher.stdin is not None
    assert (await asyncio.wait_for(publisher.stdout.readline(), 30)).strip() == b"ready"
    return publisher


async def bench_end_to_end(n_clients: int, seconds: float, rate_hz: float) -> None:
    async with dashboard_server() as (mqtt_port, http_port, server):
        await measure(http_port, mqtt_port, server.pid, n_clients, seconds, rate_hz)


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


SOCKET_HOOK = """
(() => {
  // Prepended to the overview's feed worker (overview-feed.js, which owns the page's WebSocket).
  // Timed where the worker's own handler gets the message: this listener is added when the worker
  // makes its WebSocket, before `common.js` sets its onmessage, and both run in the same task for
  // the same message event, so `now` is when the browser hands the message to the page's code.
  self.__lat = [];
  self.__overviews = 0;
  const seen = new Map();
  // how often a client changed attention group (calm, rising, ...): each change moves rows
  self.__moves = 0;
  const groupOf = new Map();
  const Orig = self.WebSocket;
  self.WebSocket = function (...args) {
    const ws = new Orig(...args);
    ws.addEventListener("message", (ev) => {
      const now = Date.now() / 1000;
      const m = JSON.parse(ev.data);
      if (m.type === "overview") self.__overviews += 1;
      if (m.type !== "summaries") return;
      for (const s of m.summaries) {
        const g = s.attention == null ? 3 : s.attention;
        if (groupOf.has(s.client) && groupOf.get(s.client) !== g) self.__moves += 1;
        groupOf.set(s.client, g);
        if (s.arousal_t == null || seen.get(s.client) === s.arousal_t) continue; // no new arousal
        seen.set(s.client, s.arousal_t);
        self.__lat.push(now - s.arousal_t);
      }
    });
    return ws;
  };
  self.WebSocket.prototype = Orig.prototype;
  Object.assign(self.WebSocket, { OPEN: 1, CLOSED: 3, CONNECTING: 0, CLOSING: 2 });
})();
"""

PAGE_HOOK = """
(() => {
  // The page's main thread: its long tasks; when the rows the feed worker hands on reach the
  // page's handler (batched by design: at once for a pause, else at most every 50 ms); and when a
  // new arousal value is written into one of the first rows on screen (the page writes rows at
  // most four times a second, by design).
  window.__long = []; // [start ms, duration ms] of every long task (> 50 ms) on the main thread
  window.__mainLat = [];
  window.__drawLat = [];
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) window.__long.push([e.startTime, e.duration]);
    }).observe({ type: "longtask", buffered: true });
  } catch (e) {
    // no longtask entries in this browser: the summary says 0
  }
  const seen = new Map();
  const drawn = new Map(); // client -> the arousal time last seen written
  const Orig = window.Worker;
  window.Worker = function (...args) {
    const w = new Orig(...args);
    w.addEventListener("message", (ev) => {
      const now = Date.now() / 1000;
      const m = ev.data;
      if (m.type !== "summaries") return;
      for (const s of m.summaries) {
        if (s.arousal_t == null || seen.get(s.client) === s.arousal_t) continue;
        seen.set(s.client, s.arousal_t);
        window.__mainLat.push(now - s.arousal_t);
      }
    });
    return w;
  };
  window.Worker.prototype = Orig.prototype;
  const ON_SCREEN = 8; // rows at the top of the list, on screen at 1366x900
  addEventListener("DOMContentLoaded", () => {
    const tbody = document.querySelector("#clients tbody");
    new MutationObserver((records) => {
      const now = Date.now() / 1000;
      const rows = new Set();
      for (const r of records) {
        const el = r.target.nodeType === 1 ? r.target : r.target.parentElement;
        if (el && el.closest("[data-field='arousal']")) rows.add(el.closest("tr"));
      }
      const top = [...tbody.children].slice(0, ON_SCREEN);
      for (const tr of rows) {
        const id = tr.dataset.client;
        const t = seen.get(id);
        if (!top.includes(tr) || t == null || drawn.get(id) === t) continue;
        drawn.set(id, t);
        window.__drawLat.push(now - t);
      }
    }).observe(tbody, { subtree: true, childList: true, characterData: true });
  });
})();
"""


PUBLISHER = """
import asyncio, sys, time
sys.path.insert(0, sys.argv[4])
from bench.bench_web import arousal, metrics, swing
from biofeedback.service.mqtt import MqttLink, MqttSettings
from biofeedback.service.topics import Topic

async def main():
    port, n, rate = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    clients = [f"c{i:03d}" for i in range(n)]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.run_in_executor(None, lambda: (sys.stdin.read(), loop.call_soon_threadsafe(stop.set)))
    async with MqttLink(MqttSettings(port=port), "bench-publisher") as pub:
        print("ready", flush=True)
        slot = 1.0 / rate / n
        k = 0
        start = time.monotonic()
        while not stop.is_set():
            c = clients[k % n]
            now = time.time()
            pub.publish_kind(c, Topic.METRICS, metrics(c, now, 72.0))
            pub.publish_kind(c, Topic.AROUSAL, arousal(c, now, swing(k % n, n, now)))
            k += 1
            late = time.monotonic() - (start + k * slot)
            await asyncio.sleep(max(0.0, -late))
        print("published", k, flush=True)

asyncio.run(main())
"""


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def tree_cpu_seconds(root: int) -> float:
    """CPU of a process and all its descendants (Chromium's browser, renderer, GPU...)."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d.name))
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        try:
            total += cpu_seconds(pid)
        except (OSError, IndexError, ValueError):
            continue
        todo += children.get(pid, [])
    return total


PAGE_METRICS = (
    "TaskDuration",
    "ScriptDuration",
    "LayoutDuration",
    "RecalcStyleDuration",
    "LayoutCount",
    "RecalcStyleCount",
    "JSHeapUsedSize",
)


async def page_metrics(cdp: Any) -> dict[str, float]:
    """Chromium's own counters for the page's main thread (DevTools Protocol, `Performance`)."""
    got = await cdp.send("Performance.getMetrics")
    return {m["name"]: m["value"] for m in got["metrics"] if m["name"] in PAGE_METRICS}


def main_thread_summary(
    m0: dict[str, float], m1: dict[str, float], wall: float, long: list[list[float]]
) -> str:
    """Where the page's main thread spent its time, per second of the run, and its long tasks."""

    def per_s(name: str) -> float:
        return (m1.get(name, 0.0) - m0.get(name, 0.0)) / wall

    durations = sorted(d for _, d in long)
    return (
        f"page main thread per second: busy {per_s('TaskDuration') * 1e3:.0f} ms (script "
        f"{per_s('ScriptDuration') * 1e3:.0f}, layout {per_s('LayoutDuration') * 1e3:.0f} in "
        f"{per_s('LayoutCount'):.1f} layouts, style {per_s('RecalcStyleDuration') * 1e3:.0f} in "
        f"{per_s('RecalcStyleCount'):.1f} recalcs); long tasks (> 50 ms) {len(durations)}"
        + (
            f", total {sum(durations):.0f} ms, median {durations[len(durations) // 2]:.0f} ms, "
            f"max {durations[-1]:.0f} ms"
            if durations
            else ""
        )
        + f"; JS heap {m1.get('JSHeapUsedSize', 0.0) / 2**20:.1f} MiB"
    )


async def read_overview(
    ws: aiohttp.ClientWebSocketResponse,
    seen: dict[str, float],
    lat: list[float],
    frames: list[int],
) -> None:
    """Read the overview's `summaries` frames: each client's new arousal value appends its
    arrival - publish time to `lat` (`seen`: the newest `arousal_t` per client); `frames[0]`
    counts the frames."""
    async for msg in ws:
        now = time.time()
        m = json.loads(msg.data)
        if m["type"] != "summaries":
            continue
        frames[0] += 1
        for s in m["summaries"]:
            t = s.get("arousal_t")
            if t is None or seen.get(s["client"]) == t:
                continue
            seen[s["client"]] = t
            lat.append(now - t)


async def bench_browser(
    n_clients: int, seconds: float, rate_hz: float, trace_to: Path | None = None
) -> None:
    import shutil

    from playwright.async_api import async_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("chromium is not installed (Debian package 'chromium')")
    async with dashboard_server({**os.environ, "BENCH_WEB_FEED_HOOK": SOCKET_HOOK}) as (
        mqtt_port,
        http_port,
        server,
    ):
        rss0 = rss_bytes(server.pid)
        publisher = await start_publisher(mqtt_port, n_clients, rate_hz)
        started = time.monotonic()
        assert publisher.stdin is not None
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=chromium,
                args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"],
            )
            page = await browser.new_page(viewport={"width": 1366, "height": 900})
            await page.add_init_script(PAGE_HOOK)  # and the worker's: `feed_hook`

            # the same overview read by a plain WebSocket client here: where the time goes
            # (dashboard and network, or the page)
            ws_lat: list[float] = []
            ws_seen: dict[str, float] = {}
            http = aiohttp.ClientSession()
            base = f"http://127.0.0.1:{http_port}"
            ws = await http.ws_connect(
                f"{base}/ws",
                headers={"Origin": base, "Authorization": f"Bearer {SECRET}"},
            )

            ws_reader = asyncio.create_task(read_overview(ws, ws_seen, ws_lat, [0]))
            await asyncio.sleep(1.0 / rate_hz + 1.0)  # every client seen once
            await page.goto(f"http://127.0.0.1:{http_port}/?token={SECRET}")
            await page.wait_for_selector("#conn[data-state='live']")
            await asyncio.sleep(5.0)  # warm up
            # and the clients' group changes at their steady pace (`swing`)
            await asyncio.sleep(max(0.0, started + STEADY_AFTER_S - time.monotonic()))
            rows = await page.evaluate("document.querySelectorAll('#clients tbody tr').length")
            cdp = await page.context.new_cdp_session(page)
            await cdp.send("Performance.enable")
            if trace_to is not None:
                await browser.start_tracing(page=page, path=str(trace_to), screenshots=False)
            (feed,) = [w for w in page.workers if w.url.endswith("/static/overview-feed.js")]
            await feed.evaluate("self.__lat = []; self.__moves = 0")
            await page.evaluate("window.__long = []; window.__mainLat = []; window.__drawLat = []")
            m0 = await page_metrics(cdp)
            ws_lat.clear()
            overviews0 = await feed.evaluate("self.__overviews")
            pcpu0 = cpu_seconds(publisher.pid)
            async with http.get(f"{base}/healthz") as resp:
                ingested0 = (await resp.json())["ingested"]
            browser_pid = _browser_pid()
            cpu0, bcpu0, wall0 = (
                cpu_seconds(server.pid),
                tree_cpu_seconds(browser_pid),
                time.monotonic(),
            )
            await asyncio.sleep(seconds)
            cpu1, bcpu1, wall1 = (
                cpu_seconds(server.pid),
                tree_cpu_seconds(browser_pid),
                time.monotonic(),
            )
            m1 = await page_metrics(cdp)
            if trace_to is not None:
                await browser.stop_tracing()
            async with http.get(f"{base}/healthz") as resp:
                ingested = (await resp.json())["ingested"] - ingested0
            lat = sorted(await feed.evaluate("self.__lat"))
            main_lat = sorted(await page.evaluate("window.__mainLat"))
            draw_lat = sorted(await page.evaluate("window.__drawLat"))
            long_tasks = await page.evaluate("window.__long")
            moves = await feed.evaluate("self.__moves")
            wsl = sorted(ws_lat)
            ws_reader.cancel()
            await ws.close()
            await http.close()
            reconnects = await feed.evaluate("self.__overviews") - overviews0
            pcpu1 = cpu_seconds(publisher.pid)
            rss1 = rss_bytes(server.pid)
            await browser.close()
        publisher.stdin.close()
        out, _ = await asyncio.wait_for(publisher.communicate(), 30)
    wall = wall1 - wall0
    cpu = (cpu1 - cpu0) / wall
    bcpu = (bcpu1 - bcpu0) / wall
    expected = n_clients * rate_hz * seconds
    pcpu = (pcpu1 - pcpu0) / wall
    print(
        f"browser overview, {n_clients} clients ({rows} rows) x {2 * rate_hz:.1f} msg/s for "
        f"{seconds:.0f} s: {len(lat)} new arousal values reached the page (planned "
        f"{expected:.0f}; publisher {out.decode().split()[-1]} pairs in all, "
        f"{pcpu * 100:.0f} % of a core; the page reconnected {reconnects} times; {moves} "
        f"changes of a client's attention group); "
        f"publish -> browser (the page's socket, read in its feed worker) p50 "
        f"{lat[len(lat) // 2] * 1e3:.1f} ms, "
        f"p99 {lat[int(len(lat) * 0.99)] * 1e3:.1f} ms, max {lat[-1] * 1e3:.1f} ms; dashboard "
        f"CPU {cpu * 100:.1f} % of a core ({cpu * 100 / n_clients:.3f} % per client), RSS "
        f"{rss0 / 2**20:.0f} -> {rss1 / 2**20:.0f} MiB ({(rss1 - rss0) / n_clients / 1024:.0f} "
        f"KiB per client after {wall1 - started:.0f} s of history); Chromium CPU "
        f"{bcpu * 100:.1f} % "
        f"of a core. The same overview read by a plain WebSocket client: {len(wsl)} values, p50 "
        f"{wsl[len(wsl) // 2] * 1e3:.1f} ms, p99 {wsl[int(len(wsl) * 0.99)] * 1e3:.1f} ms. "
        f"Dashboard CPU per message it took in: {(cpu1 - cpu0) / max(1, ingested) * 1e6:.0f} µs "
        f"({ingested} messages), so {(cpu1 - cpu0) / max(1, ingested) * 2 * rate_hz * 100:.3f} % "
        f"of a core per client at {2 * rate_hz:.1f} msg/s"
    )
    print(
        f"the same values handed on by the feed worker, at the page's main thread (at once for a "
        f"pause, else batched every 50 ms by design): {len(main_lat)} values, p50 "
        f"{main_lat[len(main_lat) // 2] * 1e3:.1f} ms, p99 "
        f"{main_lat[int(len(main_lat) * 0.99)] * 1e3:.1f} ms, max {main_lat[-1] * 1e3:.1f} ms; "
        f"written into the first rows on screen (at most 4 times a second, by design): "
        f"{len(draw_lat)} values, p50 {draw_lat[len(draw_lat) // 2] * 1e3:.0f} ms, p99 "
        f"{draw_lat[int(len(draw_lat) * 0.99)] * 1e3:.0f} ms, max {draw_lat[-1] * 1e3:.0f} ms"
    )
    print(main_thread_summary(m0, m1, wall, long_tasks))


async def bench_plain(n_clients: int, seconds: float, rate_hz: float, trace: bool) -> None:
    """Part 3 without the browser (`--plain`): the same dashboard process, publisher process and
    overview, read by a plain aiohttp WebSocket client only: the dashboard's own latency, CPU per
    message and memory per client, free of Chromium's share of the two cores."""
    env = {**os.environ, **({"BENCH_WEB_TRACE": "1"} if trace else {})}
    async with dashboard_server(env) as (mqtt_port, http_port, server):
        rss0 = rss_bytes(server.pid)
        publisher = await start_publisher(mqtt_port, n_clients, rate_hz)
        started = time.monotonic()
        assert publisher.stdin is not None
        ws_lat: list[float] = []
        ws_seen: dict[str, float] = {}
        frames = [0]
        base = f"http://127.0.0.1:{http_port}"
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(
                f"{base}/ws", headers={"Origin": base, "Authorization": f"Bearer {SECRET}"}
            )

            ws_reader = asyncio.create_task(read_overview(ws, ws_seen, ws_lat, frames))
            # every client seen, and their group changes at a steady pace, as in --browser
            steady = started + STEADY_AFTER_S - time.monotonic()
            await asyncio.sleep(max(1.0 / rate_hz + 6.0, steady))
            ws_lat.clear()
            frames[0] = 0
            async with http.get(f"{base}/healthz") as resp:
                ingested0 = (await resp.json())["ingested"]
            cpu0, wall0 = cpu_seconds(server.pid), time.monotonic()
            await asyncio.sleep(seconds)
            cpu1, wall1 = cpu_seconds(server.pid), time.monotonic()
            async with http.get(f"{base}/healthz") as resp:
                ingested = (await resp.json())["ingested"] - ingested0
            wsl = sorted(ws_lat)
            rss1 = rss_bytes(server.pid)
            ws_reader.cancel()
            await ws.close()
        publisher.stdin.close()
        out, _ = await asyncio.wait_for(publisher.communicate(), 30)
    wall = wall1 - wall0
    cpu = (cpu1 - cpu0) / wall
    per_msg = (cpu1 - cpu0) / max(1, ingested)
    print(
        f"plain overview, {n_clients} clients x {2 * rate_hz:.1f} msg/s for {seconds:.0f} s: "
        f"{len(wsl)} new arousal values (planned {n_clients * rate_hz * seconds:.0f}; publisher "
        f"{out.decode().split()[-1]} pairs in all) in {frames[0]} frames; publish -> WebSocket "
        f"p50 {wsl[len(wsl) // 2] * 1e3:.1f} ms, p99 {wsl[int(len(wsl) * 0.99)] * 1e3:.1f} ms, "
        f"max {wsl[-1] * 1e3:.1f} ms; dashboard CPU {cpu * 100:.1f} % of a core, "
        f"{per_msg * 1e6:.0f} µs per message ({ingested} messages), "
        f"{per_msg * 2 * rate_hz * 100:.3f} % of a core per client; RSS {rss0 / 2**20:.0f} -> "
        f"{rss1 / 2**20:.0f} MiB ({(rss1 - rss0) / n_clients / 1024:.0f} KiB per client after "
        f"{wall1 - started:.0f} s of history)"
    )


PAGE_ONLY_FEED = """
(([n, rate]) => {
  // A stand-in for the dashboard's WebSocket: the first overview (each client with a 2-minute
  // trail), then 100 'summaries' frames a second holding the rows that changed, as the hub sends
  // them for n clients publishing metrics and arousal `rate` times a second.
  const now = () => Date.now() / 1000;
  // clients move between calm and "arousal rising" about 7 times a second in all, as in the full
  // run (`--browser`: its arousal of 40 + 0-6 points makes the hub's trend flip; read at a plain
  // client), so that rows change groups here as well
  const FLIPS_PER_S = 7;
  const flipped = new Array(n).fill(false);
  let seed = 12345;
  const pick = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) % n);
  const rising = (i) => (i % 17 === 0) !== flipped[i];
  const row = (i, t, a) => ({
    client: "c" + String(i).padStart(3, "0"), online: true, battery: 80, quality: 0.95,
    state: "exposing", state_label: "Exposing: step 2",
    next: { who: "therapist", short: "Step 2 running", text: "Step 2 is running." },
    client_ready: false, paused: false, pause_reason: null, step_index: 1, step_title: "Step 2",
    steps: 4, arousal: a, arousal_t: t, upper: 70, lower: 45, hr: 60 + (i % 30), last_t: t,
    last_rx: t, device_connected: true, monitoring_ok: true, trend: (i % 5) - 2, rising: false,
    attention: rising(i) ? 1 : 3, attention_why: rising(i) ? "Arousal rising" : "",
  });
  class FeedSocket {
    constructor() { this.readyState = 0; setTimeout(() => this.start(), 10); }
    send() {}
    close() {}
    emit(m) { if (this.onmessage) this.onmessage({ data: JSON.stringify(m) }); }
    start() {
      this.readyState = 1;
      if (this.onopen) this.onopen();
      this.emit({ type: "hello", srv: now(), broker: true });
      const t0 = now();
      const clients = [];
      for (let i = 0; i < n; i++) {
        const r = row(i, t0, 40);
        r.trail = [];
        for (let k = 0; k < 100; k++) r.trail.push([t0 - 120 + k * 1.2, 30 + ((k + i) % 20)]);
        clients.push(r);
      }
      this.emit({ type: "overview", clients });
      let k = 0;
      let owed = 0;
      let flips = 0;
      setInterval(() => {
        owed += (n * rate * 2) / 100;
        flips += FLIPS_PER_S / 100;
        const t = now();
        const summaries = [];
        for (; flips >= 1; flips--) {
          const i = pick();
          flipped[i] = !flipped[i];
          summaries.push(row(i, t, 30 + (k % 40)));
        }
        for (; owed >= 1; owed--) summaries.push(row(k++ % n, t, 30 + (k % 40)));
        if (summaries.length) this.emit({ type: "summaries", summaries });
      }, 10);
    }
  }
  FeedSocket.OPEN = 1;
  window.WebSocket = FeedSocket;
  // no feed worker: the page reads this stand-in socket on its main thread (common.js
  // `connectVia` without workers), so the frames' cost is measured, not the worker's
  window.Worker = undefined;
  // how late the page runs a timer due every 10 ms: what a message arriving then would wait
  window.__late = [];
  window.__long = [];
  new PerformanceObserver((l) => {
    for (const e of l.getEntries()) window.__long.push(e.duration);
  }).observe({ type: "longtask", buffered: true });
  let due = 0;
  const probe = () => {
    const t = performance.now();
    if (due) window.__late.push(t - due);
    due = t + 10;
    setTimeout(probe, 10);
  };
  setTimeout(probe, 10);
})
"""


async def bench_page_only(
    n_clients: int, seconds: float, rate_hz: float, static: Path, trace_to: Path | None = None
) -> None:
    """The overview page alone (`--page-only`): no broker, no dashboard; a stand-in WebSocket in
    the page feeds it the hub's frames. The page's own main-thread cost and how late it runs a
    10 ms timer, free of the server's share of the cores; `--static DIR` measures another copy
    of `biofeedback/web/static` (e.g. a `git archive` of an older commit) for an A/B."""
    import shutil

    from playwright.async_api import async_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("chromium is not installed (Debian package 'chromium')")
    types = {".html": "text/html", ".css": "text/css", ".js": "application/javascript"}
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=chromium,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"],
        )
        page = await browser.new_page(viewport={"width": 1366, "height": 900})

        async def serve(route: Any) -> None:
            path = route.request.url.split("bench.invalid", 1)[1].split("?")[0]
            name = "therapist.html" if path == "/" else path.removeprefix("/static/")
            f = static / name
            await route.fulfill(body=f.read_bytes(), content_type=types.get(f.suffix, "text/plain"))

        await page.route("http://bench.invalid/**", serve)
        await page.add_init_script(f"{PAGE_ONLY_FEED}([{n_clients}, {rate_hz}]);")
        await page.goto("http://bench.invalid/")
        await asyncio.sleep(3.0)  # the first overview drawn
        rows = await page.evaluate("document.querySelectorAll('#clients tbody tr').length")
        cdp = await page.context.new_cdp_session(page)
        await cdp.send("Performance.enable")
        if trace_to is not None:
            await browser.start_tracing(page=page, path=str(trace_to), screenshots=False)
        await page.evaluate("window.__late = []; window.__long = []")
        m0, wall0 = await page_metrics(cdp), time.monotonic()
        await asyncio.sleep(seconds)
        m1, wall1 = await page_metrics(cdp), time.monotonic()
        if trace_to is not None:
            await browser.stop_tracing()
        late = sorted(await page.evaluate("window.__late"))
        long = await page.evaluate("window.__long")
        await browser.close()
    print(
        f"page only ({static}), {n_clients} clients ({rows} rows) x {2 * rate_hz:.1f} msg/s for "
        f"{seconds:.0f} s: a 10 ms timer ran late by p50 {late[len(late) // 2]:.1f} ms, p99 "
        f"{late[int(len(late) * 0.99)]:.1f} ms, max {late[-1]:.1f} ms"
    )
    print(main_thread_summary(m0, m1, wall1 - wall0, [[0.0, d] for d in long]))


def _browser_pid() -> int:
    """The headless Chromium that this process's playwright driver started (a descendant)."""
    me = os.getpid()

    def parent(pid: int) -> int:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])

    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes()
            if b"chromium" not in cmd.split(b"\0")[0] or b"--type=" in cmd:
                continue
            pid = int(d.name)
            while pid > 1:
                pid = parent(pid)
                if pid == me:
                    return int(d.name)
        except (OSError, IndexError, ValueError):
            continue
    raise SystemExit("the benchmark's Chromium process was not found")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rate", type=float, default=1.2, help="beats per second per client")
    ap.add_argument("--skip-hub", action="store_true")
    ap.add_argument(
        "--browser",
        action="store_true",
        help="only part 3: a real Chromium on the overview (use --clients 300)",
    )
    ap.add_argument("--memory-clients", type=int, default=100, help="clients for hub memory")
    ap.add_argument(
        "--browser-trace",
        type=Path,
        help="with --browser or --page-only: write Chromium's performance trace of the measured "
        "seconds here",
    )
    ap.add_argument(
        "--plain",
        action="store_true",
        help="only part 3 without the browser: the overview read by a plain WebSocket client",
    )
    ap.add_argument(
        "--trace",
        action="store_true",
        help="with --plain: the dashboard prints its GC pauses and event-loop lateness at exit",
    )
    ap.add_argument(
        "--page-only",
        action="store_true",
        help="only the overview page in Chromium, fed in the page (no broker, no dashboard)",
    )
    ap.add_argument(
        "--static",
        type=Path,
        default=REPO / "biofeedback" / "web" / "static",
        help="with --page-only: the folder of pages to measure (default: this checkout's)",
    )
    args = ap.parse_args()
    if args.page_only:
        asyncio.run(
            bench_page_only(args.clients, args.seconds, args.rate, args.static, args.browser_trace)
        )
        return
    if args.plain:
        asyncio.run(bench_plain(args.clients, args.seconds, args.rate, args.trace))
        return
    if args.browser:
        asyncio.run(bench_browser(args.clients, args.seconds, args.rate, args.browser_trace))
        return
    if not args.skip_hub:
        bench_hub()
        bench_hub_memory(args.memory_clients)
    asyncio.run(bench_end_to_end(args.clients, args.seconds, args.rate))


if __name__ == "__main__":
    main()
