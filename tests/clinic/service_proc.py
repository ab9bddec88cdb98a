"""Run `biofeedback run --config clinic.toml` as a user does and watch its whole topic tree."""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.devices.fake_bluez import FakeStrap
from tests.service_proc import service_process
from tests.support import REPO_ROOT, require_binary

SECRET = "clinic-therapist-secret"
PROTOCOL = REPO_ROOT / "config" / "protocols" / "demo.toml"


def clinic_toml(
    tmp_path: Path,
    clients: dict[str, str],
    *,
    mqtt_port: int,
    http_port: int,
    max_links: int | None = None,
) -> Path:
    """A clinic file for `clients` (id -> strap name) with the test's ports and folders."""
    lines = [
        f"[[clients]]\nid = {json.dumps(cid)}\nstrap = {json.dumps(strap)}\n"
        for cid, strap in clients.items()
    ]
    if max_links is not None:
        lines.append(f"[bluetooth]\nmax_links_per_adapter = {max_links}\n")
    lines.append(
        f"[session]\nprotocol = {json.dumps(str(PROTOCOL))}\n"
        f"baseline_dir = {json.dumps(str(tmp_path / 'baselines'))}\n"
        f"[mqtt]\nport = {mqtt_port}\n[web]\nport = {http_port}\n"
        f"[recording]\ndir = {json.dumps(str(tmp_path / 'recordings'))}\n"
    )
    path = tmp_path / "clinic.toml"
    path.write_text("\n".join(lines))
    return path


@contextlib.asynccontextmanager
async def clinic_service(
    tmp_path: Path, config: Path, mqtt_port: int, http_port: int, *extra: str
) -> AsyncIterator[asyncio.subprocess.Process]:
    """The service in a subprocess on the private bus, with a real Mosquitto as its broker;
    SIGTERM at the end (the test asserts the exit status)."""
    require_binary("mosquitto", "mosquitto")
    args = ("--config", str(config), *extra)
    async with service_process(
        tmp_path, *args, mqtt_port=mqtt_port, http_port=http_port, secret=SECRET, broker="mosquitto"
    ) as proc:
        yield proc


class GroupWatcher:
    """A third-party MQTT client on every client's topics (paho runs its own thread)."""

    def __init__(self, port: int, observer_file: Path, name: str = "clinic-watcher") -> None:
        self.q: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self.seen: list[tuple[str, dict[str, Any]]] = []
        self.c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=name)
        login = json.loads(observer_file.read_text())
        self.c.username_pw_set(login["username"], login["password"])
        self.c.on_message = lambda _c, _u, msg: self.q.put((msg.topic, json.loads(msg.payload)))
        self.c.connect("127.0.0.1", port)
        self.c.subscribe("biofeedback/v1/+/#", qos=1)
        self.c.loop_start()

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()

    def drain(self) -> None:
        with contextlib.suppress(queue.Empty):
            while True:
                self.seen.append(self.q.get_nowait())

    def of(self, client: str, topic_kind: str, **match: Any) -> list[dict[str, Any]]:
        self.drain()
        prefix = f"biofeedback/v1/{client}/"
        return [
            p
            for t, p in self.seen
            if t.startswith(prefix)
            and t.endswith(f"/{topic_kind}")
            and all(p.get(k) == v for k, v in match.items())
        ]

    async def until(self, what: str, cond: Callable[[], bool], within_s: float = 40) -> None:
        """Keep the event loop (and so the fake BlueZ) running while waiting for `cond()`."""
        deadline = time.monotonic() + within_s
        while not cond():
            if time.monotonic() > deadline:
                self.drain()
                topics = sorted({t for t, _ in self.seen})
                raise AssertionError(f"no {what} within {within_s} s; saw {topics}")
            await asyncio.sleep(0.05)


async def heart(strap: FakeStrap, rr_1024: int, payload: bytes, sent: list[float]) -> None:
    """Beat in real time whenever the service is subscribed to this strap."""
    while True:
        await asyncio.sleep(rr_1024 / 1024)
        if strap.notify(payload):
            sent.append(time.monotonic())
