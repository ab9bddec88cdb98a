"""Clinic benchmark: one service, N emulated straps, CPU per strap and every beat counted.

Run: .venv/bin/python bench/bench_clinic.py [--straps 8] [--seconds 60] [--repeats 3] [--raw]
     .venv/bin/python bench/bench_clinic.py --measure-links 32

The service runs as a user runs it (`biofeedback run --config clinic.toml`, a subprocess, its
embedded Mosquitto, its dashboard, recording to a temporary folder); the straps are fake BlueZ
devices on a private dbus-daemon in this process, each sending one real 0x2A37 notification (one
RR interval) per beat in real time at its own rate (60-88 bpm). A plain paho-mqtt subscriber
counts every client's `beat` messages; the straps count what they sent while the service was
subscribed. With `--raw` each strap is an H10 that also offers Polar's PMD service: the service
asks every strap for its raw ECG and chest acceleration (as `biofeedback run` does with a real
H10) and runs them through the recording and the live ECG, movement and breathing stages, and the
strap sends the ECG (130 Hz) and ACC (200 Hz) notifications of the same beats, made by the
simulator's `PmdEmulator`. CPU is read from /proc (utime + stime) of the service process and of
its Mosquitto over a window that starts once every strap streams, so start-up (imports,
connects) is left out.

`--measure-links N` measures what the emulation itself allows: it connects N fake straps one
after the other through bleak and keeps them all connected, reporting how many links held.

Prints Markdown for docs/benchmarks.md ("## Clinic: several straps in one service").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import queue
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from biofeedback.devices.hrm import encode_heart_rate_measurement
from biofeedback.devices.physiology import SimBeat
from biofeedback.devices.pmd_sim import PmdEmulator
from biofeedback.devices.readings import HeartRateMeasurement
from tests.devices.conftest import _BUS_CONFIG, _close_bleak_manager
from tests.devices.fake_bluez import FakeBlueZ, FakeStrap, PmdSpec, StrapSpec

REPO = Path(__file__).resolve().parent.parent
CHEST_TOPICS = ("ecg", "movement", "breathing")
TICKS = os.sysconf("SC_CLK_TCK")


def start_bus(tmp: Path) -> tuple[subprocess.Popen[str], str]:
    sockdir = tempfile.mkdtemp(prefix="bf-dbus-", dir=tmp)
    conf = tmp / "bus.conf"
    conf.write_text(_BUS_CONFIG.format(sockdir=sockdir))
    daemon = shutil.which("dbus-daemon") or "/usr/bin/dbus-daemon"
    proc = subprocess.Popen(
        [daemon, "--nofork", "--print-address", f"--config-file={conf}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    address = proc.stdout.readline().strip()
    os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = address
    return proc, address


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def children(pid: int) -> list[int]:
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            kids += [int(k) for k in (task / "children").read_text().split()]
    return kids


def mosquitto_of(pid: int) -> int | None:
    for kid in children(pid):
        with contextlib.suppress(OSError):
            if "mosquitto" in Path(f"/proc/{kid}/comm").read_text():
                return kid
    return None


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Counter:
    """Counts every client's beats on the broker (QoS 1), in paho's own thread."""

    def __init__(self, port: int, login: dict[str, str]) -> None:
        self.q: queue.Queue[str] = queue.Queue()
        self.c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench")
        self.c.username_pw_set(login["username"], login["password"])
        self.c.on_message = lambda _c, _u, m: self.q.put(m.topic)
        # beats, and the chest stages' outputs of H10s streaming raw data (--raw)
        self.c.on_connect = lambda c, *_: c.subscribe(
            [(f"biofeedback/v1/+/{k}", 1) for k in ("beat", *CHEST_TOPICS)]
        )
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        self.counts: dict[str, int] = {}  # client -> beats
        self.chest: dict[str, int] = dict.fromkeys(CHEST_TOPICS, 0)  # topic kind -> messages

    def drain(self) -> dict[str, int]:
        with contextlib.suppress(queue.Empty):
            while True:
                _, _, cid, kind = self.q.get_nowait().split("/")[:4]
                if kind == "beat":
                    self.counts[cid] = self.counts.get(cid, 0) + 1
                else:
                    self.chest[kind] = self.chest.get(kind, 0) + 1
        return self.counts

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


async def heart(strap: FakeStrap, bpm: float, sent: list[int]) -> None:
    rr = round(60 / bpm * 1024)
    payload = encode_heart_rate_measurement(
        HeartRateMeasurement(round(bpm), True, True, None, (rr,))
    )
    next_t = time.monotonic()
    while True:
        next_t += rr / 1024
        await asyncio.sleep(max(0.0, next_t - time.monotonic()))
        if strap.notify(payload):
            sent.append(1)


async def h10(strap: FakeStrap, bpm: float, seed: int, sent: list[int], frames: list[int]) -> None:
    """A Polar H10 with its raw data: each beat's 0x2A37 notification (one RR) and, once the
    service has started both PMD streams, the ECG (130 Hz, 73 samples a frame) and ACC (200 Hz,
    36 a frame) notifications of the same beats, made by the simulator's `PmdEmulator` (P-QRS-T
    waves, breathing swing and chest tilt), sent when their last sample is due (a 20 ms loop: the
    beats go out up to 20 ms late, together with the frames, as a strap's radio batches them)."""
    rr_s = round(60 / bpm * 1024) / 1024
    payload = encode_heart_rate_measurement(
        HeartRateMeasurement(round(bpm), True, True, None, (round(rr_s * 1024),))
    )
    t0 = time.monotonic()
    emu = PmdEmulator(start_t=0.0, seed=seed)
    breath_hz = 14.0 / 60.0
    beat_t = 0.0
    while True:
        await asyncio.sleep(0.02)
        now = time.monotonic() - t0
        while beat_t + rr_s <= now:
            beat_t += rr_s
            phase = (2 * math.pi * breath_hz * beat_t) % (2 * math.pi)
            emu.add_beats([SimBeat(beat_t, rr_s, False, 0.2, 14.0, phase)])
            if strap.notify(payload):
                sent.append(1)
        streaming = 0 in strap.pmd_streaming and 2 in strap.pmd_streaming
        for _, frame in emu.frames_until(now):
            if streaming and strap.pmd_notify(frame):
                frames.append(1)


async def one_run(n: int, seconds: float, tmp: Path, *, raw: bool) -> dict[str, Any]:
    bluez = FakeBlueZ(os.environ["DBUS_SYSTEM_BUS_ADDRESS"])
    await bluez.start()
    straps = [
        bluez.add_strap(
            StrapSpec(
                name=f"Polar H10 BE{i:06d}",
                address=f"A0:9E:1A:BE:00:{i:02X}",
                pmd=PmdSpec() if raw else None,
            )
        )
        for i in range(n)
    ]
    mqtt_port, http_port = free_port(), free_port()
    lines = [
        f'[[clients]]\nid = "bench-{i:02d}"\nstrap = "{s.spec.name}"\n'
        for i, s in enumerate(straps)
    ]
    protocol = REPO / "config" / "protocols" / "demo.toml"
    lines.append(
        f"[bluetooth]\nmax_links_per_adapter = {n}\n"
        f'[session]\nprotocol = "{protocol}"\nbaseline_dir = "{tmp / "baselines"}"\n'
        f"[mqtt]\nport = {mqtt_port}\n[web]\nport = {http_port}\n"
        f'[recording]\ndir = "{tmp / "recordings"}"\n'
    )
    config = tmp / "clinic.toml"
    config.write_text("\n".join(lines))
    observer = tmp / "observer.json"
    env = dict(
        os.environ,
        PYTHONUNBUFFERED="1",
        BIOFEEDBACK_EMBEDDED_BROKER="mosquitto",
        BIOFEEDBACK_BROKER_OBSERVER_FILE=str(observer),
        BIOFEEDBACK_THERAPIST_SECRET="bench-secret",
    )
    log = tmp / "service.log"
    with log.open("w") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "biofeedback.cli", "run", "--config", str(config),
            "--log-level", "WARNING",
            cwd=REPO, env=env, stdout=out, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
    sent: list[list[int]] = [[] for _ in straps]
    frames: list[int] = []  # PMD notifications (ECG and ACC) the straps sent
    tasks: list[asyncio.Task[None]] = []
    counter: Counter | None = None
    try:
        deadline = time.monotonic() + 60
        while not observer.exists():
            if proc.returncode is not None or time.monotonic() > deadline:
                raise RuntimeError(f"service did not start:\n{log.read_text()[-3000:]}")
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.3)
        counter = Counter(mqtt_port, json.loads(observer.read_text()))
        # different people: 60 .. 88 bpm
        rates = [60 + 28 * i / max(1, n - 1) for i in range(n)]
        tasks = [
            asyncio.create_task(
                h10(s, rates[i], i + 1, sent[i], frames) if raw else heart(s, rates[i], sent[i])
            )
            for i, s in enumerate(straps)
        ]

        def streaming(s: FakeStrap) -> bool:
            return s.subscribed and (not raw or {0, 2} <= set(s.pmd_streaming))

        deadline = time.monotonic() + 90
        while not all(streaming(s) for s in straps):
            if time.monotonic() > deadline:
                raise RuntimeError(f"not every strap streams:\n{log.read_text()[-3000:]}")
            await asyncio.sleep(0.2)
        await asyncio.sleep(5.0)  # settle: first beats
        broker = mosquitto_of(proc.pid)
        t0 = time.monotonic()
        f0 = len(frames)
        c0 = cpu_seconds(proc.pid)
        b0 = cpu_seconds(broker) if broker else 0.0
        await asyncio.sleep(seconds)
        wall = time.monotonic() - t0
        frames_per_s = (len(frames) - f0) / wall
        service_cpu = (cpu_seconds(proc.pid) - c0) / wall
        broker_cpu = ((cpu_seconds(broker) - b0) / wall) if broker else float("nan")
        rss = rss_mib(proc.pid)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.sleep(3.0)  # the last beats through recording and MQTT
        counts = counter.drain()
        chest = dict(counter.chest)
    finally:
        for t in tasks:
            t.cancel()
        if counter is not None:
            counter.close()
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(30):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()
        await bluez.stop()
        await _close_bleak_manager()
    sent_total = sum(len(s) for s in sent)
    got_total = sum(counts.values())
    recorded = _recorded_beats(tmp / "recordings")
    pmd_rows = _recorded_pmd_rows(tmp / "recordings")
    return {
        "service": service_cpu,
        "broker": broker_cpu,
        "per_strap": (service_cpu + broker_cpu) / n,
        "sent": sent_total,
        "received": got_total,
        "recorded": recorded,
        "per_client_missing": {
            f"bench-{i:02d}": len(sent[i]) - counts.get(f"bench-{i:02d}", 0) for i in range(n)
        },
        "rss": rss,
        "frames_per_s": frames_per_s,
        "chest": chest,
        "frames_sent": len(frames),
        "pmd_rows": pmd_rows,
        "exit": proc.returncode,
    }


