"""BLE strap benchmarks: bleak's real BlueZ backend against the fake BlueZ on a private dbus-daemon.

Run: .venv/bin/python bench/bench_ble.py [--quick]
Prints a Markdown table for docs/benchmarks.md ("## BLE strap"). Numbers depend on machine load.

Measures what the live path costs with everything real but the radio: D-Bus round trips through
dbus-daemon, bleak's signal parsing, BleStrap's callback (BeatTimer, contact, queue):
- notification latency, fake strap's PropertiesChanged -> reading out of `BleStrap.readings()`;
- sustained notification throughput (headroom over a real strap's ~1 notification/s);
- time to find, connect, read Device Information and battery, and subscribe;
- reconnect cycles: time per drop -> SIGNAL_LOST -> reconnect -> SIGNAL_RESTORED, and whether
  file descriptors or memory leak across them (bleak opens one D-Bus connection per link).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from biofeedback.devices.ble import BleStrap
from biofeedback.devices.hrm import encode_heart_rate_measurement
from biofeedback.devices.readings import (
    DeviceEventKind,
    HeartRateMeasurement,
    Notification,
)
from tests.devices.conftest import _BUS_CONFIG, _close_bleak_manager
from tests.devices.fake_bluez import FakeBlueZ, ManualClock


def start_bus(tmp: Path) -> tuple[subprocess.Popen[str], str, str]:
    sockdir = tempfile.mkdtemp(prefix="bf-dbus-")
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
    return proc, address, sockdir


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def payload(i: int) -> bytes:
    rr = 780 + (i % 40)
    return encode_heart_rate_measurement(HeartRateMeasurement(75, True, True, None, (rr,)))


async def bench(n_latency: int, n_burst: int, n_cycles: int) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    address = os.environ["DBUS_SYSTEM_BUS_ADDRESS"]
    bluez = FakeBlueZ(address)
    await bluez.start()
    fake = bluez.add_strap()
    clock = ManualClock()
    strap = BleStrap(fake.spec.name, clock=clock, scan_timeout_s=2.0, stale_after_s=1e9)
    try:
        t0 = time.perf_counter()
        async with strap:
            it = strap.readings()
            async with asyncio.timeout(10):
                while not fake.subscribed:
                    await asyncio.wait_for(fake.link_changed.wait(), 10)
            setup_s = time.perf_counter() - t0
            rows.append(
                ("find + connect + DIS/battery reads + subscribe (fake, local bus)",
                 f"{setup_s * 1000:.0f} ms")
            )  # fmt: skip

            # drain the setup events
            async def next_notification() -> Notification:
                async for r in it:
                    if isinstance(r, Notification):
                        return r
                raise AssertionError("readings ended")

            for _ in range(3):  # CONNECTED, INFO, BATTERY
                await anext(it)

            lat: list[float] = []
            for i in range(n_latency):
                t = time.perf_counter()
                fake.notify(payload(i))
                await next_notification()
                lat.append(time.perf_counter() - t)
            lat.sort()
            rows.append(
                ("notification latency, strap -> `readings()` (median / p99)",
                 f"{statistics.median(lat) * 1e6:.0f} µs / {lat[int(0.99 * len(lat))] * 1e6:.0f} µs"
                 )
            )  # fmt: skip

            cpu0 = time.process_time()
            t = time.perf_counter()
            # At most 32 notifications in flight: the fake strap's dbus-fast connection fails
            # (EAGAIN) if thousands are queued at once, which a real strap never does.
            sent = got = 0
            while got < n_burst:
                while sent < n_burst and sent - got < 32:
                    fake.notify(payload(sent))
                    sent += 1
                await next_notification()
                got += 1
            wall = time.perf_counter() - t
            cpu = time.process_time() - cpu0
            rows.append(
                (f"sustained throughput, {n_burst} notifications, 32 in flight",
                 f"{n_burst / wall:,.0f} notifications/s "
                 f"({cpu / n_burst * 1e6:.0f} µs CPU each, both ends in this process)")
            )  # fmt: skip

            fds0, rss0 = open_fds(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            cycle: list[float] = []
            for i in range(n_cycles):
                t = time.perf_counter()
                fake.drop()
                fake.restore()
                async with asyncio.timeout(10):
                    while not fake.subscribed:
                        await fake.link_changed.wait()
                fake.notify(payload(i))
                async for r in it:
                    if getattr(r, "kind", None) is DeviceEventKind.SIGNAL_RESTORED:
                        break
                await next_notification()
                cycle.append(time.perf_counter() - t)
            fds1, rss1 = open_fds(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            rows.append(
                (f"drop -> SIGNAL_LOST -> reconnect -> SIGNAL_RESTORED ({n_cycles} cycles, median)",
                 f"{statistics.median(cycle) * 1000:.0f} ms")
            )  # fmt: skip
            rows.append(
                (f"open file descriptors before / after {n_cycles} reconnects",
                 f"{fds0} / {fds1}")
            )  # fmt: skip
            rows.append(
                (f"max RSS before / after {n_cycles} reconnects",
                 f"{rss0 / 1024:.1f} MiB / {rss1 / 1024:.1f} MiB")
            )  # fmt: skip
    finally:
        await _close_bleak_manager()
        await bluez.stop()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    # every drop logs a warning by design; keep the table readable
    logging.basicConfig(level=logging.ERROR)
    n_lat, n_burst, n_cycles = (200, 1000, 10) if args.quick else (2000, 10000, 50)
    with tempfile.TemporaryDirectory() as tmp:
        proc, _address, sockdir = start_bus(Path(tmp))
        try:
            rows = asyncio.run(bench(n_lat, n_burst, n_cycles))
        finally:
            proc.terminate()
            proc.wait(5)
            shutil.rmtree(sockdir, ignore_errors=True)
    print("| what | result |")
    print("|---|---|")
    for what, result in rows:
        print(f"| {what} | {result} |")


if __name__ == "__main__":
    main()