def _recorded_beats(root: Path) -> int:
    from biofeedback.recording.reader import iter_inputs

    total = 0
    for session in root.glob("*/*"):
        if session.is_dir():
            total += sum(len(getattr(i, "beats", ())) for i in iter_inputs(session))
    return total


def _recorded_pmd_rows(root: Path) -> int:
    """pmd.tsv rows of every session (each PMD notification's bytes, and stream statuses)."""
    from biofeedback.recording.reader import iter_rows, table_path
    from biofeedback.recording.schema import PMD

    total = 0
    for session in root.glob("*/*"):
        with contextlib.suppress(Exception):  # a session without the table
            total += sum(1 for _ in iter_rows(table_path(session, PMD), PMD))
    return total


async def measure_links(n: int) -> int:
    """Connect n fake straps through bleak one by one, all held at once; how many held."""
    from bleak import BleakClient, BleakScanner

    bluez = FakeBlueZ(os.environ["DBUS_SYSTEM_BUS_ADDRESS"])
    await bluez.start()
    straps = [
        bluez.add_strap(name=f"Polar H10 LK{i:06d}", address=f"A0:9E:1A:AA:00:{i:02X}")
        for i in range(n)
    ]
    clients: list[BleakClient] = []
    try:
        for s in straps:
            device = await BleakScanner.find_device_by_address(s.spec.address, timeout=10)
            if device is None:
                break
            client = BleakClient(device, timeout=10)
            try:
                await client.connect()
            except Exception as exc:
                print(f"link {len(clients) + 1} refused: {exc}", file=sys.stderr)
                break
            clients.append(client)
        return sum(1 for s in straps if s.connected)
    finally:
        for c in clients:
            with contextlib.suppress(Exception):
                await c.disconnect()
        await bluez.stop()
        await _close_bleak_manager()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--straps", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--measure-links", type=int, default=0, metavar="N")
    ap.add_argument(
        "--raw",
        action="store_true",
        help="the straps are H10s that also stream raw ECG and ACC (PMD), which the service "
        "asks every strap for: the sessions as a user runs them with an H10",
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bf-bench-clinic-") as d:
        tmp = Path(d)
        bus, _ = start_bus(tmp)
        try:
            if args.measure_links:
                held = asyncio.run(measure_links(args.measure_links))
                print(f"emulated adapter: {held} of {args.measure_links} LE links held at once")
                return
            runs = []
            for r in range(args.repeats):
                run_dir = tmp / f"run{r}"
                run_dir.mkdir()
                res = asyncio.run(one_run(args.straps, args.seconds, run_dir, raw=args.raw))
                runs.append(res)
                print(
                    f"run {r + 1}: service {res['service']:.1%} broker {res['broker']:.1%} "
                    f"per strap {res['per_strap']:.2%}; beats sent {res['sent']} received "
                    f"{res['received']} recorded {res['recorded']}; rss {res['rss']:.0f} MiB; "
                    f"PMD frames {res['frames_per_s']:.0f}/s, {res['frames_sent']} sent, "
                    f"{res['pmd_rows']} pmd.tsv rows; chest messages {res['chest']}; "
                    f"exit {res['exit']}; missing {res['per_client_missing']}",
                    flush=True,
                )
        finally:
            bus.terminate()
            bus.wait(timeout=5)
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])

    def spread(key: str, fmt: str) -> str:
        vals = [r[key] for r in runs]
        mid, lo, hi = (format(v, fmt) for v in (statistics.median(vals), min(vals), max(vals)))
        return f"{mid} ({lo}-{hi})"

    n = args.straps
    print()
    kind = "H10s with raw ECG + ACC (PMD)" if args.raw else "straps sending RR only"
    print(f"{n} {kind}, {args.seconds:g} s window, {args.repeats} runs, load average {load}:")
    print()
    print("| what | median (min-max) |")
    print("|---|---|")
    what = f"service process CPU (BLE via D-Bus, {n} sessions, recording, MQTT, dashboard)"
    print(f"| {what} | {spread('service', '.1%')} of a core |")
    print(f"| its Mosquitto's CPU | {spread('broker', '.2%')} of a core |")
    print(f"| per strap, service + broker | **{spread('per_strap', '.2%')}** of a core |")
    print(f"| service memory (RSS) | {spread('rss', '.0f')} MiB |")
    if args.raw:
        what = "PMD notifications sent by all straps (ECG + ACC)"
        print(f"| {what} | {spread('frames_per_s', '.0f')} /s |")
    sent = sum(r["sent"] for r in runs)
    got = sum(r["received"] for r in runs)
    rec = sum(r["recorded"] for r in runs)
    what = "beats sent by the straps / received by the MQTT subscriber / recorded"
    print(f"| {what} | {sent} / {got} / {rec} |")
    if args.raw:
        frames = sum(r["frames_sent"] for r in runs)
        rows = sum(r["pmd_rows"] for r in runs)
        chest = {k: sum(r["chest"].get(k, 0) for r in runs) for k in CHEST_TOPICS}
        what = "PMD notifications sent / pmd.tsv rows recorded (incl. stream status rows)"
        print(f"| {what} | {frames} / {rows} |")
        shown = ", ".join(f"{k} {v}" for k, v in chest.items())
        print(f"| chest-stage messages at the subscriber | {shown} |")


if __name__ == "__main__":
    main()
